import logging
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID

from django.conf import settings
from django.db import connection, transaction
from django.db.models import DateTimeField, ExpressionWrapper, Q
from django.db.models.functions import Now
from django.utils import timezone

from live.revisions import live_touch
from utilities.budget import TimeBudget, request_budget

from .choices import DeploymentStatus
from .executors import Executor, get_executor
from .locks import claimed_deployments_lock, deployments_lock
from .metrics import job_operations
from .models import CLAIM_FIELDS, Deployment
from .wakeup import reconcilers_wake

logger = logging.getLogger(__name__)


def deployment_create(
    *, release, environment: str, image_tag: str, config: dict, user, replacing: list[Deployment]
) -> Deployment:
    """A new current deployment that supersedes `replacing`. Caller holds their row locks.

    Superseded rows are kept: the chain through `superseded_by` is the release's history.
    Their Jobs are deleted after commit (see `deployment_jobs_cleanup`).
    """
    now = timezone.now()
    for old in replacing:
        old.mark_superseded(at=now)
        # Written before the insert: the database allows one current row per environment.
        old.save(update_fields=["superseded_at", "status", "finished_at", "cleanup_pending"])
    deployment = Deployment.objects.create(
        release_app=release,
        application_id=release.application_id,
        environment=environment,
        image_tag=image_tag,
        config=config,
        created_by=user,
    )
    if replacing:
        Deployment.objects.filter(pk__in=[d.pk for d in replacing]).update(superseded_by=deployment)
        for old in replacing:
            old.superseded_by = deployment
        deployment_jobs_cleanup_on_commit(deployments=replacing)
    return deployment


def deployment_jobs_cleanup_on_commit(*, deployments: list[Deployment]) -> None:
    """Delete these deployments' Jobs once the caller's transaction commits.

    This runs in the caller's request, which gets one time budget in all: what is left when it
    runs out stays `cleanup_pending` for the reconciler, rather than holding the response.
    """
    ids = [d.pk for d in deployments if d.cleanup_pending]
    if ids:
        # One budget for the whole request, however many workflows it runs (a bulk switch).
        budget = request_budget("job_cleanup", settings.DEPLOY_CLEANUP_BUDGET_SECONDS)
        # Robust: the transaction has committed, so nothing here may turn it into an error.
        transaction.on_commit(
            lambda: _jobs_cleanup_then_wake(deployment_ids=ids, budget=budget), robust=True
        )


def _jobs_cleanup_then_wake(*, deployment_ids: list[int], budget: TimeBudget) -> None:
    """The request deletes what its budget allows; only what it left undone (spent budget, a
    failed delete, a Job whose create is still in flight) wakes the reconcilers. Waking them
    before would have them race the request to delete the same Jobs."""
    done = deployment_jobs_cleanup(deployment_ids=deployment_ids, budget=budget)
    if len(done) < len(deployment_ids):
        reconcilers_wake()


def deployment_jobs_cleanup(
    *,
    deployment_ids: list[int],
    token: UUID | None = None,
    budget: TimeBudget | None = None,
    executor: Executor | None = None,
) -> list[int]:
    """Delete the Jobs of these deployments; returns the ids whose Job is now gone.

    Runs outside any transaction. A failure leaves `cleanup_pending` set, so the reconciler
    retries it; nothing that already committed is undone. `token` is the claim on these rows
    that the caller holds, if it is a reconciler. No deletion starts once `budget` is
    spent. `executor` is the caller's own, if it has one.
    """
    executor = executor or get_executor()
    done = []
    pending = Deployment.objects.filter(pk__in=deployment_ids, cleanup_pending=True).order_by("pk")
    for deployment in pending:
        if budget is not None and budget.spent:
            logger.warning(
                "job_delete_deferred",
                extra={"deployment_id": deployment.pk, "reason": "time budget spent"},
            )
            continue
        try:
            with budget.spending() if budget is not None else nullcontext():
                executor.cancel(deployment)
        except Exception as exc:
            job_operations.labels(op="cancel", result="error").inc()
            logger.warning(
                "job_delete_failed",
                extra={
                    "deployment_id": deployment.pk,
                    "job_name": deployment.job_name,
                    "job_namespace": deployment.job_namespace,
                    "error": repr(exc),
                },
            )
            continue
        job_operations.labels(op="cancel", result="ok").inc()
        # A reconciler that holds the row may be creating this very Job right now (a launch in
        # flight when the batch was cancelled), so a delete that ran ahead of the create does
        # not settle it: the flag stays for the reconciler, which deletes again after its claim.
        free = Deployment.objects.unclaimed()
        if token:
            free |= Deployment.objects.filter(claim_token=token)
        if not free.filter(pk=deployment.pk).update(cleanup_pending=False):
            logger.info(
                "job_delete_deferred",
                extra={"deployment_id": deployment.pk, "job_name": deployment.job_name},
            )
            continue
        logger.info(
            "job_deleted",
            extra={"deployment_id": deployment.pk, "job_name": deployment.job_name},
        )
        done.append(deployment.pk)
    return done


