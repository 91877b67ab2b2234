import logging
from dataclasses import dataclass, field

from django.db import IntegrityError, transaction
from django.db.models import OuterRef, Subquery
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from applications.choices import Environment
from applications.locks import applications_lock
from applications.models import Application
from builds.models import BuildImage
from builds.selectors import build_images_latest_first, build_images_successful
from deployments.choices import UNFINISHED_DEPLOYMENT_STATUSES, DeploymentStatus
from deployments.models import Deployment
from deployments.services import deployment_create, deployment_jobs_cleanup_on_commit
from deployments.wakeup import reconcilers_wake
from live.revisions import live_touch
from utilities.errors import DomainError
from utilities.transactions import retry_on_conflict

from .. import locks, rules
from ..choices import OPEN_BATCH_STATUSES, BatchStatus, ReleaseStatus
from ..history import history_batch_created, history_stage, note_clean
from ..metrics import stage_rejections
from ..models import Batch, ReleaseApp
from ..rules import hold_blocker
from ..selectors import holds_covering_stage
from .outcomes import batch_settle

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchResult:
    changed: bool
    batch: Batch
    deployments: list[Deployment] = field(default_factory=list)
    note: str = ""  # recorded with the change; empty when nothing changed


@dataclass(frozen=True)
class AppChoice:
    name: str
    image_tag: str | None = None


@retry_on_conflict
def create_batch(*, name: str, apps: list[AppChoice], user) -> BatchResult:
    """A batch of these apps at these tags (default: each app's latest successful tag).

    Retrying the same request finds the batch it made (`changed=False`): an open batch's name
    is unique, and the same name with other contents is a conflict.
    """
    name = (name or "").strip()
    errors = {}
    if not name or len(name) > 200:
        errors["name"] = [_("A name of 1 to 200 characters is required.")]
    if not apps:
        errors["apps"] = [_("At least one application is required.")]
    names = [a.name for a in apps]
    if len(set(names)) != len(names):
        errors["apps"] = [_("Each application may appear once.")]
    if errors:
        raise DomainError("invalid", _("The batch is not valid."), fields=errors)

    try:
        with transaction.atomic(durable=True):
            # Locked like ingestion locks them, so no build of these apps lands between
            # choosing the tags below and this batch becoming visible to detection.
            applications = {a.name: a for a in applications_lock(names=names)}
            if unknown := [n for n in names if n not in applications]:
                raise DomainError(
                    "unknown_app",
                    _("No application named %(names)s.") % {"names": ", ".join(unknown)},
                    fields={
                        "apps": [_("Unknown application: %(name)s") % {"name": n} for n in unknown]
                    },
                )
            chosen = _choose_builds(apps=apps, applications=applications)
            batch = Batch.objects.create(name=name, created_by=user)
            ReleaseApp.objects.bulk_create(
                [
                    ReleaseApp(
                        batch=batch,
                        application=applications[app.name],
                        image_tag=chosen[app.name][0].image_tag,
                        build_id=chosen[app.name][0].build_id,
                        latest_image_tag=chosen[app.name][1].image_tag,
                        latest_build_id=chosen[app.name][1].build_id,
                        latest_seen_at=chosen[app.name][1].build.received_at,
                    )
                    for app in apps
                ]
            )
            history_batch_created(user=user, result=BatchResult(changed=True, batch=batch))
            live_touch(batch_ids=[batch.pk])
    except IntegrityError:
        # The open-batch name is taken: by this very request's earlier try, or by another.
        existing = Batch.objects.filter(name=name, status__in=OPEN_BATCH_STATUSES).first()
        wanted = {(n, chosen[n][0].image_tag) for n in names}
        if existing and wanted == set(
            existing.releases.values_list("application__name", "image_tag")
        ):
            return BatchResult(changed=False, batch=existing)
        raise DomainError(
            "batch_name_taken", _("An open batch is already named %(name)r.") % {"name": name}
        ) from None
    logger.info(
        "batch_created",
        extra={"batch_id": batch.pk, "apps": names, "user": getattr(user, "username", None)},
    )
    return BatchResult(changed=True, batch=batch)


# Field messages of the tag each app of a new batch asked for.
_CHOICE_ERRORS = {
    "unknown_tag": gettext_lazy("unknown tag"),
    "no_successful_build": gettext_lazy("no successful build"),
}


