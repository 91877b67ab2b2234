"""Row locks on applications: the first level of the one lock order (see releases/locks.py).

Ingestion and batch creation lock the applications they touch (FOR NO KEY UPDATE, so rows that
only reference an application are not held up) in pk order: a build can then never land unseen
by a batch that is being created with its app.
"""

from django.db.models import QuerySet

from .models import Application


def applications_lock(*, names) -> QuerySet[Application]:
    """The named applications, locked in pk order when evaluated (inside the caller's
    transaction). Evaluate it again after inserting missing names to lock those too."""
    return Application.objects.select_for_update(no_key=True).filter(name__in=names).order_by("pk")
