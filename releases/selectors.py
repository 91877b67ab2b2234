from dataclasses import dataclass

from django.db.models import Exists, F, OuterRef, Q, QuerySet, Subquery, Window
from django.db.models.functions import RowNumber
from django.utils import timezone
from django.utils.translation import gettext as _

from builds.models import BuildImage
from builds.selectors import build_images_successful
from deployments.models import Deployment
from utilities.compiled import CompiledQuery
from utilities.errors import DomainError

from . import rules
from .choices import OPEN_BATCH_STATUSES
from .models import Hold, ReleaseApp

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


def with_switch_hold(queryset):
    """Annotate each release with the id of the first active hold in the way of its switch
    (the "no hold" rule), or None: the admin's lists read the hold itself only for a held row."""
    return queryset.annotate(
        switch_hold_id=Subquery(
            Hold.objects.active()
            .naming(application=OuterRef("application_id"), batch=OuterRef("batch_id"))
            .order_by("starts_at", "pk")
            .values("pk")[:1]
        )
    )


def switch_holds(release) -> list[Hold]:
    """The hold `with_switch_hold` found for this release, as the "no hold" rule's input."""
    if getattr(release, "switch_hold_id", None) is None:
        return []
    return list(holds_list().filter(pk=release.switch_hold_id))


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
# `holds_covering_releases` of one release: the holds of its application or batch (or of all).
_HOLDS_COVERING = CompiledQuery(
    lambda application_id, batch_id, at: (
        holds_list()
        .active(at=at)
        .covering(application=application_id, batch=batch_id)
        .order_by("starts_at", "pk")
    )
)


def release_get(*, release_id: int) -> ReleaseApp:
    # An id no row can have (beyond bigint) is simply not found, as the ORM would answer.
    found = _RELEASE(release_id) if 0 < release_id < 2**63 else []
    if not found:
        raise DomainError("not_found", _("Release %(id)s does not exist.") % {"id": release_id})
    return found[0]


def release_status(*, release_id: int, user) -> ReleaseStatusView:
    """Everything a person needs to decide on a switch; three queries (the release, its
    deployments, the holds covering it), whatever the history."""
    release = release_get(release_id=release_id)
    shown = _SHOWN_DEPLOYMENTS(release.pk)
    covering = _HOLDS_COVERING(release.application_id, release.batch_id, timezone.now())
    release.covering_holds = covering
    return ReleaseStatusView(
        release=release,
        switch_blockers=rules.switch_blockers(
            user=user,
            application=release.application,
            batch_status=release.batch.status,
            deployment_in_progress=release.deployment_in_progress,
            holds=holds_naming(covering, release=release),
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


def holds_list():
    """Holds with what their JSON and their sentence name, active first then newest."""
    return Hold.objects.select_related("application", "batch", "created_by", "lifted_by")


def holds_naming(holds: list[Hold], *, release) -> list[Hold]:
    """Of these holds, those naming the release's application or batch: the "no hold" rule's."""
    return [
        h
        for h in holds
        if h.application_id == release.application_id or h.batch_id == release.batch_id
    ]


def holds_covering_releases(*, releases, at=None) -> dict[int, list[Hold]]:
    """The active holds covering each release (some deployment of it): one query however many
    releases and holds."""
    releases = list(releases)
    if not releases:
        return {}
    holds = list(
        holds_list()
        .active(at=at)
        .covering(
            application={r.application_id for r in releases}, batch={r.batch_id for r in releases}
        )
        .order_by("starts_at", "pk")
    )
    return {r.pk: [h for h in holds if h.covers_release(r)] for r in releases}


def holds_covering_batches(*, batches, at=None) -> dict[int, list[Hold]]:
    """The active holds covering each batch (some deployment of one of its releases): one query,
    and one more for the batches' applications when a hold names an application."""
    batches = list(batches)
    if not batches:
        return {}
    holds = list(
        holds_list()
        .active(at=at)
        .covering(batch={b.pk for b in batches})
        .order_by("starts_at", "pk")
    )
    held_apps = {h.application_id for h in holds if h.application_id is not None}
    apps_of: dict[int, set[int]] = {}
    if held_apps:
        for batch_id, application_id in ReleaseApp.objects.filter(
            batch_id__in=[b.pk for b in batches], application_id__in=held_apps
        ).values_list("batch_id", "application_id"):
            apps_of.setdefault(batch_id, set()).add(application_id)
    return {
        b.pk: [
            h
            for h in holds
            if h.batch_id in (None, b.pk)
            and (h.application_id is None or h.application_id in apps_of.get(b.pk, ()))
        ]
        for b in batches
    }


def holds_covering_stage(*, batch_id: int, environment: str, application_ids, at=None):
    """The active holds covering any deployment a stage start would queue."""
    return (
        holds_list()
        .active(at=at)
        .covering(environment=environment, batch=batch_id, application=list(application_ids))
        .order_by("starts_at", "pk")
    )


def holds_covering_application(*, application_id: int, at=None):
    """The active holds covering a deployment of this application: in any batch, or in one of
    the batches it is in."""
    return (
        holds_list()
        .active(at=at)
        .covering(
            application=application_id,
            batch=ReleaseApp.objects.filter(application_id=application_id).values("batch_id"),
        )
        .order_by("starts_at", "pk")
    )
