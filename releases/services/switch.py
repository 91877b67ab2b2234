import logging
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from applications.choices import Environment
from builds.models import Build
from builds.selectors import build_images_successful
from deployments.models import Deployment
from deployments.services import deployment_create
from live.revisions import live_touch
from utilities.errors import DomainError
from utilities.transactions import retry_on_conflict

from .. import locks, rules
from ..choices import BatchStatus
from ..history import history_switch, note_clean
from ..metrics import switch_rejections, version_switches
from ..models import Batch, ReleaseApp
from ..selectors import holds_list

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SwitchResult:
    changed: bool
    release: ReleaseApp
    previous_image_tag: str
    batch_status: str
    deployment: Deployment | None = None
    superseded_deployment_ids: list[int] = field(default_factory=list)
    note: str = ""  # recorded with the change; empty when nothing changed


def switch_version(
    *,
    release_id: int,
    user,
    image_tag: str | None = None,
    expected_image_tag: str | None = None,
    note: str = "",
) -> SwitchResult:
    """Switch a release to another tag (by default its latest), if and only if it is safe.

    Checks run in a fixed order (permission, already there, expected tag, known tag, batch
    open, batch waiting, nothing deploying) and the first failure answers; a switch whose
    effect already holds answers `changed=False`. Locks batch -> release -> deployments, so a
    switch and a stage start on one batch never interleave. The superseded Jobs are deleted
    after commit. `note` (why) goes into the history entry and the log line.
    """
    try:
        result = _switch(
            release_id=release_id,
            user=user,
            image_tag=image_tag,
            expected_image_tag=expected_image_tag,
            note=note,
        )
    except DomainError as error:
        switch_rejected(release_id=release_id, user=user, image_tag=image_tag, code=error.code)
        raise
    version_switches.labels(result="changed" if result.changed else "unchanged").inc()
    logger.info(
        "version_switched" if result.changed else "switch_unchanged",
        extra={
            "release_id": release_id,
            "app": result.release.application.name,
            "from": result.previous_image_tag,
            "to": result.release.image_tag,
            "user": getattr(user, "username", None),
            "batch_status": result.batch_status,
            "note": result.note,
        },
    )
    return result


def switch_rejected(*, release_id, user, image_tag: str | None, code: str) -> None:
    """Log and count a refused switch."""
    version_switches.labels(result="rejected").inc()
    switch_rejections.labels(code=code).inc()
    logger.warning(
        "switch_rejected",
        extra={
            "release_id": release_id,
            "user": getattr(user, "username", None),
            "image_tag": image_tag,
            "code": code,
        },
    )


@retry_on_conflict
def _switch(*, release_id, user, image_tag, expected_image_tag, note) -> SwitchResult:
    note = note_clean(note)

    with transaction.atomic(durable=True):
        batch = locks.release_batch_lock(release_id=release_id)
        release = locks.release_lock(release_id=release_id)
        # The permission rule needs the release's application, read with the lock; nothing has
        # changed yet.
        if blocker := rules.permission_blocker(user, release.application):
            raise blocker.error()
        current_tag = release.image_tag

        # The effect already holds: a retried switch (its first answer lost) is a success,
        # whatever its precondition said and whatever the batch does now.
        target = image_tag or release.latest_image_tag
        if not target or target == current_tag:
            return SwitchResult(
                changed=False,
                release=release,
                previous_image_tag=current_tag,
                batch_status=batch.status,
            )

        if expected_image_tag is not None and expected_image_tag != current_tag:
            raise DomainError(
                "stale_version",
                _("The release is at %(current)s, not %(expected)s; reload and retry.")
                % {"current": current_tag, "expected": expected_image_tag},
            )

        build = _successful_build_of(application_id=release.application_id, image_tag=target)
        if build is None:
            raise DomainError(
                "unknown_tag",
                _("No successful build of %(app)s produced %(tag)s.")
                % {"app": release.application.name, "tag": target},
                fields={"image_tag": [_("Not a tag of a successful build of this application.")]},
            )

        if blocker := rules.batch_closed_blocker(batch.status) or rules.batch_waiting_blocker(
            batch.status
        ):
            raise blocker.error()

        holds = holds_list().active().naming(application=release.application_id, batch=batch.pk)
        if blocker := rules.hold_blocker(list(holds.order_by("starts_at", "pk")[:1])):
            raise blocker.error()

        current = locks.current_deployments_lock(release_ids=[release.pk])
        in_progress = Deployment.objects.filter(release_app=release).in_progress().exists()
        if blocker := rules.deployment_blocker(in_progress):
            raise blocker.error()

        return _switch_effects(
            batch=batch,
            release=release,
            build=build,
            target=target,
            current=current,
            user=user,
            note=note,
        )


def _switch_effects(
    *,
    batch: Batch,
    release: ReleaseApp,
    build: Build,
    target: str,
    current: list[Deployment],
    user,
    note: str,
) -> SwitchResult:
    previous_tag = release.image_tag
    release.switch_version(image_tag=target, build=build, user=user, at=timezone.now())
    release.save(update_fields=["image_tag", "build", "tag_updated_at", "tag_updated_by", "status"])

    reopened = batch.status == BatchStatus.PROD_WAITING
    if reopened:
        # The new tag has not been to pre; the batch goes back to pre for it.
        batch.reopen_pre()
        batch.save(update_fields=["status", "updated_at"])
        logger.info(
            "batch_stage_changed",
            extra={"batch_id": batch.pk, "to": batch.status, "reason": "reopen_pre"},
        )

    deployment = deployment_create(
        release=release,
        environment=Environment.PRE,
        image_tag=target,
        # The application's config now, never the old deployment's: a fixed config must reach
        # the next try.
        config=release.application.deploy_config_for(Environment.PRE),
        user=user,
        replacing=current,
    )
    result = SwitchResult(
        changed=True,
        release=release,
        previous_image_tag=previous_tag,
        batch_status=batch.status,
        deployment=deployment,
        superseded_deployment_ids=[d.pk for d in current],
        note=note,
    )
    history_switch(user=user, result=result, note=note)
    live_touch(
        release_ids=[release.pk],
        deployment_ids=[deployment.pk, *result.superseded_deployment_ids],
        batch_ids=[batch.pk] if reopened else [],
    )
    return result


def _successful_build_of(*, application_id: int, image_tag: str) -> Build | None:
    """The most recently successful build of this application that produced this tag."""
    image = (
        build_images_successful()
        .filter(application_id=application_id, image_tag=image_tag)
        .select_related("build")
        .first()
    )
    return image.build if image else None
