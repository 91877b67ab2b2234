"""What runs where (releases/overview.py): the rules, and a constant number of queries."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from applications.models import Application
from deployments.models import Deployment
from releases.overview import (
    application_overview_get,
    application_overviews,
    application_recent_deployments,
    applications_behind,
    applications_never_deployed,
    applications_overview,
    applications_search,
)
from releases.services import (
    apply_deployment_outcome,
    cancel_batch,
    create_batch,
    start_pre_deploy,
    start_prod_deploy,
    switch_version,
)
from releases.services.batches import AppChoice
from tests.helpers import deployment_mark_running, notify, nov_batch, old_deployments, run_stage
from utilities.errors import DomainError

pytestmark = pytest.mark.django_db


def rollout(user, name: str, apps: dict[str, str | None], pre=None, prod=None):
    """A batch of `apps` ({name: tag or None for latest}) through pre and, if it passed, prod.

    `pre` / `prod` map an app to its outcome (default succeeded); prod=False stops after pre.
    """
    batch = create_batch(
        name=name, apps=[AppChoice(app, tag) for app, tag in apps.items()], user=user
    ).batch
    run_stage(start_pre_deploy(batch_id=batch.pk, user=user), outcomes=pre)
    batch.refresh_from_db()
    if prod is not False and batch.status == "prod_waiting":
        run_stage(start_prod_deploy(batch_id=batch.pk, user=user), outcomes=prod)
    batch.refresh_from_db()
    return batch


def overview(name: str):
    return application_overview_get(name=name)


def test_an_app_in_no_batch_yet_was_never_deployed_anywhere():
    notify(1, {"api": "v1"})

    api = overview("api")

    assert api.environments == {"pre": None, "prod": None}
    assert (api.latest.image_tag, api.latest.build_number) == ("v1", 1)
    assert api.open_releases == []


def test_what_runs_comes_from_the_newest_success_whatever_its_batch(user, executor):
    notify(1, {"api": "v1"})
    first = rollout(user, "Nov", {"api": None})
    notify(2, {"api": "v2"})
    second = rollout(user, "Dec", {"api": None})

    api = overview("api")

    assert first.status == second.status == "completed"
    prod = api.environments["prod"]
    assert (prod.running.image_tag, prod.running.batch_id) == ("v2", second.pk)
    assert prod.running.started_by == user.username
    assert prod.last_failed is None and not prod.behind
    assert api.open_releases == []  # both batches are completed


def test_a_failed_prod_attempt_after_a_good_one_is_shown_beside_it(user, executor):
    notify(1, {"api": "v1"})
    good = rollout(user, "Nov", {"api": None})
    notify(2, {"api": "v2"})
    failing = rollout(user, "Dec", {"api": None}, prod={"api": "failed"})

    api = overview("api")

    prod, pre = api.environments["prod"], api.environments["pre"]
    assert failing.status == "prod_waiting"  # open: prod may be retried
    assert (prod.running.image_tag, prod.running.batch_id) == ("v1", good.pk)
    assert (prod.last_failed.image_tag, prod.last_failed.status) == ("v2", "failed")
    assert prod.behind  # v1 runs, v2 is the latest build
    assert (pre.running.image_tag, pre.last_failed, pre.behind) == ("v2", None, False)
    assert [r.batch_id for r in api.open_releases] == [failing.pk]


def test_a_failure_older_than_what_runs_is_no_longer_shown(user, executor):
    notify(1, {"api": "v1"})
    batch = rollout(user, "Nov", {"api": None}, prod={"api": "failed"})
    run_stage(start_prod_deploy(batch_id=batch.pk, user=user))  # the retry succeeds

    prod = overview("api").environments["prod"]

    assert (prod.running.image_tag, prod.last_failed) == ("v1", None)


def test_a_first_attempt_that_failed_is_shown_though_nothing_runs(user, executor):
    notify(1, {"api": "v1"})
    rollout(user, "Nov", {"api": None}, pre={"api": "failed"})

    api = overview("api")

    pre = api.environments["pre"]
    assert pre.running is None and not pre.behind
    assert (pre.last_failed.image_tag, pre.last_failed.status) == ("v1", "failed")
    assert api.environments["prod"] is None


def test_a_superseded_deployment_still_runs_until_another_succeeds(user, executor):
    notify(1, {"api": "v1"})
    batch = rollout(user, "Nov", {"api": None}, prod=False)
    notify(2, {"api": "v2"})
    release = batch.releases.get()
    switch_version(release_id=release.pk, user=user)  # supersedes the v1 pre deployment

    pre = overview("api").environments["pre"]
    superseded = Deployment.objects.get(release_app=release, image_tag="v1")
    assert superseded.superseded_at is not None
    assert (pre.running.id, pre.running.image_tag, pre.behind) == (superseded.pk, "v1", True)

    run_stage(start_pre_deploy(batch_id=batch.pk, user=user))

    pre = overview("api").environments["pre"]
    assert (pre.running.image_tag, pre.behind) == ("v2", False)


def test_a_cancel_counts_as_an_attempt_only_once_its_job_started(user, executor):
    batch = nov_batch(user)
    queued = start_pre_deploy(batch_id=batch.pk, user=user).deployments
    api = next(d for d in queued if d.release_app.application.name == "api")
    deployment_mark_running(deployment_id=api.pk, job_name="rt-1", job_namespace="pre")
    cancel_batch(batch_id=batch.pk, user=user)

    api_pre, web_pre = overview("api").environments["pre"], overview("web").environments["pre"]

    assert (api_pre.last_failed.id, api_pre.last_failed.status) == (api.pk, "cancelled")
    assert web_pre is None  # its deployment was cancelled before it ran


def test_filters_behind_never_deployed_and_search(user, executor):
    notify(1, {"api": "v1", "web": "w1", "db": "d1"})
    rollout(user, "Nov", {"api": None, "web": None})
    notify(2, {"api": "v2"})

    def names(queryset):
        return [a.name for a in queryset]

    everything = applications_overview()
    assert names(everything) == ["api", "db", "web"]
    assert names(applications_behind(everything, environment="prod")) == ["api"]
    assert names(applications_behind(everything, environment="pre")) == ["api"]
    assert names(applications_never_deployed(everything, environment="prod")) == ["db"]
    assert names(applications_search(everything, term="w1")) == ["web"]
    assert names(applications_search(everything, term="v")) == ["api"]  # v1 runs, v2 latest
    assert names(applications_search(everything, term="d")) == ["db"]  # the name, or d1


def test_recent_deployments_per_environment_newest_first(user, executor):
    notify(1, {"api": "v1"})
    rollout(user, "Nov", {"api": None}, prod={"api": "failed"})

    recent = application_recent_deployments(application_id=Application.objects.get().pk)

    assert [(d.image_tag, d.status) for d in recent["pre"]] == [("v1", "succeeded")]
    assert [(d.image_tag, d.status) for d in recent["prod"]] == [("v1", "failed")]


def test_unknown_application_is_not_found():
    with pytest.raises(DomainError) as err:
        overview("nope")
    assert err.value.code == "not_found"


# --- cost --------------------------------------------------------------------------------------


def _page_queries() -> tuple[int, list]:
    with CaptureQueriesContext(connection) as queries:
        page = list(applications_overview()[:50])
        overviews = application_overviews(applications=page)
        shown = []  # everything the API and the admin show
        for o in overviews:
            for env in filter(None, o.environments.values()):
                for d in filter(None, (env.running, env.last_failed)):
                    shown += [d.batch_name, d.started_by]
            shown += [o.latest and o.latest.build_number, *(r.batch_name for r in o.open_releases)]
    return len(queries), overviews


def test_a_page_costs_the_same_queries_with_0_or_10000_deployments(user, executor):
    notify(1, {f"app-{i:02d}": "v1" for i in range(20)})
    batch = create_batch(
        name="Nov", apps=[AppChoice(f"app-{i:02d}") for i in range(20)], user=user
    ).batch
    none, _ = _page_queries()
    run_stage(start_pre_deploy(batch_id=batch.pk, user=user))
    before, _ = _page_queries()

    release = batch.releases.first()
    old_deployments(
        release, 10_000, environments=("pre", "prod"), statuses=("succeeded", "failed", "cancelled")
    )
    after, overviews = _page_queries()

    assert Deployment.objects.count() == 10_020
    assert none == 4  # no deployment to read
    assert before == after == 5
    assert sum(1 for o in overviews if o.environments["pre"]) == 20


def test_apply_outcome_keeps_the_overview_current(user, executor):
    notify(1, {"api": "v1"})
    batch = create_batch(name="Nov", apps=[AppChoice("api")], user=user).batch
    deployment = start_pre_deploy(batch_id=batch.pk, user=user).deployments[0]
    deployment_mark_running(deployment_id=deployment.pk, job_name="rt-1", job_namespace="pre")
    assert overview("api").environments["pre"] is None  # running, not yet succeeded

    apply_deployment_outcome(deployment_id=deployment.pk, outcome="succeeded")

    assert overview("api").environments["pre"].running.id == deployment.pk
