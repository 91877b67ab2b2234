"""What runs where: per application and environment, the tag running now and what is newer.

Read by the API (`/api/v1/applications/`) and the admin's Applications overview alike. A page of
applications costs a constant number of queries whatever the history: every fact of an
application is one probe of an index (Deployment's `deployment_app_*_idx`, BuildImage's
`build_image_app_succeeded_idx`) annotated onto the page's own query, and the rows those facts
point at are then read by primary key.

The rules:

- What runs in an environment is the app's newest *succeeded* deployment there (by the time it
  finished), whatever batch it came from and whether or not it was superseded since: a switch
  supersedes a deployment but does not undo what it deployed.
- A failed attempt (failed, or cancelled after its Job started) newer than that does not replace
  it; it is shown beside it. A deployment cancelled before it ran never touched the environment.
- The latest build is the app's latest successful build (`builds.selectors`: within a repo the
  highest number, across repos the most recently successful). An environment is
  behind when it runs a tag other than the latest build's.
"""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import F, OuterRef, Q, QuerySet, Subquery
from django.utils.translation import gettext as _

from applications.choices import Environment
from applications.models import Application
from builds.models import BuildImage
from builds.selectors import build_images_latest_first
from deployments.choices import DeploymentStatus
from deployments.models import FAILED_ATTEMPT, Deployment
from utilities.errors import DomainError

from .choices import OPEN_BATCH_STATUSES
from .models import Batch, ReleaseApp

ENVIRONMENTS = (Environment.PRE, Environment.PROD)
RECENT_LIMIT = 10


@dataclass(frozen=True)
class DeploymentFact:
    """A deployment as the overview names it (plain values: a page reads up to 200 of them)."""

    id: int
    image_tag: str
    status: str
    finished_at: datetime | None
    error: str
    release_id: int
    batch_id: int
    batch_name: str
    started_by: str | None  # who queued it: the stage start, or the switch that made it


@dataclass(frozen=True)
class LatestBuild:
    image_tag: str
    build_id: int
    build_number: int
    built_at: datetime  # when we learned the build succeeded


@dataclass(frozen=True)
class OpenRelease:
    id: int
    batch_id: int
    batch_name: str
    batch_status: str


@dataclass(frozen=True)
class EnvironmentNow:
    """One environment of one application; `running` is None if nothing ever succeeded there."""

    running: DeploymentFact | None
    # The newest failed attempt, only if it is newer than what runs.
    last_failed: DeploymentFact | None
    latest_tag: str | None

    @property
    def behind(self) -> bool:
        return bool(self.running and self.latest_tag and self.running.image_tag != self.latest_tag)


@dataclass(frozen=True)
class ApplicationOverview:
    application: Application
    latest: LatestBuild | None
    # None for an environment the app never reached: no success and no failed attempt.
    environments: dict[str, EnvironmentNow | None]
    open_releases: list[OpenRelease]  # oldest batch first

    @property
    def name(self) -> str:
        return self.application.name


def _running(environment: str) -> QuerySet[Deployment]:
    return Deployment.objects.filter(
        application=OuterRef("pk"), environment=environment, status=DeploymentStatus.SUCCEEDED
    ).order_by("-finished_at", "-id")


def _failed(environment: str) -> QuerySet[Deployment]:
    return Deployment.objects.filter(
        FAILED_ATTEMPT, application=OuterRef("pk"), environment=environment
    ).order_by("-finished_at", "-id")


def _latest() -> QuerySet[BuildImage]:
    return build_images_latest_first().filter(application=OuterRef("pk"))


def _first(queryset: QuerySet, field: str = "pk") -> Subquery:
    return Subquery(queryset.values(field)[:1])


def applications_overview() -> QuerySet[Application]:
    """Applications by name, each annotated with the ids `application_overviews` reads."""
    annotations = {"latest_image_id": _first(_latest())}
    for environment in ENVIRONMENTS:
        annotations[f"{environment}_running_id"] = _first(_running(environment))
        annotations[f"{environment}_failed_id"] = _first(_failed(environment))
    return Application.objects.annotate(**annotations).order_by("name")


def applications_behind(queryset: QuerySet[Application], *, environment: str):
    """Those whose `environment` runs a tag other than their latest build's."""
    running, latest = f"_{environment}_running_tag", "_latest_tag"
    return (
        queryset.annotate(
            **{
                running: _first(_running(environment), "image_tag"),
                latest: _first(_latest(), "image_tag"),
            }
        )
        .filter(**{f"{running}__isnull": False, f"{latest}__isnull": False})
        .exclude(**{running: F(latest)})
    )


