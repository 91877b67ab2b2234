"""The reconciler: brings Jobs in line with the deployment rows, one tick at a time.

A tick launches the pending deployments of deploying batches, polls the running ones and
carries their outcome up (deployment -> release -> batch), and retries Job deletions that
failed before. Any number of reconcilers may run side by side:

- A row is claimed in a short transaction (`SELECT ... FOR UPDATE SKIP LOCKED`) that records
  a lease (`claimed_by`, `claimed_until`); the executor is called after that commit, never
  inside a transaction. Other reconcilers skip leased rows, so a live reconciler's work is
  never duplicated, and a crashed one's rows come free when the lease runs out.
- A launch records the Job's name before the Job exists ("pending with a job_name": a launch
  in flight, which blocks switches and makes a cancel delete the Job). Names are
  deterministic, so a launch repeated after a crash finds the Job (409) instead of making
  a second one.
"""

import contextlib
import logging
import os
import socket
import threading
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import DateTimeField, ExpressionWrapper, Q, QuerySet
from django.db.models.functions import Now

from releases.choices import BatchStatus
from releases.services import apply_deployment_outcome

from .choices import DeploymentStatus, Environment
from .executors import Executor, JobState, PermanentJobError, get_executor
from .metrics import job_operations
from .models import Deployment
from .services import deployment_jobs_cleanup, deployment_mark_running

logger = logging.getLogger(__name__)


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
        self.lease = timedelta(seconds=settings.DEPLOY_RECONCILER_LEASE_SECONDS)
        self.batch_size = settings.DEPLOY_RECONCILER_BATCH

    def tick(self) -> TickResult:
        result = TickResult()
        self._each(launchable_deployments(), self._launch, result, assign_job=True)
        self._each(Deployment.objects.filter(status=DeploymentStatus.RUNNING), self._poll, result)
        self._each(Deployment.objects.filter(cleanup_pending=True), self._cleanup, result)
        return result

    # --- claiming ---

    def _each(self, rows: QuerySet[Deployment], work, result: TickResult, **claim) -> None:
        """Claim and work on the rows one at a time, in pk order, at most a batch per tick."""
        after = 0
        for _ in range(self.batch_size):
            if self.stop.is_set():
                return
            deployment = self._claim(rows.filter(pk__gt=after), **claim)
            if deployment is None:
                return
            after = deployment.pk
            try:
                work(deployment, result)
            except Exception as exc:
                # The lease lapses by itself, so an unexpected failure is retried, not hammered.
                result.errors += 1
                logger.exception(
                    "reconciler_error",
                    extra={"deployment_id": deployment.pk, "error": repr(exc)},
                )
            else:
                self._release(deployment)

    def _claim(self, rows: QuerySet[Deployment], *, assign_job: bool = False) -> Deployment | None:
        with transaction.atomic(durable=True):
            # Only the deployment row is locked, and SKIP LOCKED never waits: no lock order
            # to respect against the workflows' batch -> release -> deployment.
            deployment = (
                rows.unclaimed()
                .select_for_update(skip_locked=True, of=("self",))
                .select_related("release_app__application")
                .order_by("pk")
                .first()
            )
            if deployment is None:
                return None
            deployment.claimed_by = self.name
            # The database's clock, for every reconciler alike: host clocks may drift apart.
            deployment.claimed_until = ExpressionWrapper(
                Now() + self.lease, output_field=DateTimeField()
            )
            fields = ["claimed_by", "claimed_until"]
            if assign_job and not deployment.job_name:
                # Recorded before the Job exists: from here on a cancel deletes it. A config
                # that can never launch leaves it unnamed; the launch then fails it.
                with contextlib.suppress(PermanentJobError):
                    target = self.executor.job_target(deployment)
                    deployment.job_name, deployment.job_namespace = target
                    fields += ["job_name", "job_namespace"]
            deployment.save(update_fields=fields)
        return deployment

    def _release(self, deployment: Deployment) -> None:
        Deployment.objects.filter(pk=deployment.pk, claimed_by=self.name).update(
            claimed_by="", claimed_until=None
        )

    # --- the work ---

    def _launch(self, deployment: Deployment, result: TickResult) -> None:
        job = _job_fields(deployment)
        try:
            if not deployment.job_name:
                # The claim could not name it: raises the reason, which fails the deployment.
                self.executor.job_target(deployment)
            self.executor.launch(deployment)
        except PermanentJobError as exc:
            job_operations.labels(op="launch", result="rejected").inc()
            logger.error("job_launch_rejected", extra={**job, "error": str(exc)})
            apply_deployment_outcome(
                deployment_id=deployment.pk, outcome=DeploymentStatus.FAILED, error=str(exc)
            )
            result.finished += 1
            return
        except Exception as exc:
            job_operations.labels(op="launch", result="error").inc()
            logger.warning("job_launch_failed", extra={**job, "error": repr(exc), "retry": True})
            result.errors += 1
            return
        job_operations.labels(op="launch", result="ok").inc()
        status = deployment_mark_running(
            deployment_id=deployment.pk,
            job_name=deployment.job_name,
            job_namespace=deployment.job_namespace,
        )
        if status != DeploymentStatus.CANCELLED:
            logger.info("job_launched", extra=job)
            result.launched += 1
            return
        # Cancelled (with its batch, or superseded) while the Job was being created.
        logger.warning("job_launched_after_cancel", extra=job)
        cleaned = deployment_jobs_cleanup(deployment_ids=[deployment.pk], claimed_by=self.name)
        result.cleaned += len(cleaned)

    def _poll(self, deployment: Deployment, result: TickResult) -> None:
        job = _job_fields(deployment)
        try:
            status = self.executor.poll(deployment)
        except Exception as exc:
            job_operations.labels(op="poll", result="error").inc()
            logger.warning("job_poll_failed", extra={**job, "error": repr(exc), "retry": True})
            result.errors += 1
            return
        job_operations.labels(op="poll", result=status.state.value).inc()
        if status.state != JobState.RUNNING:
            # apply_deployment_outcome logs the outcome: one line per finished Job.
            succeeded = status.state == JobState.SUCCEEDED
            apply_deployment_outcome(
                deployment_id=deployment.pk,
                outcome=DeploymentStatus.SUCCEEDED if succeeded else DeploymentStatus.FAILED,
                error="" if succeeded else status.detail or "Job failed.",
            )
            result.finished += 1

    def _cleanup(self, deployment: Deployment, result: TickResult) -> None:
        done = deployment_jobs_cleanup(deployment_ids=[deployment.pk], claimed_by=self.name)
        if done:
            result.cleaned += 1
        else:
            result.errors += 1


def _job_fields(deployment: Deployment) -> dict:
    return {
        "deployment_id": deployment.pk,
        "app": deployment.release_app.application.name,
        "environment": deployment.environment,
        "image_tag": deployment.image_tag,
        "job_name": deployment.job_name,
        "job_namespace": deployment.job_namespace,
    }
