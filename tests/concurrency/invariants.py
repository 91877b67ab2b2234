"""The facts that must hold after any sequence of workflows, read straight from the database.

Each check returns a list of human-readable violations (empty when the fact holds), so a
failing test names every broken row at once.
"""

from collections import Counter

from builds.choices import BuildStatus
from builds.models import BuildImage
from deployments.models import Deployment
from releases.choices import OPEN_BATCH_STATUSES, BatchStatus, ReleaseStatus
from releases.models import ReleaseApp


def one_current_deployment_per_environment() -> list[str]:
    counts = Counter(
        Deployment.objects.current().values_list("release_app_id", "environment").order_by()
    )
    return [
        f"release {r} has {n} current {env} deployments" for (r, env), n in counts.items() if n > 1
    ]


def no_pending_release_in_deploying_batch() -> list[str]:
    rows = ReleaseApp.objects.filter(
        batch__status__in=[BatchStatus.PRE_DEPLOYING, BatchStatus.PROD_DEPLOYING],
        status=ReleaseStatus.PENDING,
    ).values_list("pk", "batch_id", "batch__status")
    return [f"release {pk} is pending in batch {b} ({s})" for pk, b, s in rows]


def has_new_tag_consistent() -> list[str]:
    rows = ReleaseApp.objects.values_list("pk", "image_tag", "latest_image_tag", "has_new_tag")
    return [
        f"release {pk}: has_new_tag={flag} with tag {tag!r}, latest {latest!r}"
        for pk, tag, latest, flag in rows
        if flag != (bool(latest) and latest != tag)
    ]


def latest_tag_is_highest_successful_build() -> list[str]:
    """For releases of open batches: latest = the app's highest-numbered successful build.

    Assumes one repository (build numbers are only ordered within a repository).
    """
    highest: dict[int, tuple[int, int, str]] = {}
    for app_id, build_id, number, tag in BuildImage.objects.filter(
        build__status=BuildStatus.SUCCESS
    ).values_list("application_id", "build_id", "build__number", "image_tag"):
        if app_id not in highest or number > highest[app_id][1]:
            highest[app_id] = (build_id, number, tag)
    problems = []
    for pk, app_id, build_id, tag in ReleaseApp.objects.filter(
        batch__status__in=OPEN_BATCH_STATUSES
    ).values_list("pk", "application_id", "latest_build_id", "latest_image_tag"):
        want = highest.get(app_id)
        if want is None or (build_id, tag) != (want[0], want[2]):
            problems.append(f"release {pk}: latest is build {build_id} {tag!r}, expected {want}")
    return problems


def release_tag_from_successful_build() -> list[str]:
    """A release's chosen tag is what its build produced for its app, and that build succeeded."""
    images = {
        (build_id, app_id): (tag, status)
        for build_id, app_id, tag, status in BuildImage.objects.values_list(
            "build_id", "application_id", "image_tag", "build__status"
        )
    }
    problems = []
    for pk, app_id, build_id, tag in ReleaseApp.objects.values_list(
        "pk", "application_id", "build_id", "image_tag"
    ):
        if images.get((build_id, app_id)) != (tag, BuildStatus.SUCCESS):
            problems.append(
                f"release {pk} at {tag!r} but build {build_id} gave {images.get((build_id, app_id))}"
            )
    return problems


def superseded_chain_acyclic() -> list[str]:
    """Following `superseded_by` from any deployment ends at a current one, without a loop."""
    rows = {
        pk: (by, at is None, release)
        for pk, by, at, release in Deployment.objects.values_list(
            "pk", "superseded_by_id", "superseded_at", "release_app_id"
        )
    }
    problems = []
    for start in rows:
        seen, pk = set(), start
        while True:
            if pk in seen:
                problems.append(f"superseded chain from {start} loops at {pk}")
                break
            seen.add(pk)
            by, current, release = rows[pk]
            if by is None:
                if not current:
                    problems.append(f"deployment {pk} is superseded by nothing")
                break
            if current:
                problems.append(f"deployment {pk} is current yet superseded by {by}")
                break
            if rows[by][2] != release:
                problems.append(f"deployment {pk} superseded by {by} of another release")
                break
            pk = by
    return problems


ALL = [
    one_current_deployment_per_environment,
    no_pending_release_in_deploying_batch,
    has_new_tag_consistent,
    latest_tag_is_highest_successful_build,
    release_tag_from_successful_build,
    superseded_chain_acyclic,
]


def violations() -> list[str]:
    return [problem for check in ALL for problem in check()]
