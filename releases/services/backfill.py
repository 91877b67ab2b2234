import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import F, OuterRef, Q, Subquery

from builds.choices import BuildStatus
from builds.models import BuildImage

from ..choices import OPEN_BATCH_STATUSES
from ..locks import releases_lock
from ..metrics import new_tags_detected
from ..models import ReleaseApp

logger = logging.getLogger(__name__)

DEFAULT_CHUNK_SIZE = 500


@dataclass(frozen=True)
class LatestTagChange:
    release_id: int
    batch_id: int
    app: str
    from_image_tag: str
    to_image_tag: str
    from_build_id: int | None
    to_build_id: int


@dataclass(frozen=True)
class BackfillResult:
    examined: int
    dry_run: bool
    changes: list[LatestTagChange] = field(default_factory=list)


def backfill_latest_tags(
    *,
    batch_id: int | None = None,
    dry_run: bool = False,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    progress: Callable[[int, int], None] | None = None,
) -> BackfillResult:
    """Recompute `latest_*` of the releases in open batches from build history.

    A release's latest is its application's highest-numbered successful build: what detection
    would have recorded had no notification ever been lost. Releases that already agree are
    left alone, so a second run changes nothing.

    Works in chunks of releases (by pk), one short transaction each, so it can run beside the
    web server: like detection it locks release rows only, in pk order, and never waits for a
    batch (see `releases.locks`). Three statements per chunk, whatever the history size.
    `progress(done, total)` is called after each chunk.
    """
    scope = ReleaseApp.objects.filter(batch__status__in=OPEN_BATCH_STATUSES)
    if batch_id is not None:
        scope = scope.filter(batch_id=batch_id)
    total = scope.count()
    examined, last_pk, changes = 0, 0, []
    while True:
        with transaction.atomic(durable=True):
            chunk = scope.filter(pk__gt=last_pk)
            ids = (
                list(chunk.order_by("pk").values_list("pk", flat=True)[:chunk_size])
                if dry_run
                else releases_lock(releases=chunk, limit=chunk_size)
            )
            if not ids:
                break
            found = _changes(release_ids=ids)
            if found and not dry_run:
                _apply(release_ids=[c.release_id for c in found])
        examined += len(ids)
        last_pk = ids[-1]
        changes.extend(found)
        if not dry_run:
            _report(found)  # per committed chunk, so an interrupted run still logged its work
        if progress:
            progress(examined, total)

    logger.info(
        "latest_tags_backfill_finished",
        extra={
            "batch_id": batch_id,
            "examined": examined,
            "changed": len(changes),
            "dry_run": dry_run,
        },
    )
    return BackfillResult(examined=examined, dry_run=dry_run, changes=changes)


def _report(changes: list[LatestTagChange]) -> None:
    # A change of build alone (a rebuild of the same tag) is no new tag.
    new_tags_detected.inc(sum(c.from_image_tag != c.to_image_tag for c in changes))
    for change in changes:
        logger.info(
            "latest_tag_backfilled",
            extra={
                "release_id": change.release_id,
                "batch_id": change.batch_id,
                "app": change.app,
                "from": change.from_image_tag,
                "to": change.to_image_tag,
            },
        )


def _newest_successful_image():
    """The image of the highest-numbered successful build of the outer release's application."""
    return BuildImage.objects.filter(
        application_id=OuterRef("application_id"), build__status=BuildStatus.SUCCESS
    ).order_by("-build__number", "-build_id")


def _changes(*, release_ids: list[int]) -> list[LatestTagChange]:
    newest = _newest_successful_image()
    rows = (
        ReleaseApp.objects.filter(pk__in=release_ids)
        .annotate(
            target_build_id=Subquery(newest.values("build_id")[:1]),
            target_image_tag=Subquery(newest.values("image_tag")[:1]),
        )
        .filter(target_build_id__isnull=False)
        .filter(
            Q(latest_build__isnull=True)
            | ~Q(latest_build_id=F("target_build_id"))
            | ~Q(latest_image_tag=F("target_image_tag"))
        )
        .order_by("pk")
        .values(
            "pk",
            "batch_id",
            "application__name",
            "latest_image_tag",
            "latest_build_id",
            "target_build_id",
            "target_image_tag",
        )
    )
    return [
        LatestTagChange(
            release_id=row["pk"],
            batch_id=row["batch_id"],
            app=row["application__name"],
            from_image_tag=row["latest_image_tag"],
            to_image_tag=row["target_image_tag"],
            from_build_id=row["latest_build_id"],
            to_build_id=row["target_build_id"],
        )
        for row in rows
    ]


def _apply(*, release_ids: list[int]) -> None:
    """One UPDATE for the whole chunk; caller holds the rows' locks."""
    newest = _newest_successful_image()
    ReleaseApp.objects.filter(pk__in=release_ids).update(
        latest_build_id=Subquery(newest.values("build_id")[:1]),
        latest_image_tag=Subquery(newest.values("image_tag")[:1]),
        # When Release Train first learned of that build.
        latest_seen_at=Subquery(newest.values("build__received_at")[:1]),
    )
