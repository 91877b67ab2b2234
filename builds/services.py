from dataclasses import dataclass

from django.db import connection
from django.utils import timezone

from releases.models import Application

from .choices import STATUS_RANK, BuildStatus
from .models import Build, BuildImage
from .notifications import BuildNotification


@dataclass(frozen=True)
class BuildRecord:
    build: Build
    created: bool
    duplicate: bool
    stale: bool
    # True exactly once per build: when a notification first reports it successful.
    became_success: bool


def applications_ensure(*, names: list[str]) -> dict[str, Application]:
    """Applications by name, registering the ones never seen; three statements at most.

    The rows stay locked (in pk order) until the caller commits: `create_batch` locks them too
    while it picks each app's latest build, so a build can never land unseen by a new batch.
    """
    if not names:
        return {}
    locked = Application.objects.select_for_update(no_key=True).filter(name__in=names)
    found = {a.name: a for a in locked.order_by("pk")}
    missing = [name for name in names if name not in found]
    if missing:
        Application.objects.bulk_create(
            [Application(name=n) for n in missing], ignore_conflicts=True
        )
        found = {a.name: a for a in locked.order_by("pk")}
    return found


def build_record(*, notification: BuildNotification) -> BuildRecord:
    """Record what Drone said about a build. Caller holds a transaction.

    A constant number of statements, whatever the number of apps. The build row stays locked
    until the caller commits, so concurrent copies of one notification apply one at a time.
    """
    n = notification
    build = _build_insert_if_new(notification=n)
    created = build is not None
    if not created:
        build = Build.objects.select_for_update().get(repo=n.repo, number=n.number)
        if n.status == build.status:
            return BuildRecord(
                build, created=False, duplicate=True, stale=False, became_success=False
            )
        if STATUS_RANK[n.status] <= STATUS_RANK[build.status]:
            return BuildRecord(
                build, created=False, duplicate=False, stale=True, became_success=False
            )
        build.status = n.status
        # Optional facts only ever fill in or correct; an absent one keeps what we knew.
        update_fields = ["status", "updated_at"]
        for key in ("commit", "branch", "link"):
            value = getattr(n, key)
            if value and value != getattr(build, key):
                setattr(build, key, value)
                update_fields.append(key)
        build.save(update_fields=update_fields)
    _images_save(build=build, notification=n)
    return BuildRecord(
        build=build,
        created=created,
        duplicate=False,
        stale=False,
        # Final statuses never change, so a build is reported successful exactly once.
        became_success=n.status == BuildStatus.SUCCESS,
    )


def _build_insert_if_new(*, notification: BuildNotification) -> Build | None:
    """Insert the build unless (repo, number) is known; None if it was.

    One statement instead of look-up, savepoint, insert and release: most notifications are
    of a new build. A concurrent insert of the same build makes this wait for it, then skip.
    """
    n, now = notification, timezone.now()
    values = {
        "repo": n.repo,
        "number": n.number,
        "status": n.status,
        "commit": n.commit,
        "branch": n.branch,
        "link": n.link,
        "received_at": now,
        "updated_at": now,
    }
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quote(Build._meta.db_table)} ({', '.join(map(quote, values))}) "
            f"VALUES ({', '.join(['%s'] * len(values))}) "
            "ON CONFLICT (repo, number) DO NOTHING RETURNING id",
            list(values.values()),
        )
        row = cursor.fetchone()
    if row is None:
        return None
    build = Build(id=row[0], **values)
    build._state.adding, build._state.db = False, connection.alias
    return build


def _images_save(*, build: Build, notification: BuildNotification) -> None:
    if not notification.apps:
        return
    applications = applications_ensure(names=[a.name for a in notification.apps])
    BuildImage.objects.bulk_create(
        [
            BuildImage(
                build=build,
                build_number=build.number,
                application=applications[a.name],
                image_tag=a.image_tag,
            )
            for a in notification.apps
        ],
        update_conflicts=True,
        unique_fields=["build", "application"],
        update_fields=["image_tag"],
    )
