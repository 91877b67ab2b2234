"""Every row lock the workflows take, in the one order they take them.

Order: applications (by pk, `applications.locks`) -> the build (`builds.locks`) -> batch -> its
releases (by pk) -> their deployments (by pk). A workflow that needs rows of several levels
takes them top-down through these helpers, so two workflows never wait on each other in a
cycle. New-tag detection locks applications, then releases (by pk), and never waits for a
batch. The reconciler claims deployment rows alone, skipping locked ones (SKIP LOCKED), so it
never waits for a workflow.
"""

from django.db.models import QuerySet

from deployments.models import Deployment
from utilities.errors import DomainError

from .choices import OPEN_BATCH_STATUSES
from .models import Batch, ReleaseApp


def batch_lock(*, batch_id: int) -> Batch:
    batch = Batch.objects.select_for_update().filter(pk=batch_id).first()
    if batch is None:
        raise DomainError("not_found", f"Batch {batch_id} does not exist.")
    return batch


def release_batch_lock(*, release_id: int) -> Batch:
    """Lock the batch of a release, the first lock of any workflow on that release."""
    batch_id = ReleaseApp.objects.filter(pk=release_id).values_list("batch_id", flat=True).first()
    if batch_id is None:
        raise DomainError("not_found", f"Release {release_id} does not exist.")
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


def open_releases_of_applications_lock(*, application_ids) -> list[int]:
    """Ids of the releases of these applications in open batches, locked in pk order (new-tag
    detection; the caller holds the applications' locks)."""
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