@dataclass(frozen=True)
class LaunchesRecorded:
    # Cancelled while their Job was being created: those Jobs are to be deleted, and the rows
    # stay claimed for it.
    cancelled: list[int]
    # No longer this claim's (taken over while the reconciler was paused): nothing was written.
    lost: list[int]


def deployments_mark_running(*, deployments: list[Deployment], token: UUID) -> LaunchesRecorded:
    """Record that these deployments' Jobs exist, in one transaction, and end the claim `token`
    on each that runs. Their Job names were recorded when they were claimed. Rows the claim no
    longer holds are left to their new owner.

    Each row goes through its `start` transition; what the transitions did is then written in
    one set-based UPDATE, because the same values go to every row (a `save()` per row, or
    `bulk_update`'s CASE per row and field, costs a launch of hundreds of Jobs seconds).
    """
    now = timezone.now()
    ids = [d.pk for d in deployments]
    with transaction.atomic(durable=True):
        # Deployment rows only, in pk order, like every workflow's last level of locks.
        rows = claimed_deployments_lock(ids=ids, token=token)
        # Each row written by one UPDATE (see deployments_record_claim for why), grouped by
        # what changes: started and freed, or freed only (running already, or finished).
        groups: dict[bool, list[int]] = {}
        for deployment in rows:
            started = deployment.status == DeploymentStatus.PENDING
            if started:
                deployment.start(at=now)
            if deployment.status != DeploymentStatus.CANCELLED:
                groups.setdefault(started, []).append(deployment.pk)
        for started, pks in groups.items():
            values = {"status": DeploymentStatus.RUNNING, "started_at": now} if started else {}
            Deployment.objects.filter(pk__in=pks).update(**values, **_CLAIM_ENDED)
        live_touch(deployment_ids=groups.get(True, []))
    held = {d.pk for d in rows}
    return LaunchesRecorded(
        cancelled=[d.pk for d in rows if d.status == DeploymentStatus.CANCELLED],
        lost=[pk for pk in ids if pk not in held],
    )


def deployments_record_claim(
    *, deployments: list[Deployment], claimed_by: str, token: UUID, lease: timedelta
) -> None:
    """Write a claim on these rows (locked by the caller) and their Job names, one UPDATE for
    all of them. Each row is written once in the claim's transaction: a second UPDATE of a row
    this transaction already wrote makes PostgreSQL check its foreign keys again at commit
    (`FOR KEY SHARE` on the release), which can wait for a workflow holding that release while
    the workflow waits for this row."""
    table = connection.ops.quote_name(Deployment._meta.db_table)
    if connection.vendor != "postgresql":
        # SQLite (the demo) has no VALUES list with column names; one UPDATE per row.
        for d in deployments:
            Deployment.objects.filter(pk=d.pk).update(
                claimed_by=claimed_by,
                claimed_until=ExpressionWrapper(Now() + lease, output_field=DateTimeField()),
                claim_token=token,
                job_name=d.job_name,
                job_namespace=d.job_namespace,
            )
        return
    rows = ", ".join(["(%s, %s, %s)"] * len(deployments))
    with connection.cursor() as cursor:
        # The database's clock, for every reconciler alike: host clocks may drift apart.
        cursor.execute(
            f"UPDATE {table} AS d SET claimed_by = %s, claim_token = %s, "
            "claimed_until = statement_timestamp() + %s, "
            "job_name = v.name, job_namespace = v.namespace "
            f"FROM (VALUES {rows}) AS v(id, name, namespace) WHERE d.id = v.id",
            [claimed_by, token, lease]
            + [value for d in deployments for value in (d.pk, d.job_name, d.job_namespace)],
        )


