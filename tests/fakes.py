"""Test doubles of the outside world. Only the boundary is faked, never the code under test."""

import threading
import time

from deployments.executors import Executor, JobState, JobStatus


class RecordingExecutor(Executor):
    """Records every Job operation; `fail_cancel` makes deletions fail like an unreachable API."""

    calls: list[tuple[str, int, str]] = []
    fail_cancel = False
    cancel_seconds = 0.0  # how long a deletion takes, like a slow Kubernetes API
    _lock = threading.Lock()

    @classmethod
    def reset(cls) -> None:
        cls.calls = []
        cls.fail_cancel = False
        cls.cancel_seconds = 0.0

    def job_target(self, deployment):
        return f"rt-deploy-{deployment.pk}", f"rt-{deployment.environment}"

    def launch(self, deployment) -> None:
        with self._lock:
            self.calls.append(("launch", deployment.pk, deployment.job_name))

    def poll(self, deployment) -> JobStatus:
        return JobStatus(JobState.RUNNING)

    def cancel(self, deployment) -> None:
        with self._lock:
            self.calls.append(("cancel", deployment.pk, deployment.job_name))
        if self.cancel_seconds:
            time.sleep(self.cancel_seconds)
        if self.fail_cancel:
            raise ConnectionError("Kubernetes API unreachable")

    @classmethod
    def cancelled_ids(cls) -> list[int]:
        return [pk for op, pk, _ in cls.calls if op == "cancel"]
