"""The reconciler: brings Jobs in line with the deployment rows, in the manner of a Kubernetes
controller.

A tick launches the pending deployments of deploying batches, applies the outcome of every Job
that finished or vanished (deployment -> release -> batch), and retries Job deletions that
failed before. `run` ticks whenever there is something to do: new work committed (PostgreSQL
NOTIFY, see `wakeup.py`) or a Job changed (the executor's watch), and at least every interval
as a fallback. Between changes it neither writes to the database nor calls the executor.

Fair: each phase goes through all of its ready work in a tick, never a fixed number of rows
from the lowest id. Work that failed rests before its next attempt (`next_attempt_at`, doubling
up to a cap), so it never holds up work that is ready. Running Jobs cost nothing per tick: their
state comes from the executor's watch (`job_states`), and only a finished one is claimed.

Any number of reconcilers may run side by side:

- Rows are claimed in short transactions (`SELECT ... FOR UPDATE SKIP LOCKED`) that record a
  lease (`claimed_by`, `claimed_until`); the executor is called after that commit, never
  inside a transaction. Others skip leased rows, so a live reconciler's work is never
  duplicated, and a crashed one's rows come free when the lease runs out.
- A launch records the Job's name before the Job exists ("pending with a job_name": a launch
  in flight, which blocks switches and makes a cancel delete the Job). Names are
  deterministic, so a launch repeated after a crash finds the Job (409) instead of making
  a second one.
- Launches of one claim go out in parallel from a small thread pool. Those threads only call
  the executor; every database write stays in the reconciler's own thread.
"""

import bisect
import contextlib
import heapq
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import connections, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from applications.choices import Environment
from deployments import wakeup
from deployments.choices import DeploymentStatus
from deployments.executors import (
    Executor,
    JobState,
    JobStatus,
    PermanentJobError,
    RunningJob,
    get_executor,
)
from deployments.metrics import job_operations, outcome_delay, work_waiting
from deployments.models import Deployment
from deployments.services import (
    deployment_jobs_cleanup,
    deployment_retry_later,
    deployments_mark_orphaned,
    deployments_mark_running,
    deployments_record_claim,
    deployments_release,
)

from .choices import BatchStatus
from .services import apply_deployment_outcome

logger = logging.getLogger(__name__)

# After a tick failed (the database went away, most likely), the pause before the next one.
FAILED_TICK_PAUSE_SECONDS = 1.0
WAITING_SAMPLE_SECONDS = 1.0
# How often the Jobs the executor knows of are checked for ones no deployment wants.
ORPHAN_CHECK_SECONDS = 60.0
# A launch claim looks at this many times as many ready rows as it takes.
LAUNCH_WINDOW = 4


@dataclass
class TickResult:
    launched: int = 0
    finished: int = 0
    cleaned: int = 0
    errors: int = 0

    def __str__(self) -> str:
        return (
            f"launched={self.launched} finished={self.finished} "
            f"cleaned={self.cleaned} errors={self.errors}"
        )


def launchable_deployments() -> QuerySet[Deployment]:
    """Pending, current deployments of the stage their batch is deploying."""
    return Deployment.objects.current().filter(
        Q(environment=Environment.PRE, release_app__batch__status=BatchStatus.PRE_DEPLOYING)
        | Q(environment=Environment.PROD, release_app__batch__status=BatchStatus.PROD_DEPLOYING),
        status=DeploymentStatus.PENDING,
    )


