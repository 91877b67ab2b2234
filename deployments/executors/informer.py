"""Job states kept current by list + watch, the way a Kubernetes informer does it.

One thread per scope (a namespace, or the whole cluster): list the Jobs, then watch for
changes from the list's resourceVersion, renewing the watch from the last version seen when
the server ends it. `410 Gone` (that version is too old), a failed request or a cut stream
lead to a fresh list; so does every resync period, a safety net for an event lost in between.
Failures back off exponentially (capped); the first relist after a `410` is immediate.

The informer knows nothing of the Kubernetes client: the executor hands it two functions,
`list_jobs` and `watch_jobs`. Only a change that matters to the reconciler calls `on_change`:
a Job that finished or vanished, or a fresh list.
"""

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.utils import timezone

from deployments.metrics import watch_restarts

from .base import JobState, JobStatus

logger = logging.getLogger(__name__)

Key = tuple[str, str]  # (namespace, Job name)

FIRST_PAUSE_SECONDS = 0.5
MAX_PAUSE_SECONDS = 30.0


@dataclass(frozen=True)
class WatchEvent:
    """A Job's new state (a deleted one is `MISSING`: kept until the next list, so a deletion is
    told apart from a Job not seen yet); without `key`, only the resourceVersion moved on (a
    bookmark)."""

    resource_version: str
    key: Key | None = None
    status: JobStatus | None = None


class Expired(Exception):
    """The resourceVersion a watch started from is too old (410 Gone): list again."""


class JobInformer:
    def __init__(
        self,
        *,
        scope: str,
        list_jobs: Callable[[], tuple[dict[Key, JobStatus], str]],
        watch_jobs: Callable[[str, int], Iterable[WatchEvent]],
        on_change: Callable[[], None],
        stop: threading.Event,
        watch_seconds: int,
        resync_seconds: float,
    ):
        self.scope = scope
        self._list_jobs = list_jobs
        self._watch_jobs = watch_jobs
        self._on_change = on_change
        self._stop = stop
        self._watch_seconds = watch_seconds
        self._resync_seconds = resync_seconds
        self._states: dict[Key, JobStatus] = {}
        self._lock = threading.Lock()
        self.synced = threading.Event()

    def start(self) -> "JobInformer":
        threading.Thread(target=self._run, name=f"informer-{self.scope}", daemon=True).start()
        return self

    def get(self, key: Key) -> JobStatus | None:
        """The Job's state as last seen (`MISSING` if it was deleted since the last list); None
        if this informer has not seen it."""
        with self._lock:
            return self._states.get(key)

    def existing(self) -> list[Key]:
        """The Jobs that exist, as last seen."""
        with self._lock:
            return [key for key, s in self._states.items() if s.state != JobState.MISSING]

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                self._list_and_watch()
                reason, failures = "resync", 0
            except Expired:
                reason = "expired"
                failures += 1
            except Exception as exc:
                reason = "error"
                failures += 1
                logger.warning("job_watch_failed", extra={"scope": self.scope, "error": repr(exc)})
            if self._stop.is_set():
                return
            watch_restarts.labels(reason=reason).inc()
            quick = reason == "resync" or (reason == "expired" and failures == 1)
            if not quick:
                self._stop.wait(
                    min(FIRST_PAUSE_SECONDS * 2 ** min(failures - 1, 10), MAX_PAUSE_SECONDS)
                )

    def _list_and_watch(self) -> None:
        """List, then watch until the resync is due; raises on anything that needs a relist."""
        states, version = self._list_jobs()
        with self._lock:
            self._states = states
        self.synced.set()
        # Whatever happened while we were not watching is in the list.
        self._on_change()
        resync_at = time.monotonic() + self._resync_seconds
        while not self._stop.is_set():
            left = resync_at - time.monotonic()
            if left <= 0:
                return
            seconds = max(1, min(self._watch_seconds, int(left)))
            for event in self._watch_jobs(version, seconds):
                version = event.resource_version or version
                if event.key is not None and event.status is not None:
                    self._apply(event.key, event.status)
                if self._stop.is_set():
                    return
            # The server ended the watch (its timeout): go on from the last version seen.

    def _apply(self, key: Key, status: JobStatus) -> None:
        ended = status.state != JobState.RUNNING
        with self._lock:
            before = self._states.get(key)
            if ended and status.finished_at is None:
                # The Job does not say when it finished: the moment we learnt it is the closest.
                seen = before.finished_at if before and before.state == status.state else None
                status = dataclasses.replace(status, finished_at=seen or timezone.now())
            self._states[key] = status
        if ended and before != status:
            self._on_change()
