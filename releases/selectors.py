from dataclasses import dataclass

from django.db.models import Exists, F, OuterRef, Window
from django.db.models.functions import RowNumber

from builds.choices import BuildStatus
from builds.models import BuildImage
from deployments.models import Deployment
from utilities.errors import DomainError

from . import rules
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
    return ReleaseStatusView(
        release=release,
        switch_blockers=rules.switch_blockers(
            user=user,
            application=release.application,
            batch_status=release.batch.status,
            deployment_in_progress=release.deployment_in_progress,
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
