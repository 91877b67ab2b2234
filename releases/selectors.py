from dataclasses import dataclass

from django.db.models import Exists, F, OuterRef, Subquery, Window
from django.db.models.functions import RowNumber

from builds.choices import BuildStatus
from builds.models import BuildImage
from deployments.models import Deployment
from utilities.errors import DomainError

from . import rules
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
    (check 6a), or None: the admin's lists read the hold itself only for a held row."""
    return queryset.annotate(
        switch_hold_id=Subquery(
            Hold.objects.active()
            .naming(application=OuterRef("application_id"), batch=OuterRef("batch_id"))
            .order_by("starts_at", "pk")
            .values("pk")[:1]
        )
    )


def switch_holds(release) -> list[Hold]:
    """The hold `with_switch_hold` found for this release, as check 6a's input."""
    if getattr(release, "switch_hold_id", None) is None:
        return []
    return list(holds_list().filter(pk=release.switch_hold_id))


def release_get(*, release_id: int) -> ReleaseApp:
    release = (
        with_deployment_in_progress(
            ReleaseApp.objects.select_related(
                "batch", "application", "build", "latest_build", "tag_updated_by"
            )
        )
        .filter(pk=release_id)
        .order_by()  # one row: the default ordering would only add a join and a sort
        .first()
    )
    if release is None:
        raise DomainError("not_found", f"Release {release_id} does not exist.")
    return release


def release_status(*, release_id: int, user) -> ReleaseStatusView:
    """Everything a person needs to decide on a switch; a constant number of queries."""
    release = release_get(release_id=release_id)
    deployments = Deployment.objects.filter(release_app_id=release.pk).select_related("created_by")
    covering = holds_covering_releases(releases=[release])[release.pk]
    release.covering_holds = covering
    return ReleaseStatusView(
        release=release,
        switch_blockers=rules.switch_blockers(
            user=user,
            batch_status=release.batch.status,
            deployment_in_progress=release.deployment_in_progress,
            holds=holds_naming(covering, release=release),
        ),
        current_deployments=list(deployments.current().order_by("environment")),
        history=list(deployments.order_by("-created_at", "-pk")[:HISTORY_LIMIT]),
    )


def application_tag_choices(*, application_id: int, limit: int = 50) -> list[BuildImage]:
    """Tags of this application's newest successful builds, newest first.

    Bounded so the switch form stays one screen however long the history; an older tag can
    still be named through the API.
    """
    return list(
        BuildImage.objects.filter(application_id=application_id, build__status=BuildStatus.SUCCESS)
        .select_related("build")
        .order_by("-build__number", "-build_id")[:limit]
    )


def application_tag_menu(*, per_app: int = 20) -> dict[int, list[BuildImage]]:
    """Each application's newest successful tags, newest first (at most `per_app` each): what
    the batch creation form offers. One query, whatever the history size."""
    images = (
        BuildImage.objects.filter(build__status=BuildStatus.SUCCESS)
        .annotate(
            rank=Window(
                RowNumber(),
                partition_by=[F("application_id")],
                order_by=[F("build__number").desc(), F("build_id").desc()],
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
    """Of these holds, those naming the release's application or batch: check 6a's."""
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
