"""Every row lock the workflows take, in the one order they take them.

Order: applications (by pk, `applications.locks`) -> the build (`builds.locks`) -> batch -> its
releases (by pk) -> their deployments (by pk). A workflow that needs rows of several levels
takes them top-down through these helpers, so two workflows never wait on each other in a
cycle. New-tag detection locks applications, then releases (by pk), and never waits for a
batch. The reconciler claims deployment rows alone, skipping locked ones (SKIP LOCKED), so it
never waits for a workflow, except for a hold being placed:

Holds add one lock, below the batch and above its releases: the *holds lock*, a transaction-level
advisory lock. Placing a hold takes it exclusively (after the named batch's row, if it names
one); a stage start takes it shared after its batch and before its releases; the reconciler's
launch claim takes it shared before it selects what to launch (and reads the clock after it).
So a stage start or a claim either sees a hold that committed, or the hold waits until they have
committed and is then the one that stops their launches: nothing is launched that a hold active
at the claim's commit covers. Lifting a hold takes nothing: it can only let more through.

Last of all, as a transaction's last writes, the live pages'
revisions (`live.revisions.live_touch`: batches, applications, releases' stamps, each by pk).
"""

from django.db import connection
from django.db.models import QuerySet
from django.utils.translation import gettext as _

from deployments.models import Deployment
from utilities.errors import DomainError

from .choices import OPEN_BATCH_STATUSES
from .models import Batch, Hold, ReleaseApp

quote_name = connection.ops.quote_name


def batch_lock(*, batch_id: int) -> Batch:
    batch = Batch.objects.select_for_update().filter(pk=batch_id).first()
    if batch is None:
        raise DomainError("not_found", _("Batch %(id)s does not exist.") % {"id": batch_id})
    return batch


def release_batch_lock(*, release_id: int) -> Batch:
    """Lock the batch of a release, the first lock of any workflow on that release."""
    batch_id = ReleaseApp.objects.filter(pk=release_id).values_list("batch_id", flat=True).first()
    if batch_id is None:
        raise DomainError("not_found", _("Release %(id)s does not exist.") % {"id": release_id})
    return batch_lock(batch_id=batch_id)


def release_lock(*, release_id: int) -> ReleaseApp:
    """Caller holds the lock of the release's batch."""
    return (
        ReleaseApp.objects.select_for_update(of=("self",))
        .select_related("application")
        .get(pk=release_id)
    )


def batch_releases_lock(*, batch_id: int) -> list[ReleaseApp]:
    """Caller holds the batch lock."""
    return list(
        ReleaseApp.objects.select_for_update(of=("self",))
        .select_related("application")
        .filter(batch_id=batch_id)
        .order_by("pk")
    )


def current_deployments_lock(*, release_ids: list[int]) -> list[Deployment]:
    """Caller holds the locks of these releases."""
    return list(
        Deployment.objects.select_for_update()
        .filter(release_app_id__in=release_ids, superseded_at__isnull=True)
        .order_by("pk")
    )


def deployment_lock(*, deployment_id: int) -> Deployment:
    """Caller holds the locks of the deployment's batch and release."""
    return Deployment.objects.select_for_update().get(pk=deployment_id)


def open_releases_of_applications_lock_sql() -> str:
    """A `SELECT id` that locks the releases of the applications `%(apps)s` in batches of a
    status in `%(open)s`, in pk order: new-tag detection runs it as the first step of its one
    statement (the caller holds the applications' locks)."""
    release, batch = quote_name(ReleaseApp._meta.db_table), quote_name(Batch._meta.db_table)
    return (
        f"SELECT r.id FROM {release} r JOIN {batch} b ON b.id = r.batch_id "
        "WHERE r.application_id = ANY(%(apps)s) AND b.status = ANY(%(open)s) "
        "ORDER BY r.id FOR UPDATE OF r"
    )


def open_releases_of_applications_lock(*, application_ids) -> list[int]:
    """The same releases as `open_releases_of_applications_lock_sql`, locked the same way, for
    databases without arrays (SQLite: the demo)."""
    return list(
        ReleaseApp.objects.select_for_update(of=("self",))
        .filter(application_id__in=list(application_ids), batch__status__in=OPEN_BATCH_STATUSES)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def releases_lock(*, releases: QuerySet[ReleaseApp], limit: int) -> list[int]:
    """Ids of at most `limit` of these releases, locked in pk order (the backfill's chunks)."""
    return list(
        releases.order_by("pk").select_for_update(of=("self",)).values_list("pk", flat=True)[:limit]
    )


def hold_lock(*, hold_id: int) -> Hold | None:
    """A hold's row, to lift it (no other lock is needed: lifting only lets more through)."""
    return (
        Hold.objects.select_for_update(of=("self",))
        .select_related("application")
        .filter(pk=hold_id)
        .first()
    )


# Any fixed number unique to this purpose among the application's advisory locks.
HOLDS_LOCK_KEY = 0x52545F484F4C44  # "RT_HOLD"


def holds_lock(*, shared: bool) -> None:
    """The holds lock, until the transaction ends (see the module docstring). Other databases
    (SQLite, the demo) have no advisory locks and run one writer at a time anyway."""
    if connection.vendor == "postgresql":
        function = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {function}(%s)", [HOLDS_LOCK_KEY])
