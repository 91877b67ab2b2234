from collections.abc import Iterable
from dataclasses import dataclass

from django.db import connection
from django.utils import timezone

from applications.locks import applications_lock
from applications.models import Application
from utilities.errors import DomainError

from .choices import STATUS_RANK, BuildStatus
from .locks import build_lock
from .models import Build, BuildImage
from .notifications import AppImage, BuildNotification


@dataclass(frozen=True)
class BuildRecord:
    build: Build
    created: bool
    duplicate: bool
    stale: bool
    # The applications whose image of this build new-tag detection must look at now: all of
    # them when the build is first reported successful, the ones a re-send adds to a build
    # already successful, else none. Each image of a build is detected exactly once.
    detect_application_ids: frozenset[int] = frozenset()


def applications_ensure(*, names: list[str]) -> dict[str, Application]:
    """Applications by name, registering the ones never seen; three statements at most.

    The rows stay locked until the caller commits: `create_batch` locks them too while it picks
    each app's latest build, so a build can never land unseen by a new batch. Known rows are
    locked in pk order and new ones inserted in name order, so two notifications naming the
    same new apps in different orders wait for each other instead of deadlocking.
    """
    if not names:
        return {}
    locked = applications_lock(names=names)
    found = {a.name: a for a in locked}
    missing = sorted(set(names) - set(found))
    if missing:
        Application.objects.bulk_create(
            [Application(name=n) for n in missing], ignore_conflicts=True
        )
        found = {a.name: a for a in locked.all()}
    return found


def build_record(*, notification: BuildNotification) -> BuildRecord:
    """Record what Drone said about a build. Caller holds a transaction.

    A constant number of statements, whatever the number of apps. The build row and the
    applications of all its images stay locked until the caller commits, so concurrent copies
    of one notification apply one at a time and detection serialises with `create_batch`.

    A known build: a higher status is applied, a lower one is stale (nothing changes); apps it
    did not have yet are merged; an app it has at another tag is `conflicting_image` (and the
    caller's transaction must roll back); nothing new at all is a duplicate.
    """
    n = notification
    build = _build_insert_if_new(notification=n)
    if build is not None:
        applications = applications_ensure(names=[a.name for a in n.apps])
        _images_insert(build=build, apps=n.apps, applications=applications)
        return BuildRecord(
            build=build,
            created=True,
            duplicate=False,
            stale=False,
            detect_application_ids=_ids(applications.values())
            if n.status == BuildStatus.SUCCESS
            else frozenset(),
        )

    build = build_lock(repo=n.repo, number=n.number)
    recorded = dict(
        BuildImage.objects.filter(build=build).values_list("application__name", "image_tag")
    )
    if conflicts := [a for a in n.apps if recorded.get(a.name, a.image_tag) != a.image_tag]:
        raise DomainError(
            "conflicting_image",
            f"Build {n.number} of {n.repo or 'this repository'} already recorded "
            + ", ".join(f"{a.name} at {recorded[a.name]}" for a in conflicts)
            + ".",
            fields={
                "apps": [
                    f"{a.name}: this build recorded {recorded[a.name]}, not {a.image_tag}."
                    for a in conflicts
                ]
            },
        )
    progresses = STATUS_RANK[n.status] > STATUS_RANK[build.status]
    if n.status != build.status and not progresses:
        return BuildRecord(build, created=False, duplicate=False, stale=True)
    added = [a for a in n.apps if a.name not in recorded]
    if not progresses and not added:
        return BuildRecord(build, created=False, duplicate=True, stale=False)

    # Detection reads every image of the build, so every one's application is locked.
    applications = applications_ensure(names=[*recorded, *(a.name for a in added)])
    if progresses:
        build.status = n.status
        # Optional facts only ever fill in or correct; an absent one keeps what we knew.
        update_fields = ["status", "updated_at"]
        for key in ("commit", "branch", "link"):
            value = getattr(n, key)
            if value and value != getattr(build, key):
                setattr(build, key, value)
                update_fields.append(key)
        build.save(update_fields=update_fields)
    _images_insert(build=build, apps=added, applications=applications)

    detect: frozenset[int] = frozenset()
    if build.status == BuildStatus.SUCCESS:
        # Final statuses never change, so a build becomes successful exactly once.
        detect = (
            _ids(applications.values()) if progresses else _ids(applications[a.name] for a in added)
        )
    return BuildRecord(
        build=build, created=False, duplicate=False, stale=False, detect_application_ids=detect
    )


def _ids(applications) -> frozenset[int]:
    return frozenset(a.pk for a in applications)


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


def _images_insert(
    *, build: Build, apps: Iterable[AppImage], applications: dict[str, Application]
) -> None:
    images = [
        BuildImage(
            build=build,
            build_number=build.number,
            application=applications[a.name],
            image_tag=a.image_tag,
        )
        for a in apps
    ]
    if images:
        BuildImage.objects.bulk_create(images)