class Reconciler:
    def __init__(
        self,
        *,
        executor: Executor | None = None,
        name: str | None = None,
        stop: threading.Event | None = None,
    ):
        self.executor = executor or get_executor()
        # Unique per instance: a lease must never be mistaken for another reconciler's.
        self.name = name or f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.stop = stop or threading.Event()
        # Set by whatever brings new work: a NOTIFY, a Job that changed, a stop request.
        self.wake = threading.Event()
        self.lease = timedelta(seconds=settings.DEPLOY_RECONCILER_LEASE_SECONDS)
        self.batch_size = settings.DEPLOY_RECONCILER_BATCH
        self.workers = max(1, settings.DEPLOY_RECONCILER_LAUNCH_WORKERS)
        self._pool: ThreadPoolExecutor | None = None
        # When (time.monotonic()) the retries this reconciler scheduled are due: a heap.
        self._retries: list[float] = []
        self._waiting_measured_at = -WAITING_SAMPLE_SECONDS
        self._orphans_checked_at = -ORPHAN_CHECK_SECONDS

    # --- the loop ---

    def run(self, *, interval: float) -> None:
        """Tick when woken and at least every `interval` seconds, until `stop` is set."""
        self.executor.watch(on_change=self.wake.set, stop=self.stop)
        if not wakeup.listen(wake=self.wake, stop=self.stop):
            # Nothing will wake us (SQLite): look for work often; an idle tick is a few reads.
            interval = min(interval, settings.DEPLOY_RECONCILER_POLL_SECONDS)
        try:
            while not self.stop.is_set():
                self.wake.clear()
                try:
                    self.tick()
                except Exception as exc:
                    logger.exception("reconciler_tick_failed", extra={"error": repr(exc)})
                    # The next tick starts on a fresh connection, after a pause; the work that
                    # woke this one is still to do.
                    connections.close_all()
                    self.stop.wait(FAILED_TICK_PAUSE_SECONDS)
                    self.wake.set()
                self.wake.wait(self._pause(interval))
        finally:
            self.close()
            connections.close_all()

    def _pause(self, interval: float) -> float:
        """Until the next tick unless woken: the interval, or less if work this reconciler made
        rest is due before it."""
        now = time.monotonic()
        due = False
        while self._retries and self._retries[0] <= now:
            heapq.heappop(self._retries)  # the next tick takes it (and may schedule it again)
            due = True
        if due:
            return 0
        return min(interval, self._retries[0] - now) if self._retries else interval

    def request_stop(self) -> None:
        self.stop.set()
        self.wake.set()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def tick(self) -> TickResult:
        result = TickResult()
        self._measure_waiting()
        self._launch_ready(result)
        self._apply_outcomes(result)
        self._clean_up(result)
        return result

    def _measure_waiting(self) -> None:
        """The work-waiting gauge for cleanups: a COUNT, at most once a second (launches and
        outcomes are counted where they are found)."""
        now = time.monotonic()
        if now - self._waiting_measured_at < WAITING_SAMPLE_SECONDS:
            return
        self._waiting_measured_at = now
        cleanups = Deployment.objects.filter(cleanup_pending=True).unclaimed().due()
        work_waiting.labels(kind="cleanup").set(cleanups.count())

    # --- claiming ---

    def _claim(
        self, rows: QuerySet[Deployment], *, limit: int, assign_job: bool = False
    ) -> list[Deployment]:
        """Claim up to `limit` of the rows that are free and due, in pk order."""
        with transaction.atomic(durable=True):
            # Only deployment rows are locked, and SKIP LOCKED never waits: no lock order
            # to respect against the workflows' batch -> release -> deployment.
            deployments = list(
                rows.unclaimed()
                .due()
                .select_for_update(skip_locked=True, of=("self",))
                .select_related("release_app__application")
                .order_by("pk")[:limit]
            )
            if not deployments:
                return []
            for deployment in deployments:
                deployment.claimed_by = self.name
                if assign_job and not deployment.job_name:
                    # Recorded before the Job exists: from here on a cancel deletes it. A config
                    # that can never launch leaves it unnamed; the launch then fails it.
                    with contextlib.suppress(PermanentJobError):
                        target = self.executor.job_target(deployment)
                        deployment.job_name, deployment.job_namespace = target
            deployments_record_claim(
                deployments=deployments, claimed_by=self.name, lease=self.lease
            )
        return deployments

    def _each_claim(self, rows: QuerySet[Deployment], *, limit: int) -> Iterator[list[Deployment]]:
        """Claims of `rows` one after another until none is left: every ready row once a tick."""
        after = 0
        while not self.stop.is_set():
            claimed = self._claim(rows.filter(pk__gt=after), limit=limit)
            if not claimed:
                return
            after = claimed[-1].pk
            yield claimed

    def _retry_later(self, deployment: Deployment) -> timedelta:
        pause = deployment_retry_later(deployment=deployment, claimed_by=self.name)
        heapq.heappush(self._retries, time.monotonic() + pause.total_seconds())
        return pause

    # --- launching ---

    def _launch_ready(self, result: TickResult) -> None:
        # Which deployments are ready is one query over the stage's joins; each claim then
        # looks at a few of those rows by primary key (the joins again for every claim would
        # cost a stage of a thousand apps a quadratic amount of work).
        ready = list(
            launchable_deployments().unclaimed().due().order_by("pk").values_list("pk", flat=True)
        )
        work_waiting.labels(kind="launch").set(len(ready))
        # A claim is as large as the launches in flight at once (a reconciler that dies holds no
        # more rows than it was working on), taken from the next few ready rows that are free.
        start = 0
        while start < len(ready) and not self.stop.is_set():
            window = ready[start : start + LAUNCH_WINDOW * self.workers]
            # Still pending and current: a cancel or a switch may have come in between.
            rows = Deployment.objects.current().filter(
                pk__in=window, status=DeploymentStatus.PENDING
            )
            claimed = self._claim(rows, limit=self.workers, assign_job=True)
            # Past what was claimed; rows skipped meanwhile are another reconciler's.
            start = bisect.bisect_right(ready, claimed[-1].pk) if claimed else start + len(window)
            if claimed:
                self._launch(claimed, result)

    def _launch(self, claimed: list[Deployment], result: TickResult) -> None:
        errors = self._create_jobs(claimed)
        dying = [e for e in errors.values() if e is not None and not isinstance(e, Exception)]
        if dying:
            raise dying[0]  # the process is going down: leave the rest to the leases
        created = [d for d in claimed if errors[d.pk] is None]
        for deployment in claimed:
            if errors[deployment.pk] is not None:
                self._launch_failed(deployment, errors[deployment.pk], result)
        if created:
            self._launched(created, result)

    def _create_jobs(self, deployments: list[Deployment]) -> dict[int, BaseException | None]:
        """Create the deployments' Jobs, in parallel; what went wrong with each, if anything."""
        if self.workers == 1 or len(deployments) == 1:
            return {d.pk: _create(self.executor, d) for d in deployments}
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="reconciler-launch")
        futures = {
            d.pk: self._pool.submit(_in_worker, _create, self.executor, d) for d in deployments
        }
        return {pk: future.result() for pk, future in futures.items()}

    def _launch_failed(self, deployment: Deployment, error: Exception, result: TickResult) -> None:
        job = _job_fields(deployment)
        if isinstance(error, PermanentJobError):
            job_operations.labels(op="launch", result="rejected").inc()
            logger.error("job_launch_rejected", extra={**job, "error": str(error)})
            apply_deployment_outcome(
                deployment_id=deployment.pk, outcome=DeploymentStatus.FAILED, error=str(error)
            )
            deployments_release(deployment_ids=[deployment.pk], claimed_by=self.name)
            result.finished += 1
            return
        job_operations.labels(op="launch", result="error").inc()
        pause = self._retry_later(deployment)
        logger.warning(
            "job_launch_failed",
            extra={**job, "error": repr(error), "retry_in": pause.total_seconds()},
        )
        result.errors += 1

    def _launched(self, deployments: list[Deployment], result: TickResult) -> None:
        job_operations.labels(op="launch", result="ok").inc(len(deployments))
        cancelled = set(deployments_mark_running(deployments=deployments, claimed_by=self.name))
        for deployment in deployments:
            if deployment.pk in cancelled:
                # Cancelled (with its batch, or superseded) while the Job was being created.
                logger.warning("job_launched_after_cancel", extra=_job_fields(deployment))
            else:
                logger.info("job_launched", extra=_job_fields(deployment))
                result.launched += 1
        if cancelled:
            self._delete_jobs([d for d in deployments if d.pk in cancelled], result)

    # --- outcomes ---

    def _apply_outcomes(self, result: TickResult) -> None:
        # Plain values, not model instances: this runs on every wake-up, over every running Job.
        running = [
            RunningJob(*row)
            for row in Deployment.objects.filter(status=DeploymentStatus.RUNNING)
            .order_by("pk")
            .values_list("pk", "job_name", "job_namespace", "started_at")
        ]
        states = self.executor.job_states(running)
        # A Job that could not be looked at (the API failed) is looked at again next time.
        result.errors += len(running) - len(states)
        ended = {pk: s for pk, s in states.items() if s.state != JobState.RUNNING}
        work_waiting.labels(kind="outcome").set(len(ended))
        if not ended:
            return
        rows = Deployment.objects.filter(pk__in=list(ended), status=DeploymentStatus.RUNNING)
        for claimed in self._each_claim(rows, limit=self.batch_size):
            applied = []
            for deployment in claimed:
                if self._apply_outcome(deployment, ended[deployment.pk], result):
                    applied.append(deployment.pk)
            deployments_release(deployment_ids=applied, claimed_by=self.name)

    def _apply_outcome(self, deployment: Deployment, status: JobStatus, result: TickResult) -> bool:
        succeeded = status.state == JobState.SUCCEEDED
        try:
            # apply_deployment_outcome logs the outcome: one line per finished Job.
            outcome = apply_deployment_outcome(
                deployment_id=deployment.pk,
                outcome=DeploymentStatus.SUCCEEDED if succeeded else DeploymentStatus.FAILED,
                error="" if succeeded else status.detail or "Job failed.",
            )
        except Exception as exc:
            result.errors += 1
            logger.exception(
                "reconciler_error", extra={"deployment_id": deployment.pk, "error": repr(exc)}
            )
            self._retry_later(deployment)
            return False
        if outcome.changed:
            result.finished += 1
            if status.finished_at is not None:
                delay = (timezone.now() - status.finished_at).total_seconds()
                outcome_delay.observe(max(delay, 0.0))
        return True

    # --- Job deletions ---

    def _clean_up(self, result: TickResult) -> None:
        now = time.monotonic()
        if now - self._orphans_checked_at >= ORPHAN_CHECK_SECONDS:
            existing = self.executor.existing_jobs()  # none known before the first list
            if existing:
                self._orphans_checked_at = now
                deployments_mark_orphaned(jobs=existing)
        rows = Deployment.objects.filter(cleanup_pending=True)
        for claimed in self._each_claim(rows, limit=self.batch_size):
            self._delete_jobs(claimed, result)

    def _delete_jobs(self, claimed: list[Deployment], result: TickResult) -> None:
        done = set(
            deployment_jobs_cleanup(
                deployment_ids=[d.pk for d in claimed], claimed_by=self.name, executor=self.executor
            )
        )
        deployments_release(deployment_ids=list(done), claimed_by=self.name)
        result.cleaned += len(done)
        for deployment in claimed:
            if deployment.pk not in done:
                self._retry_later(deployment)
                result.errors += 1


def _create(executor: Executor, deployment: Deployment) -> BaseException | None:
    """Create the deployment's Job; returns what went wrong, if anything."""
    try:
        if not deployment.job_name:
            # The claim could not name it: raises the reason, which fails the deployment.
            executor.job_target(deployment)
        executor.launch(deployment)
    except BaseException as exc:
        return exc
    return None


def _in_worker(work: Callable, *args):
    """Run `work` in a pool thread; a database connection it opened is not left behind."""
    try:
        return work(*args)
    finally:
        connections.close_all()


def _job_fields(deployment: Deployment) -> dict:
    return {
        "deployment_id": deployment.pk,
        "app": deployment.release_app.application.name,
        "environment": deployment.environment,
        "image_tag": deployment.image_tag,
        "job_name": deployment.job_name,
        "job_namespace": deployment.job_namespace,
    }