def _choose_builds(*, apps, applications) -> dict[str, tuple[BuildImage, BuildImage]]:
    """For each app: (the image of the chosen tag, the image of its latest successful build)."""
    application_ids = [a.pk for a in applications.values()]
    latest = {
        image.application_id: image
        for image in BuildImage.objects.filter(
            pk__in=Application.objects.filter(pk__in=application_ids).values(
                latest=Subquery(
                    build_images_latest_first().filter(application=OuterRef("pk")).values("pk")[:1]
                )
            )
        ).select_related("build")
    }
    requested = {a.image_tag for a in apps if a.image_tag}
    # Most recently successful last, so it is the one kept for its tag.
    by_tag = {
        (image.application_id, image.image_tag): image
        for image in build_images_successful()
        .filter(application_id__in=application_ids, image_tag__in=requested)
        .select_related("build")
        .reverse()
    }
    chosen, errors = {}, {}
    for app in apps:
        application = applications[app.name]
        newest = latest.get(application.pk)
        if newest is None:
            errors[app.name] = "no_successful_build"
            continue
        image = by_tag.get((application.pk, app.image_tag)) if app.image_tag else newest
        if image is None:
            errors[app.name] = "unknown_tag"
            continue
        chosen[app.name] = (image, newest)
    if errors:
        code = "unknown_tag" if "unknown_tag" in errors.values() else "no_successful_build"
        raise DomainError(
            code,
            fields={"apps": [f"{name}: {_CHOICE_ERRORS[err]}" for name, err in errors.items()]},
        )
    return chosen


def start_pre_deploy(*, batch_id: int, user, note: str = "") -> BatchResult:
    return _start_stage_counted(
        batch_id=batch_id, user=user, environment=Environment.PRE, note=note
    )


def start_prod_deploy(*, batch_id: int, user, note: str = "") -> BatchResult:
    return _start_stage_counted(
        batch_id=batch_id, user=user, environment=Environment.PROD, note=note
    )


def _start_stage_counted(*, batch_id: int, user, environment: str, note: str) -> BatchResult:
    try:
        return _start_stage(batch_id=batch_id, user=user, environment=environment, note=note)
    except DomainError as error:
        stage_rejections.labels(environment=environment, code=error.code).inc()
        logger.warning(
            "stage_start_rejected",
            extra={
                "batch_id": batch_id,
                "environment": environment,
                "user": getattr(user, "username", None),
                "code": error.code,
                "detail": error.detail,
            },
        )
        raise


# Per stage: the batch's waiting and deploying states, its transition, and which releases need
# the stage and how they start it.
_STAGES = {
    Environment.PRE: (
        BatchStatus.PRE_WAITING,
        BatchStatus.PRE_DEPLOYING,
        "start_pre_deploy",
        {ReleaseStatus.PENDING, ReleaseStatus.PRE_FAILED},
        "start_pre",
    ),
    Environment.PROD: (
        BatchStatus.PROD_WAITING,
        BatchStatus.PROD_DEPLOYING,
        "start_prod_deploy",
        {ReleaseStatus.PRE_DEPLOYED, ReleaseStatus.PROD_FAILED},
        "start_prod",
    ),
}


def stage_holds(*, batch_id: int, environment: str) -> list:
    """The active holds that would refuse this stage's start now, first first: what the admin's
    disabled button says."""
    needing = _STAGES[environment][3]
    application_ids = list(
        ReleaseApp.objects.filter(batch_id=batch_id, status__in=needing).values_list(
            "application_id", flat=True
        )
    )
    if not application_ids:
        return []
    return list(
        holds_covering_stage(
            batch_id=batch_id, environment=environment, application_ids=application_ids
        )[:1]
    )