def deployments_claim_renew(*, token: UUID, lease: timedelta) -> int:
    """Extend the lease of the rows claim `token` still holds; returns how many. Rows a
    workflow has locked right now are skipped (renewed next time) rather than waited for: a
    renewal never holds up, nor deadlocks with, a workflow."""
    if connection.vendor != "postgresql":
        return Deployment.objects.filter(claim_token=token).update(
            claimed_until=ExpressionWrapper(Now() + lease, output_field=DateTimeField())
        )
    table = connection.ops.quote_name(Deployment._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET claimed_until = statement_timestamp() + %s WHERE id IN "
            f"(SELECT id FROM {table} WHERE claim_token = %s FOR UPDATE SKIP LOCKED)",
            [lease, token],
        )
        return cursor.rowcount


def deployments_claims_held_by() -> set[str]:
    """The reconcilers that hold a claim whose lease has not run out."""
    return set(
        Deployment.objects.filter(claimed_until__gte=Now())
        .values_list("claimed_by", flat=True)
        .distinct()
    )


def deployments_take_over(*, owners: set[str]) -> int:
    """End the claims of these reconcilers, seen dead, so that the next claim takes their work
    at once instead of after their leases. Their tokens go with them: should one of them still
    be alive after all, its writes of those claims change nothing. Returns how many rows."""
    if not owners:
        return 0
    taken = _end_claims(Deployment.objects.filter(claimed_by__in=owners), attempts_too=False)
    if taken:
        logger.warning(
            "reconciler_claims_taken_over", extra={"owners": sorted(owners), "rows": taken}
        )
    return taken


def deployments_mark_orphaned(*, jobs: list[tuple[str, str]]) -> list[int]:
    """Of these existing Jobs, flag for deletion those whose deployment no longer wants them:
    cancelled or superseded, and not flagged already (a create that timed out on our side and
    completed on the server after the cancel's deletion found nothing). Returns their ids."""
    existing = set(jobs)
    unwanted = Deployment.objects.filter(
        Q(status=DeploymentStatus.CANCELLED) | Q(superseded_at__isnull=False),
        job_name__in={name for _, name in existing},
        cleanup_pending=False,
    ).values_list("pk", "job_namespace", "job_name")
    ids = [pk for pk, namespace, name in unwanted if (namespace, name) in existing]
    if ids:
        _update_in_pk_order(
            Deployment.objects.filter(pk__in=ids, cleanup_pending=False), cleanup_pending=True
        )
        logger.warning("job_orphaned", extra={"deployment_ids": ids})
    return ids


def deployments_claim_end(*, deployment_ids: list[int], token: UUID) -> None:
    """End the claim `token` on these rows after work that succeeded; their failure count
    starts again."""
    if deployment_ids:
        _end_claims(Deployment.objects.filter(pk__in=deployment_ids, claim_token=token))


# What `Deployment.end_claim` writes, for set-based UPDATEs.
_CLAIM_ENDED = {field: Deployment._meta.get_field(field).get_default() for field in CLAIM_FIELDS}


def _end_claims(rows, *, attempts_too: bool = True) -> int:
    values = dict(_CLAIM_ENDED)
    if not attempts_too:
        # A takeover: the work did not succeed, the failures so far still count.
        del values["attempts"], values["next_attempt_at"]
    return _update_in_pk_order(rows, **values)


def _update_in_pk_order(rows, **values) -> int:
    """UPDATE several deployment rows, locking them first in pk order as every workflow does: a
    bare multi-row UPDATE locks rows in whatever order it scans them, and could deadlock with a
    cancel or a stage start locking the same rows."""
    with transaction.atomic(durable=True):
        ids = [d.pk for d in deployments_lock(rows=rows.only("pk"))]
        return Deployment.objects.filter(pk__in=ids).update(**values)


def deployment_retry_later(*, deployment: Deployment, token: UUID) -> timedelta:
    """End the claim `token` after a failed attempt; the row rests before the next one,
    twice as long after each failure in a row, up to DEPLOY_RETRY_MAX_SECONDS. Returns the pause."""
    pause = timedelta(
        seconds=min(
            settings.DEPLOY_RETRY_BASE_SECONDS * 2 ** min(deployment.attempts, 30),
            settings.DEPLOY_RETRY_MAX_SECONDS,
        )
    )
    # The database's clock, like the lease's: host clocks may drift apart.
    Deployment.objects.filter(pk=deployment.pk, claim_token=token).update(
        claimed_by="",
        claimed_until=None,
        claim_token=None,
        attempts=deployment.attempts + 1,
        next_attempt_at=ExpressionWrapper(Now() + pause, output_field=DateTimeField()),
    )
    return pause
