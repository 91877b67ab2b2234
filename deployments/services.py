import logging
from contextlib import nullcontext

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from utilities.budget import TimeBudget, request_budget

from .choices import DeploymentStatus
from .executors import get_executor
from .metrics import job_operations
from .models import Deployment

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
            lambda: deployment_jobs_cleanup(deployment_ids=ids, budget=budget), robust=True
        )


def deployment_jobs_cleanup(
    *, deployment_ids: list[int], claimed_by: str = "", budget: TimeBudget | None = None
) -> list[int]:
    """Delete the Jobs of these deployments; returns the ids whose Job is now gone.

    Runs outside any transaction. A failure leaves `cleanup_pending` set, so the reconciler
    retries it; nothing that already committed is undone. `claimed_by` names the reconciler
    that holds these rows' claim, if the caller is one. No deletion starts once `budget` is
    spent.
    """
    executor = get_executor()
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
        if claimed_by:
            free |= Deployment.objects.filter(claimed_by=claimed_by)
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


def deployment_mark_running(*, deployment_id: int, job_name: str, job_namespace: str) -> str:
    """Record that the deployment's Job exists; returns the deployment's status after it.

    `cancelled` means it was cancelled while its Job was being created: the Job is to be
    deleted. `running` may also mean another reconciler recorded it first.
    """
    with transaction.atomic(durable=True):
        deployment = Deployment.objects.select_for_update().get(pk=deployment_id)
        if deployment.status == DeploymentStatus.PENDING:
            deployment.job_name = job_name
            deployment.job_namespace = job_namespace
            deployment.start(at=timezone.now())
            deployment.save(update_fields=["job_name", "job_namespace", "status", "started_at"])
    return deployment.status