def applications_never_deployed(queryset: QuerySet[Application], *, environment: str):
    """Those with no succeeded deployment in `environment`, ever."""
    return queryset.filter(**{f"{environment}_running_id__isnull": True})


def applications_search(queryset: QuerySet[Application], *, term: str):
    """Name contains `term`, or a tag running somewhere or the latest build's tag starts with it."""
    tags = {f"_{env}_tag": _first(_running(env), "image_tag") for env in ENVIRONMENTS}
    tags["_latest_search_tag"] = _first(_latest(), "image_tag")
    match = Q(name__icontains=term)
    for alias in tags:
        match |= Q(**{f"{alias}__startswith": term})
    return queryset.alias(**tags).filter(match)


def application_overviews(*, applications: list[Application]) -> list[ApplicationOverview]:
    """The overview of these applications (annotated by `applications_overview`).

    Four queries at most, each reading only the rows shown (by primary key, or the open
    batches' releases of these apps), as plain values rather than model instances.
    """
    app_ids = [app.pk for app in applications]
    deployment_ids = {
        getattr(app, f"{env}_{kind}_id")
        for app in applications
        for env in ENVIRONMENTS
        for kind in ("running", "failed")
    } - {None}
    deployments = {
        row[0]: DeploymentFact(*row)
        for row in Deployment.objects.filter(pk__in=deployment_ids).values_list(
            "id",
            "image_tag",
            "status",
            "finished_at",
            "error",
            "release_app_id",
            "release_app__batch_id",
            "release_app__batch__name",
            "created_by__username",
        )
    }
    images = {
        row[0]: LatestBuild(*row[1:])
        for row in BuildImage.objects.filter(
            pk__in={app.latest_image_id for app in applications} - {None}
        ).values_list("id", "image_tag", "build_id", "build_number", "build__updated_at")
    }
    open_releases = _open_releases(application_ids=app_ids)

    overviews = []
    for app in applications:
        latest = images.get(app.latest_image_id)
        environments = {}
        for env in ENVIRONMENTS:
            running = deployments.get(getattr(app, f"{env}_running_id"))
            failed = deployments.get(getattr(app, f"{env}_failed_id"))
            if failed and running and _finished(failed) <= _finished(running):
                failed = None
            environments[env] = (
                EnvironmentNow(
                    running=running,
                    last_failed=failed,
                    latest_tag=latest.image_tag if latest else None,
                )
                if running or failed
                else None
            )
        overviews.append(
            ApplicationOverview(
                application=app,
                latest=latest,
                environments=environments,
                open_releases=open_releases.get(app.pk, []),
            )
        )
    return overviews


def _open_releases(*, application_ids: list[int]) -> dict[int, list[OpenRelease]]:
    """Releases of these apps in open batches, by app. Two queries: the open batches (the
    working set, never history), then their releases of these apps, which PostgreSQL finds by
    intersecting the batch and the application indexes."""
    if not application_ids:
        return {}
    batches = {
        pk: (name, status)
        for pk, name, status in Batch.objects.filter(status__in=OPEN_BATCH_STATUSES)
        .order_by()
        .values_list("id", "name", "status")
    }
    found: dict[int, list[OpenRelease]] = {}
    if not batches:
        return found
    rows = (
        ReleaseApp.objects.filter(application_id__in=application_ids, batch_id__in=list(batches))
        .order_by("batch_id", "pk")
        .values_list("application_id", "id", "batch_id")
    )
    for app_id, pk, batch_id in rows:
        found.setdefault(app_id, []).append(OpenRelease(pk, batch_id, *batches[batch_id]))
    return found


def _finished(deployment: DeploymentFact) -> tuple:
    # The indexes' order: finished_at, then id; PostgreSQL puts a NULL first in DESC, as here.
    at = deployment.finished_at
    return (at is None, at or datetime.min, deployment.id)


def application_overview_get(*, name: str) -> ApplicationOverview:
    application = applications_overview().filter(name=name).first()
    if application is None:
        raise DomainError("not_found", _("No application named %(names)s.") % {"names": name})
    return application_overviews(applications=[application])[0]


def application_recent_deployments(
    *, application_id: int, limit: int = RECENT_LIMIT
) -> dict[str, list[Deployment]]:
    """Per environment, the app's newest deployments of any status, newest first."""
    return {
        env: list(
            Deployment.objects.filter(application_id=application_id, environment=env)
            .select_related("release_app__batch", "created_by")
            .order_by("-created_at", "-id")[:limit]
        )
        for env in ENVIRONMENTS
    }
