import logging
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from applications.choices import Environment
from deployments.choices import DeploymentStatus
from deployments.models import Deployment
from utilities.errors import DomainError
from utilities.transactions import retry_on_conflict

from .. import locks
from ..choices import BatchStatus, ReleaseStatus
from ..history import history_stage_outcome
from ..models import Batch

logger = logging.getLogger(__name__)

OUTCOMES = (DeploymentStatus.SUCCEEDED, DeploymentStatus.FAILED)


@dataclass(frozen=True)
class OutcomeResult:
    changed: bool
    deployment: Deployment
    batch: Batch


@retry_on_conflict
def apply_deployment_outcome(*, deployment_id: int, outcome: str, error: str = "") -> OutcomeResult:
    """Record how a deployment's Job ended and carry it up: deployment -> release -> batch.

    Idempotent: the reconciler may see the same Job result again, and a result for a deployment
    that was cancelled or superseded meanwhile changes nothing but the deployment itself.
    """
    if outcome not in OUTCOMES:
        raise DomainError("invalid", f"Outcome must be one of {', '.join(OUTCOMES)}.")
    release_id = (
        Deployment.objects.filter(pk=deployment_id).values_list("release_app_id", flat=True).first()
    )
    if release_id is None:
        raise DomainError("not_found", f"Deployment {deployment_id} does not exist.")

    with transaction.atomic(durable=True):
        batch = locks.release_batch_lock(release_id=release_id)
        release = locks.release_lock(release_id=release_id)
        deployment = locks.deployment_lock(deployment_id=deployment_id)
        # A Job that never got created (an invalid spec) can still fail its pending deployment.
        applicable = (DeploymentStatus.RUNNING,) + (
            (DeploymentStatus.PENDING,) if outcome == DeploymentStatus.FAILED else ()
        )
        if deployment.status not in applicable:
            # Already applied, or cancelled meanwhile: the first word stands.
            return OutcomeResult(changed=False, deployment=deployment, batch=batch)

        now = timezone.now()
        if outcome == DeploymentStatus.SUCCEEDED:
            deployment.succeed(at=now)
        else:
            deployment.fail(at=now, error=error)
        deployment.save(update_fields=["status", "finished_at", "error"])

        deploying = {
            Environment.PRE: ReleaseStatus.PRE_DEPLOYING,
            Environment.PROD: ReleaseStatus.PROD_DEPLOYING,
        }[deployment.environment]
        if deployment.is_current and release.status == deploying:
            finish, fail = {
                Environment.PRE: (release.finish_pre, release.fail_pre),
                Environment.PROD: (release.finish_prod, release.fail_prod),
            }[deployment.environment]
            (finish if outcome == DeploymentStatus.SUCCEEDED else fail)()
            release.save(update_fields=["status"])
        batch_settle(batch=batch)

    log = logger.info if outcome == DeploymentStatus.SUCCEEDED else logger.error
    log(
        "deployment_finished",
        extra={
            "deployment_id": deployment.pk,
            "release_id": release_id,
            "outcome": outcome,
            "environment": deployment.environment,
            "error": error,
            "batch_status": batch.status,
        },
    )
    return OutcomeResult(changed=True, deployment=deployment, batch=batch)


def batch_settle(*, batch: Batch) -> bool:
    """End a deploying batch's stage once none of its releases is still deploying.

    Caller holds the batch lock. Returns whether the batch changed status. The outcome goes
    into the batch's history as the system user `release-train`.
    """
    # A stage fails if any release failed it; releases already past it (prod_* during a
    # reopened pre stage) passed it earlier.
    stages = {
        BatchStatus.PRE_DEPLOYING: (
            Environment.PRE,
            ReleaseStatus.PRE_DEPLOYING,
            ReleaseStatus.PRE_FAILED,
            batch.finish_pre_deploy,
            batch.fail_pre_deploy,
        ),
        BatchStatus.PROD_DEPLOYING: (
            Environment.PROD,
            ReleaseStatus.PROD_DEPLOYING,
            ReleaseStatus.PROD_FAILED,
            batch.finish_prod_deploy,
            batch.fail_prod_deploy,
        ),
    }
    if batch.status not in stages:
        return False
    stage, deploying, failed, finish, fail = stages[batch.status]
    counts = dict(batch.releases.values_list("status").annotate(n=Count("pk")).order_by())
    if counts.get(deploying):
        return False
    previous = batch.status
    failed_apps = []
    if counts.get(failed):
        failed_apps = list(
            batch.releases.filter(status=failed)
            .order_by("application__name")
            .values_list("application__name", flat=True)
        )
    (fail if failed_apps else finish)()
    batch.save(update_fields=["status", "updated_at"])
    history_stage_outcome(batch=batch, stage=stage, failed_apps=failed_apps)
    logger.info(
        "batch_stage_changed", extra={"batch_id": batch.pk, "from": previous, "to": batch.status}
    )
    return True
