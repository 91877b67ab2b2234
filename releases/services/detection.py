import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache

from django.db import connection, transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from applications.models import Application
from builds.metrics import builds_notified
from builds.models import Build, BuildImage
from builds.notifications import BuildNotification
from builds.selectors import build_images_latest_first
from builds.services import BuildRecord, build_record
from live.revisions import live_touch
from utilities.errors import DomainError
from utilities.transactions import retry_on_conflict

from ..choices import OPEN_BATCH_STATUSES
from ..locks import open_releases_of_applications_lock, open_releases_of_applications_lock_sql
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
        # The apps' latest successful build changed, and so did these releases' latest tag.
        live_touch(
            release_ids=[pk for tag in new_tags for pk in tag.release_ids],
            application_ids=record.detect_application_ids,
        )
    return record, new_tags


def new_tags_detect(*, build: Build, application_ids: Iterable[int]) -> list[NewTag]:
    """Point every release of these apps of the build in an open batch at this build, for the
    apps whose latest build (`build_images_latest_first`) it now is: a late delivery of an older
    build of the same repo never moves "latest" backwards.

    Caller holds a transaction and the locks of these applications (so no batch of them is
    being created meanwhile). One statement, whatever the number of apps or releases: every
    notification of a successful build runs it, and four round trips of ORM queries cost
    several times what PostgreSQL needs to run them.
    """
    application_ids = sorted(application_ids)
    if not application_ids:
        return []
    if connection.vendor != "postgresql":
        return _new_tags_detect_portable(build=build, application_ids=application_ids)
    with connection.cursor() as cursor:
        cursor.execute(
            _detect_sql(),
            {
                "build": build.pk,
                "apps": application_ids,
                "open": list(OPEN_BATCH_STATUSES),
                "now": timezone.now(),
            },
        )
        rows = cursor.fetchall()
    new_tags: list[NewTag] = []
    for release_id, app, image_tag in rows:
        if not new_tags or new_tags[-1].app != app:
            new_tags.append(NewTag(app=app, image_tag=image_tag, release_ids=[]))
        new_tags[-1].release_ids.append(release_id)
    return new_tags


def _new_tags_detect_portable(*, build: Build, application_ids: list[int]) -> list[NewTag]:
    """`new_tags_detect` in four ORM statements, for databases without arrays (the demo's
    SQLite): the same releases, the same rule, the same answer."""
    images = {
        i.application_id: i
        for i in BuildImage.objects.filter(build=build, application_id__in=application_ids)
        .annotate(
            latest_build_id=Subquery(
                build_images_latest_first()
                .filter(application=OuterRef("application"))
                .values("build_id")[:1]
            )
        )
        .select_related("application")
    }
    latest_here = [app_id for app_id, i in images.items() if i.latest_build_id == build.pk]
    candidate_ids = open_releases_of_applications_lock(application_ids=latest_here)
    changed = list(
        ReleaseApp.objects.filter(pk__in=candidate_ids)
        .exclude(latest_build=build)
        .order_by("pk")
        .values_list("pk", "application_id")
    )
    ReleaseApp.objects.filter(pk__in=[pk for pk, _ in changed]).update(
        latest_image_tag=Subquery(
            BuildImage.objects.filter(
                build=build, application_id=OuterRef("application_id")
            ).values("image_tag")[:1]
        ),
        latest_build=build,
        latest_seen_at=timezone.now(),
    )
    new_tags: dict[int, NewTag] = {}
    for release_id, app_id in changed:
        image = images[app_id]
        new_tags.setdefault(
            app_id, NewTag(app=image.application.name, image_tag=image.image_tag, release_ids=[])
        )
        new_tags[app_id].release_ids.append(release_id)
    return sorted(new_tags.values(), key=lambda t: t.app)


def _latest_build_sql(image: str) -> str:
    """The latest build of the application of release `r`, as `build_images_latest_first`
    orders them: each repo's highest-numbered successful image, the one first seen successful
    most recently first."""
    return f"""SELECT x.build_id FROM {image} x
        WHERE x.application_id = r.application_id AND x.succeeded_at IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM {image} y WHERE y.application_id = x.application_id
              AND y.repo = x.repo AND y.build_number > x.build_number
              AND y.succeeded_at IS NOT NULL)
        ORDER BY x.succeeded_at DESC, x.build_id DESC LIMIT 1"""


@cache
def _detect_sql() -> str:
    quote = connection.ops.quote_name
    release, application = quote(ReleaseApp._meta.db_table), quote(Application._meta.db_table)
    image = quote(BuildImage._meta.db_table)
    return f"""
        WITH candidate AS ({open_releases_of_applications_lock_sql()}), updated AS (
            UPDATE {release} r
            SET latest_image_tag = i.image_tag, latest_build_id = %(build)s,
                latest_seen_at = %(now)s
            FROM candidate c, {image} i
            WHERE r.id = c.id AND i.build_id = %(build)s AND i.application_id = r.application_id
              AND r.latest_build_id IS DISTINCT FROM %(build)s
              AND %(build)s = ({_latest_build_sql(image)})
            RETURNING r.id, r.application_id, i.image_tag
        )
        SELECT u.id, a.name, u.image_tag FROM updated u JOIN {application} a
            ON a.id = u.application_id
        ORDER BY a.name, u.id"""
