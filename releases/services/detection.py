import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import OuterRef, Q, Subquery
from django.utils import timezone

from builds.metrics import builds_notified
from builds.models import Build, BuildImage
from builds.notifications import BuildNotification
from builds.services import BuildRecord, build_record
from utilities.errors import DomainError
from utilities.transactions import retry_on_conflict

from ..locks import open_releases_of_applications_lock
from ..metrics import new_tags_detected
from ..models import ReleaseApp

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class NewTag:
    app: str
    image_tag: str
    release_ids: list[int]


@dataclass(frozen=True)
class IngestResult:
    build: Build
    created: bool
    duplicate: bool
    stale: bool
    new_tags: list[NewTag] = field(default_factory=list)


def ingest_build_notification(*, notification: BuildNotification) -> IngestResult:
    """Record a build and, the first time it is seen successful, detect new tags.

    One transaction: the whole notification lands or none of it. A constant number of
    statements, whatever the number of apps or the size of history.
    """
    try:
        record, new_tags = _ingest(notification=notification)
    except DomainError as error:  # conflicting_image, or busy once the retries ran out
        result = "busy" if error.code == "busy" else "rejected"
        builds_notified.labels(status=notification.status, result=result).inc()
        logger.warning(
            "build_notified",
            extra={
                "repo": notification.repo,
                "build_number": notification.number,
                "build_status": notification.status,
                "result": result,
                "code": error.code,
            },
        )
        raise

    result = "created" if record.created else "updated"
    if record.duplicate or record.stale:
        result = "duplicate" if record.duplicate else "stale"
    builds_notified.labels(status=notification.status, result=result).inc()
    logger.info(
        "build_notified",
        extra={
            "repo": notification.repo,
            "build_number": notification.number,
            "build_status": notification.status,
            "result": result,
            "apps": len(notification.apps),
        },
    )
    for tag in new_tags:
        new_tags_detected.inc(len(tag.release_ids))
        logger.info(
            "new_tag_detected",
            extra={
                "app": tag.app,
                "image_tag": tag.image_tag,
                "build_number": notification.number,
                "release_ids": tag.release_ids,
            },
        )
    return IngestResult(
        build=record.build,
        created=record.created,
        duplicate=record.duplicate,
        stale=record.stale,
        new_tags=new_tags,
    )


@retry_on_conflict
def _ingest(*, notification: BuildNotification) -> tuple[BuildRecord, list[NewTag]]:
    with transaction.atomic(durable=True):
        record = build_record(notification=notification)
        new_tags = []
        if record.detect_application_ids:
            new_tags = new_tags_detect(
                build=record.build, application_ids=record.detect_application_ids
            )
    return record, new_tags


def new_tags_detect(*, build: Build, application_ids: Iterable[int]) -> list[NewTag]:
    """Point every release of these apps of the build in an open batch at this build, unless it
    already knows a higher-numbered one (late deliveries never move "latest" backwards).

    Caller holds a transaction and the locks of these applications (so no batch of them is
    being created meanwhile). Three statements, whatever the number of apps or releases.
    """
    images = {
        i.application_id: i
        for i in BuildImage.objects.filter(
            build=build, application_id__in=list(application_ids)
        ).select_related("application")
    }
    if not images:
        return []
    candidate_ids = open_releases_of_applications_lock(application_ids=images)
    if not candidate_ids:
        return []
    ReleaseApp.objects.filter(pk__in=candidate_ids).filter(
        Q(latest_build__isnull=True) | Q(latest_build__number__lt=build.number)
    ).update(
        latest_image_tag=Subquery(
            BuildImage.objects.filter(
                build=build, application_id=OuterRef("application_id")
            ).values("image_tag")[:1]
        ),
        latest_build=build,
        latest_seen_at=timezone.now(),
    )
    updated: dict[int, list[int]] = {}
    for release_id, application_id in (
        ReleaseApp.objects.filter(pk__in=candidate_ids, latest_build=build)
        .order_by("pk")
        .values_list("pk", "application_id")
    ):
        updated.setdefault(application_id, []).append(release_id)
    return [
        NewTag(
            app=images[app_id].application.name,
            image_tag=images[app_id].image_tag,
            release_ids=release_ids,
        )
        for app_id, release_ids in sorted(
            updated.items(), key=lambda kv: images[kv[0]].application.name
        )
    ]
