"""The one small interface between Release Train and whatever runs a deployment's Job."""

import abc
import enum
from dataclasses import dataclass

from deployments.models import Deployment


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


class Executor(abc.ABC):
    """Launch, poll and cancel the Job of a deployment. Called outside any transaction.

    Every operation is idempotent: launching a Job that exists counts as launched, cancelling
    a Job that does not exist counts as cancelled.
    """

    @abc.abstractmethod
    def job_target(self, deployment: Deployment) -> tuple[str, str]:
        """The (job name, namespace) this deployment's Job gets; deterministic per deployment."""

    @abc.abstractmethod
    def launch(self, deployment: Deployment) -> None:
        """Create the Job named `deployment.job_name` in `deployment.job_namespace`."""

    @abc.abstractmethod
    def poll(self, deployment: Deployment) -> JobStatus:
        """Where the Job of a running deployment stands."""

    @abc.abstractmethod
    def cancel(self, deployment: Deployment) -> None:
        """Stop and delete the Job; a Job that is already gone counts as done."""
