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
  lease (`claimed_by`, `claimed_until`) and a token; the executor is called after that commit,
  never inside a transaction. Others skip leased rows, so a live reconciler's work is never
  duplicated. The lease is short and renewed while the work is in hand.
- A dead reconciler's claims are taken over at once: each tick looks at the owners of the
  claims held, and ends those of owners whose liveness lock is free (see `wakeup.py`): the
  process died or lost the database. A lease that ran out frees its rows anyway (a paused
  process, or SQLite, which has no such locks). Every write of a claim checks its token, so a
  reconciler that wakes after its claim was taken over writes nothing over the new owner.
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
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import connection, connections, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
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
from deployments.locks import claimable_deployments_lock
from deployments.metrics import (
    claims_lost,
    claims_taken_over,
    job_operations,
    outcome_delay,
    work_waiting,
)
from deployments.models import Deployment
from deployments.services import (
    deployment_jobs_cleanup,
    deployment_retry_later,
    deployments_claim_end,
    deployments_claim_renew,
    deployments_claims_held_by,
    deployments_mark_orphaned,
    deployments_mark_running,
    deployments_record_claim,
    deployments_take_over,
)

from . import locks
from .choices import BatchStatus
from .models import Hold
from .services import apply_deployment_outcome

logger = logging.getLogger(__name__)

# After a tick failed (the database went away, most likely), the pause before the next one.
FAILED_TICK_PAUSE_SECONDS = 1.0
WAITING_SAMPLE_SECONDS = 1.0
# How often the Jobs the executor knows of are checked for ones no deployment wants.
ORPHAN_CHECK_SECONDS = 60.0
# A launch claim looks at this many times as many ready rows as it takes.
LAUNCH_WINDOW = 4
# Past the moment a hold ends or starts before the tick that sees it, so that tick finds it so.
HOLD_CHANGE_MARGIN_SECONDS = 0.05
# How often, at most, a busy tick looks for dead reconcilers' claims between its own claims.
TAKEOVER_CHECK_SECONDS = 1.0


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
    """Pending, current deployments of the stage their batch is deploying, that no hold stops."""
    return unheld(
        Deployment.objects.current().filter(
            Q(environment=Environment.PRE, release_app__batch__status=BatchStatus.PRE_DEPLOYING)
            | Q(
                environment=Environment.PROD,
                release_app__batch__status=BatchStatus.PROD_DEPLOYING,
            ),
            status=DeploymentStatus.PENDING,
        )
    )


