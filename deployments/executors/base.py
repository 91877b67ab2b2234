"""The one small interface between Release Train and whatever runs a deployment's Job."""

import abc
import enum
import logging
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from applications.deploy_config import DNS_1123_LABEL, ENV_NAME, image_allowed, namespace_allowed
from deployments.metrics import job_operations
from deployments.models import Deployment

logger = logging.getLogger(__name__)

# A DNS-1123 label: what Kubernetes requires of namespaces, and of Job names that pods and
# the `job-name` label are derived from.


class JobState(enum.StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    # The Job is gone although its deployment never finished (deleted by hand, TTL, node loss).
    MISSING = "missing"


@dataclass(frozen=True)
class JobStatus:
    state: JobState
    detail: str = ""
    # When the Job finished, by the clock of whatever ran it, where it says so.
    finished_at: datetime | None = None


class RunningJob(NamedTuple):
    """What following the Job of a running deployment needs of its row (read as plain values:
    the reconciler looks at every running deployment on every wake-up)."""

    pk: int
    job_name: str
    job_namespace: str
    started_at: datetime | None = None


class PermanentJobError(Exception):
    """A launch that can never work as asked (an invalid spec, a namespace that does not
    exist): retrying is pointless, the deployment fails with this message. Any other
    exception from an executor is taken as transient and retried on the next tick."""


class Executor(abc.ABC):
    """Launch, poll and cancel the Job of a deployment. Called outside any transaction.

    Every operation is idempotent: launching a Job that exists counts as launched, cancelling
    a Job that does not exist counts as cancelled.
    """

    def validate(self) -> None:
        """Check the settings at start-up; raise ImproperlyConfigured with a clear message."""
        validate_common_settings()

    def job_target(self, deployment: Deployment) -> tuple[str, str]:
        """The (job name, namespace) this deployment's Job gets; deterministic per deployment.
        Pure: it runs inside the reconciler's claim transaction. Raises PermanentJobError for
        a config that can never be launched."""
        app_name = deployment.release_app.application.name
        image_check(deployment, app_name=app_name)
        return job_name_for(deployment, app_name=app_name), namespace_for(deployment)

    @abc.abstractmethod
    def launch(self, deployment: Deployment) -> None:
        """Create the Job named `deployment.job_name` in `deployment.job_namespace`."""

    @abc.abstractmethod
    def poll(self, deployment: Deployment | RunningJob) -> JobStatus:
        """Where the Job of a running deployment stands."""

    @abc.abstractmethod
    def cancel(self, deployment: Deployment) -> None:
        """Stop and delete the Job; a Job that is already gone counts as done."""

    def watch(self, *, on_change: Callable[[], None], stop: threading.Event) -> None:
        """Follow Jobs in the background until `stop`, calling `on_change` when one finishes or
        vanishes, so the reconciler need not ask. Without it (this default) the reconciler
        learns of changes on its interval."""
        return None

    def existing_jobs(self) -> list[tuple[str, str]]:
        """(namespace, name) of the Jobs the executor knows to exist without asking (a watched
        cache); the reconciler deletes those whose deployment no longer wants them. Default:
        none known."""
        return []

    def job_states(self, deployments: Iterable[RunningJob]) -> dict[int, JobStatus]:
        """Where the Jobs of these running deployments stand, by deployment id, as cheaply as
        the executor can tell (a watched cache rather than a request per Job). A deployment
        whose Job could not be looked at is left out; it is looked at again next time."""
        states = {}
        for deployment in deployments:
            try:
                states[deployment.pk] = self.poll(deployment)
            except Exception as exc:
                job_operations.labels(op="poll", result="error").inc()
                logger.warning(
                    "job_poll_failed",
                    extra={"deployment_id": deployment.pk, "error": repr(exc), "retry": True},
                )
        return states


def job_name_for(deployment: Deployment, *, app_name: str) -> str:
    """`<prefix>-<app>-<deployment id>`: deterministic, a valid DNS-1123 label, ≤ 63 characters.

    The id is unique and kept whole; the readable part is shortened to make room for it.
    """
    suffix = f"-{deployment.pk}"
    readable = re.sub(r"[^a-z0-9-]+", "-", f"{settings.DEPLOY_JOB_NAME_PREFIX}-{app_name}".lower())
    readable = readable[: 63 - len(suffix)].strip("-") or "rt"
    return f"{readable}{suffix}"


def namespace_for(deployment: Deployment) -> str:
    """The deployment's own `namespace` (from the application's deploy config), else the
    environment's namespace from settings."""
    namespace = (
        deployment.config.get("namespace") or settings.DEPLOY_NAMESPACES[deployment.environment]
    )
    # Checked before it is stored (a 63-character column) or used as a path by the local
    # executor: a bad one fails this deployment, never the reconciler's tick.
    if not isinstance(namespace, str) or not DNS_1123_LABEL.match(namespace):
        raise PermanentJobError(f"Namespace {namespace!r} is not a valid Kubernetes namespace.")
    if not namespace_allowed(namespace):
        raise PermanentJobError(
            f"Namespace {namespace!r} is not allowed: it is not an environment's namespace and "
            "matches no DEPLOY_ALLOWED_NAMESPACES pattern."
        )
    return namespace


def image_check(deployment: Deployment, *, app_name: str) -> None:
    """The deploy config's own image, rendered, must be allowed (DEPLOY_ALLOWED_IMAGES): the
    config may have been saved under other settings, or written around the form."""
    template = deployment.config.get("image")
    if not template:
        return  # the executor's DEPLOY_JOB_IMAGE, which the operator chose
    values = {
        "app": app_name,
        "image_tag": deployment.image_tag,
        "environment": deployment.environment,
    }
    try:
        image = str(template).format(**values)
        default = settings.DEPLOY_JOB_IMAGE.format(**values) if settings.DEPLOY_JOB_IMAGE else ""
    except (KeyError, IndexError, ValueError) as exc:
        raise PermanentJobError(f"Bad image template {template!r}: {exc!r}") from None
    if not image_allowed(image, default=default):
        raise PermanentJobError(
            f"Image {image!r} is not allowed: it is not DEPLOY_JOB_IMAGE and matches no "
            "DEPLOY_ALLOWED_IMAGES pattern."
        )


def job_env(deployment: Deployment) -> dict[str, str]:
    """The Job's environment: the deploy config's `env`, then the four variables every
    executor sets, which the config cannot override."""
    extra = deployment.config.get("env") or {}
    if not isinstance(extra, dict) or not all(
        isinstance(k, str) and ENV_NAME.match(k) and isinstance(v, str) and "\0" not in v
        for k, v in extra.items()
    ):
        raise PermanentJobError(
            "deploy_config env must map variable names (letters, digits, _ . -) to strings."
        )
    return {
        **extra,
        "APP_NAME": deployment.release_app.application.name,
        "IMAGE_TAG": deployment.image_tag,
        "ENVIRONMENT": deployment.environment,
        "DEPLOYMENT_ID": str(deployment.pk),
    }


def validate_common_settings() -> None:
    prefix = settings.DEPLOY_JOB_NAME_PREFIX
    if not DNS_1123_LABEL.match(prefix) or len(prefix) > 20:
        raise ImproperlyConfigured(
            f"DEPLOY_JOB_NAME_PREFIX={prefix!r} must be 1-20 lowercase letters, digits or '-', "
            "starting and ending with a letter or digit."
        )
    for environment, namespace in settings.DEPLOY_NAMESPACES.items():
        if not DNS_1123_LABEL.match(namespace):
            raise ImproperlyConfigured(
                f"DEPLOY_NAMESPACE_{environment.upper()}={namespace!r} is not a valid "
                "Kubernetes namespace (a DNS-1123 label: lowercase letters, digits and '-')."
            )
