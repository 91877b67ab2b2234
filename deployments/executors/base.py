"""The one small interface between Release Train and whatever runs a deployment's Job."""

import abc
import enum
import re
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from deployments.models import Deployment

# A DNS-1123 label: what Kubernetes requires of namespaces, and of Job names that pods and
# the `job-name` label are derived from.
DNS_1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


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

    @abc.abstractmethod
    def job_target(self, deployment: Deployment) -> tuple[str, str]:
        """The (job name, namespace) this deployment's Job gets; deterministic per deployment.
        Pure: it runs inside the reconciler's claim transaction."""

    @abc.abstractmethod
    def launch(self, deployment: Deployment) -> None:
        """Create the Job named `deployment.job_name` in `deployment.job_namespace`."""

    @abc.abstractmethod
    def poll(self, deployment: Deployment) -> JobStatus:
        """Where the Job of a running deployment stands."""

    @abc.abstractmethod
    def cancel(self, deployment: Deployment) -> None:
        """Stop and delete the Job; a Job that is already gone counts as done."""


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
    return str(
        deployment.config.get("namespace") or settings.DEPLOY_NAMESPACES[deployment.environment]
    )


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
