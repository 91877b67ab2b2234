"""Row locks on deployments: the last level of the one lock order (see releases/locks.py), always
in pk order, so a multi-row write never deadlocks with a workflow locking the same rows."""

from uuid import UUID

from django.db.models import QuerySet

from .models import Deployment


def deployments_lock(*, rows: QuerySet[Deployment]) -> list[Deployment]:
    """These deployment rows, locked in pk order (the caller holds a transaction)."""
    return list(rows.select_for_update().order_by("pk"))


def claimed_deployments_lock(*, ids: list[int], token: UUID) -> list[Deployment]:
    """The rows of these ids still under the claim `token`, locked in pk order: a claim taken
    over since (another token) is left alone."""
    return deployments_lock(rows=Deployment.objects.filter(pk__in=ids, claim_token=token))


def claimable_deployments_lock(*, rows: QuerySet[Deployment], limit: int) -> list[Deployment]:
    """At most `limit` of these rows that nobody else has locked, locked in pk order. SKIP LOCKED
    never waits, so a reconciler's claim needs no place in the workflows' lock order."""
    return list(
        rows.select_for_update(skip_locked=True, of=("self",))
        .select_related("release_app__application")
        .order_by("pk")[:limit]
    )
