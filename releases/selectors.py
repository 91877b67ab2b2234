from dataclasses import dataclass

from django.db.models import Exists, F, OuterRef, Q, QuerySet, Window
from django.db.models.functions import RowNumber
from django.utils.translation import gettext as _

from builds.models import BuildImage
from builds.selectors import build_images_successful
from deployments.models import Deployment
from utilities.compiled import CompiledQuery
from utilities.errors import DomainError

from . import rules
from .choices import OPEN_BATCH_STATUSES
from .models import ReleaseApp

HISTORY_LIMIT = 50


@dataclass(frozen=True)
class ReleaseStatusView:
    release: ReleaseApp
    switch_blockers: list[rules.Blocker]
    current_deployments: list[Deployment]
    history: list[Deployment]

    @property
    def can_switch(self) -> bool:
        return not self.switch_blockers


def with_deployment_in_progress(queryset):
    """Annotate each release with the fact the switch's "nothing deploying" rule reads, for one release or a list."""
    return queryset.annotate(
        deployment_in_progress=Exists(
            Deployment.objects.filter(release_app=OuterRef("pk")).in_progress()
        )
    )


# The status is the API's hot read: its two queries are compiled once (utilities.compiled).
_RELEASE = CompiledQuery(
    lambda release_id: (
        with_deployment_in_progress(
            ReleaseApp.objects.select_related(
                "batch", "application", "build", "latest_build", "tag_updated_by"
            )
        )
        .filter(pk=release_id)
        .order_by()
    )  # one row: the default ordering would only add a join and a sort
)


def _shown_deployments(release_id: int):
    deployments = Deployment.objects.filter(release_app_id=release_id)
    newest = deployments.order_by("-created_at", "-pk").values("pk")[:HISTORY_LIMIT]
    # The newest deployments and the current ones in one query: in this order the newest come
    # first, and a current deployment older than all of them after them.
    return (
        deployments.filter(Q(pk__in=newest) | Q(superseded_at__isnull=True))
        .select_related("created_by")
        .order_by("-created_at", "-pk")
    )


_SHOWN_DEPLOYMENTS = CompiledQuery(_shown_deployments)


def release_get(*, release_id: int) -> ReleaseApp:
    # An id no row can have (beyond bigint) is simply not found, as the ORM would answer.
    found = _RELEASE(release_id) if 0 < release_id < 2**63 else []
    if not found:
        raise DomainError("not_found", _("Release %(id)s does not exist.") % {"id": release_id})
    return found[0]


def release_status(*, release_id: int, user) -> ReleaseStatusView:
    """Everything a person needs to decide on a switch; two queries, whatever the history."""
    release = release_get(release_id=release_id)
    shown = _SHOWN_DEPLOYMENTS(release.pk)
    return ReleaseStatusView(
        release=release,
        switch_blockers=rules.switch_blockers(
            user=user,
            batch_status=release.batch.status,
            deployment_in_progress=release.deployment_in_progress,
        ),
        current_deployments=sorted((d for d in shown if d.is_current), key=lambda d: d.environment),
        history=shown[:HISTORY_LIMIT],
    )


def releases_new_tag_filter(queryset: QuerySet[ReleaseApp], *, has_new_tag: bool):
    """Releases that have a new tag to switch to, or the others. A closed batch can never
    switch, so its releases count as having none: its `has_new_tag` is history."""
    switchable = Q(has_new_tag=True, batch__status__in=OPEN_BATCH_STATUSES)
    return queryset.filter(switchable if has_new_tag else ~switchable)


def application_tag_choices(*, application_id: int, limit: int = 50) -> list[BuildImage]:
    """Tags of this application's newest successful builds, newest first.

    Bounded so the switch form stays one screen however long the history; an older tag can
    still be named through the API.
    """
    return list(
        build_images_successful()
        .filter(application_id=application_id)
        .select_related("build")[:limit]
    )


def application_tag_menu(*, per_app: int = 20) -> dict[int, list[BuildImage]]:
    """Each application's newest successful tags, newest first (at most `per_app` each): what
    the batch creation form offers. One query, whatever the history size."""
    images = (
        build_images_successful()
        .annotate(
            rank=Window(
                RowNumber(),
                partition_by=[F("application_id")],
                order_by=[F("succeeded_at").desc(), F("build_id").desc()],
            )
        )
        .filter(rank__lte=per_app)
        .select_related("build")
        .order_by("application_id", "rank")
    )
    menu: dict[int, list[BuildImage]] = {}
    for image in images:
        menu.setdefault(image.application_id, []).append(image)
    return menu