def unheld(deployments: QuerySet[Deployment]) -> QuerySet[Deployment]:
    """The deployments no active hold covers: those may launch."""
    return deployments.exclude(
        Exists(
            Hold.objects.active().covering(
                environment=OuterRef("environment"),
                application=OuterRef("application_id"),
                batch=OuterRef("release_app__batch_id"),
            )
        )
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
        # When a hold next starts or ends (a datetime), as of the last tick: a wake-up is due.
        self._hold_change = None
        self._waiting_measured_at = -WAITING_SAMPLE_SECONDS
        self._orphans_checked_at = -ORPHAN_CHECK_SECONDS
        # Whose session holds this reconciler's liveness lock: the LISTEN connection's once
        # `run` listens, else the database connection it ticks on.
        self._listening = False
        self._alive_on = None
        # When (time.monotonic()) the lease of the claim in hand was last written.
        self._renewed_at = 0.0
        self._owners_checked_at = -TAKEOVER_CHECK_SECONDS
        # Set when a dead reconciler's claims came free in the middle of a tick.
        self._took_over = False

    # --- the loop ---

    def run(self, *, interval: float) -> None:
        """Tick when woken and at least every `interval` seconds, until `stop` is set."""
        self.executor.watch(on_change=self.wake.set, stop=self.stop)
        self._listening = wakeup.listen(wake=self.wake, stop=self.stop, name=self.name)
        if not self._listening:
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
        pause = min(interval, self._retries[0] - now) if self._retries else interval
        if self._hold_change is not None:
            # A held stage resumes when its hold ends, with nobody to wake us: no cron.
            until = (self._hold_change - timezone.now()).total_seconds()
            pause = min(pause, max(until, 0) + HOLD_CHANGE_MARGIN_SECONDS)
        return pause

    def request_stop(self) -> None:
        self.stop.set()
        self.wake.set()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def tick(self) -> TickResult:
        result = TickResult()
        self._stay_alive()
        self._take_over_dead(between_ticks=True)
        self._measure_waiting()
        self._hold_change = Hold.objects.next_change()
        for phase in (self._launch_ready, self._apply_outcomes, self._clean_up):
            phase(result)
            if self._took_over:
                # Its launches would wait for the rest of this tick (the outcomes of a whole
                # stage, maybe): the next tick starts at once, with them.
                self._took_over = False
                self.wake.set()
                break
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

    # --- liveness ---

    def _stay_alive(self) -> None:
        """Hold this reconciler's liveness lock on its own connection when nothing listens
        for it (`--once`, or ticks driven by hand): without it, its claims look dead."""
        if self._listening or connection.vendor != "postgresql":
            return
        connection.ensure_connection()
        if connection.connection is not self._alive_on:  # a new session: the lock went with it
            with connection.cursor() as cursor:
                wakeup.liveness_hold(cursor, self.name)
            self._alive_on = connection.connection

    def _take_over_dead(self, *, between_ticks: bool = False) -> int:
        """End the claims of reconcilers that are gone (their liveness lock is free), so their
        work is done now rather than after their leases; within a tick at most once a
        TAKEOVER_CHECK_SECONDS. Between ticks this one holds no claim: any under its own name
        was left by a tick that failed (the database went away), and ends too. Returns how
        many rows came free."""
        now = time.monotonic()
        if not between_ticks and now - self._owners_checked_at < TAKEOVER_CHECK_SECONDS:
            return 0
        self._owners_checked_at = now
        owners = deployments_claims_held_by()
        others = owners - {self.name}
        ended = others - wakeup.reconcilers_alive(others)
        if between_ticks:
            ended |= owners & {self.name}
        taken = deployments_take_over(owners=ended)
        claims_taken_over.inc(taken)
        return taken

    def _between_claims(self) -> bool:
        """Whether to go on claiming in this tick: not once a dead reconciler's claims came
        free (the next tick starts with them)."""
        if self._take_over_dead():
            self._took_over = True
        return not (self._took_over or self.stop.is_set())

    def _renew(self, token: uuid.UUID) -> None:
        """Keep the lease of the claim in hand from running out while the work goes on: a
        third of the lease at most passes between renewals."""
        now = time.monotonic()
        if now - self._renewed_at >= self.lease.total_seconds() / 3:
            deployments_claim_renew(token=token, lease=self.lease)
            self._renewed_at = now

    # --- claiming ---

    def _claim(
        self, rows: QuerySet[Deployment], *, limit: int, assign_job: bool = False
    ) -> list[Deployment]:
        """Claim up to `limit` of the rows that are free and due, in pk order."""
        with transaction.atomic(durable=True):
            if assign_job:
                # A launch claim: a hold being placed commits first and is left out here (the
                # time is read after the lock), or waits for this claim (releases/locks.py).
                locks.holds_lock(shared=True)
                rows = unheld(rows)
            # Only deployment rows are locked, and SKIP LOCKED never waits: no lock order
            # to respect against the workflows' batch -> release -> deployment.
            deployments = claimable_deployments_lock(rows=rows.unclaimed().due(), limit=limit)
            if not deployments:
                return []
            token = uuid.uuid4()
            for deployment in deployments:
                deployment.claimed_by = self.name
                deployment.claim_token = token
                if assign_job and not deployment.job_name:
                    # Recorded before the Job exists: from here on a cancel deletes it. A config
                    # that can never launch leaves it unnamed; the launch then fails it.
                    with contextlib.suppress(PermanentJobError):
                        target = self.executor.job_target(deployment)
                        deployment.job_name, deployment.job_namespace = target
            deployments_record_claim(
                deployments=deployments, claimed_by=self.name, token=token, lease=self.lease
            )
        self._renewed_at = time.monotonic()
        return deployments

    def _each_claim(self, rows: QuerySet[Deployment], *, limit: int) -> Iterator[list[Deployment]]:
        """Claims of `rows` one after another until none is left: every ready row once a tick."""
        after = 0
        while self._between_claims():
            claimed = self._claim(rows.filter(pk__gt=after), limit=limit)
            if not claimed:
                return
            after = claimed[-1].pk
            yield claimed

    def _retry_later(self, deployment: Deployment) -> timedelta:
        pause = deployment_retry_later(deployment=deployment, token=deployment.claim_token)
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
        while start < len(ready) and self._between_claims():
            window = ready[start : start + LAUNCH_WINDOW * self.workers]
            # Still pending and current: a cancel or a switch may have come in between (and a
            # hold: the claim looks).
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
        """Create the deployments' Jobs, in parallel; what went wrong with each, if anything.
        Even one goes to the pool, and this thread renews the claim's lease meanwhile; with
        a single worker, the lease outlasts a launch (2 x DEPLOY_KUBERNETES_TIMEOUT)."""
        if self.workers == 1:
            return {d.pk: _create(self.executor, d) for d in deployments}
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="reconciler-launch")
        futures = {
            d.pk: self._pool.submit(_in_worker, _create, self.executor, d) for d in deployments
        }
        token = deployments[0].claim_token
        while wait(futures.values(), timeout=self.lease.total_seconds() / 3).not_done:
            self._renew(token)
        return {pk: future.result() for pk, future in futures.items()}

    def _launch_failed(self, deployment: Deployment, error: Exception, result: TickResult) -> None:
        job = _job_fields(deployment)
        if isinstance(error, PermanentJobError):
            job_operations.labels(op="launch", result="rejected").inc()
            logger.error("job_launch_rejected", extra={**job, "error": str(error)})
            outcome = apply_deployment_outcome(
                deployment_id=deployment.pk,
                outcome=DeploymentStatus.FAILED,
                error=str(error),
                claim_token=deployment.claim_token,
            )
            result.finished += outcome.changed
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
        recorded = deployments_mark_running(
            deployments=deployments, token=deployments[0].claim_token
        )
        cancelled, lost = set(recorded.cancelled), set(recorded.lost)
        if lost:
            self._lost(lost, work="launch")
        for deployment in deployments:
            if deployment.pk in lost:
                continue
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
            for i, deployment in enumerate(claimed):
                if i and not self._between_claims():
                    # Not applied: they are the next tick's, this one's or another's.
                    rest = [d.pk for d in claimed[i:]]
                    deployments_claim_end(deployment_ids=rest, token=deployment.claim_token)
                    return
                self._apply_outcome(deployment, ended[deployment.pk], result)
                self._renew(deployment.claim_token)

    def _apply_outcome(self, deployment: Deployment, status: JobStatus, result: TickResult) -> None:
        """Apply one outcome; the claim on the row ends with it."""
        succeeded = status.state == JobState.SUCCEEDED
        try:
            # apply_deployment_outcome logs the outcome: one line per finished Job.
            outcome = apply_deployment_outcome(
                deployment_id=deployment.pk,
                outcome=DeploymentStatus.SUCCEEDED if succeeded else DeploymentStatus.FAILED,
                error="" if succeeded else status.detail or "Job failed.",
                claim_token=deployment.claim_token,
            )
        except Exception as exc:
            result.errors += 1
            logger.exception(
                "reconciler_error", extra={"deployment_id": deployment.pk, "error": repr(exc)}
            )
            self._retry_later(deployment)
            return
        if outcome.claim_lost:
            self._lost({deployment.pk}, work="outcome")
        if outcome.changed:
            result.finished += 1
            if status.finished_at is not None:
                delay = (timezone.now() - status.finished_at).total_seconds()
                outcome_delay.observe(max(delay, 0.0))

    def _lost(self, deployment_ids: set[int], *, work: str) -> None:
        claims_lost.labels(work=work).inc(len(deployment_ids))
        logger.warning(
            "reconciler_claim_lost",
            extra={"deployment_ids": sorted(deployment_ids), "work": work, "reconciler": self.name},
        )

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
        token = claimed[0].claim_token
        done = set()
        for deployment in claimed:  # one by one, renewing the lease in between
            self._renew(token)
            done.update(
                deployment_jobs_cleanup(
                    deployment_ids=[deployment.pk], token=token, executor=self.executor
                )
            )
        deployments_claim_end(deployment_ids=list(done), token=token)
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