@retry_on_conflict
def _start_stage(*, batch_id: int, user, environment: str, note: str) -> BatchResult:
    """Queue a deployment for each release that needs this stage; the reconciler runs them.

    Nothing talks to Kubernetes here. A pending deployment left by a switch is reused; a
    finished one is superseded by a fresh one. Both run with the application's current config.
    `note` (why) goes into the history entry and the log line.
    """
    note = note_clean(note)
    waiting, deploying, batch_transition, needing, release_transition = _STAGES[environment]
    with transaction.atomic(durable=True):
        batch = locks.batch_lock(batch_id=batch_id)
        _check_deploy_permission(user=user, batch=batch)
        if batch.status == deploying:
            return BatchResult(changed=False, batch=batch)
        if batch.status != waiting:
            raise DomainError(
                "invalid_transition",
                _("The batch is %(status)s; %(environment)s can only start from %(waiting)s.")
                % {"status": batch.status, "environment": environment, "waiting": waiting},
            )
        # Shared: stage starts pass each other; a hold being placed waits, or is seen below.
        locks.holds_lock(shared=True)
        releases = locks.batch_releases_lock(batch_id=batch.pk)
        if not releases:
            raise DomainError("batch_empty")
        to_deploy = [r for r in releases if r.status in needing]
        holds = holds_covering_stage(
            batch_id=batch.pk,
            environment=environment,
            application_ids=[r.application_id for r in to_deploy],
        )
        if to_deploy and (blocker := hold_blocker(list(holds[:1]))):
            raise blocker.error()
        current = {
            (d.release_app_id, d.environment): d
            for d in locks.current_deployments_lock(release_ids=[r.pk for r in to_deploy])
        }
        getattr(batch, batch_transition)()
        batch.save(update_fields=["status", "updated_at"])

        deployments = []
        for release in to_deploy:
            existing = current.get((release.pk, environment))
            # Every deployment runs with the application's config as it is now, so a fixed
            # config reaches the retry of a deployment that failed on it.
            config = release.application.deploy_config_for(environment)
            reusable = (
                existing is not None
                and existing.status == DeploymentStatus.PENDING
                and not existing.job_name
                and existing.image_tag == release.image_tag
            )
            if reusable:
                deployment = existing
                if deployment.config != config:
                    deployment.config = config  # not launched yet: it may still change
                    deployment.save(update_fields=["config"])
            else:
                deployment = deployment_create(
                    release=release,
                    environment=environment,
                    image_tag=release.image_tag,
                    config=config,
                    user=user,
                    replacing=[existing] if existing else [],
                )
            getattr(release, release_transition)()
            release.save(update_fields=["status"])
            deployments.append(deployment)
        # With nothing left to deploy the stage is already done.
        if not batch_settle(batch=batch):
            reconcilers_wake()
        result = BatchResult(changed=True, batch=batch, deployments=deployments, note=note)
        history_stage(user=user, transition=f"start_{environment}_deploy", result=result, note=note)
        live_touch(batch_ids=[batch.pk])  # every row: statuses, deployments, switch buttons
    logger.info(
        "batch_stage_changed",
        extra={
            "batch_id": batch.pk,
            "to": batch.status,
            "user": getattr(user, "username", None),
            "deployments": [d.pk for d in deployments],
            "note": note,
        },
    )
    return result


def _check_deploy_permission(*, user, batch: Batch) -> None:
    """First of all, before anything is read or changed (the caller holds the batch lock)."""
    if blocker := rules.deploy_blocker(user, Application.objects.filter(releases__batch=batch)):
        raise blocker.error()


@retry_on_conflict
def cancel_batch(*, batch_id: int, user, note: str = "") -> BatchResult:
    """Cancel the batch and its unfinished deployments; their Jobs are deleted after commit.
    `note` (why) goes into the history entry and the log line."""
    note = note_clean(note)
    with transaction.atomic(durable=True):
        batch = locks.batch_lock(batch_id=batch_id)
        _check_deploy_permission(user=user, batch=batch)
        if batch.status == BatchStatus.CANCELLED:
            return BatchResult(changed=False, batch=batch)
        if batch.status == BatchStatus.COMPLETED:
            raise DomainError("invalid_transition", _("A completed batch cannot be cancelled."))
        releases = locks.batch_releases_lock(batch_id=batch.pk)
        unfinished = [
            d
            for d in locks.current_deployments_lock(release_ids=[r.pk for r in releases])
            if d.status in UNFINISHED_DEPLOYMENT_STATUSES
        ]
        batch.cancel()
        batch.save(update_fields=["status", "updated_at"])
        for deployment in unfinished:
            deployment.cancel(at=batch.updated_at)
            deployment.save(update_fields=["status", "finished_at", "cleanup_pending"])
        deployment_jobs_cleanup_on_commit(deployments=unfinished)
        result = BatchResult(changed=True, batch=batch, deployments=unfinished, note=note)
        history_stage(user=user, transition="cancel", result=result, note=note)
        live_touch(batch_ids=[batch.pk])
    logger.info(
        "batch_stage_changed",
        extra={
            "batch_id": batch.pk,
            "to": batch.status,
            "user": getattr(user, "username", None),
            "note": note,
        },
    )
    return result
