"""What a live page's poll costs and sends: a 304 decided from one query of revisions, rendering
nothing, whatever the batch size; after a change, the regions of what changed and nothing else."""

import re
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from applications.models import Application
from deployments.models import Deployment
from releases.services import (
    apply_deployment_outcome,
    cancel_batch,
    start_pre_deploy,
    switch_version,
)
from tests.helpers import deployment_mark_running, notify
from tests.releases.admin.test_live import poller
from tests.releases.admin.test_query_counts import batch_of

pytestmark = pytest.mark.django_db

PAGES = ("batch", "batch list", "release list", "release", "applications", "application")


def page_url(page_of: str, batch) -> str:
    release = batch.releases.order_by("pk").first()
    return {
        "batch": reverse("admin:releases_batch_change", args=[batch.pk]),
        "batch list": reverse("admin:releases_batch_changelist"),
        "release list": reverse("admin:releases_releaseapp_changelist")
        + f"?batch__id__exact={batch.pk}",
        "release": reverse("admin:releases_releaseapp_change", args=[release.pk]),
        "applications": reverse("admin:applications_application_changelist")
        + f"?q={release.application.name.rsplit('-', 1)[0]}",
        "application": reverse(
            "admin:applications_application_change", args=[release.application_id]
        ),
    }[page_of]


def poll(client, live_url, etag):
    with CaptureQueriesContext(connection) as captured:
        answer = client.get(live_url, HTTP_IF_NONE_MATCH=etag)
    return answer, [q["sql"] for q in captured]


def own_queries(sqls) -> list[str]:
    """The poll's own queries: not the session's, the user's nor their permissions'."""
    return [q for q in sqls if not re.search(r'"(django_session|auth_\w+)"', q.split("WHERE")[0])]


def regions(answer) -> set[str]:
    return set(re.findall(r'id="(live-[\w-]+)"', answer.content.decode()))


@pytest.mark.parametrize("page_of", PAGES)
def test_a_304_poll_reads_its_revisions_and_the_active_holds_and_renders_nothing(
    client, engineer, page_of
):
    client.force_login(engineer)
    small, large = batch_of(20, engineer, 10), batch_of(200, engineer, 20)

    answers = {}
    for batch in (small, large, large):  # the first poll of a process warms its caches
        live_url, etag = poller(client.get(page_url(page_of, batch)))
        answers[batch.pk] = poll(client, live_url, etag)

    for answer, sqls in answers.values():
        assert answer.status_code == 304 and answer.content == b""
        assert answer.templates == []  # nothing rendered
        # The page's revisions, and the active holds (they change with the clock alone).
        revisions, holds = own_queries(sqls)
        assert "releases_hold" in holds and "releases_hold" not in revisions
        # Besides them only the session, and the user with their permissions in one query.
        assert len(sqls) == 4
    assert len(answers[small.pk][1]) == len(answers[large.pk][1])


def test_one_new_tag_on_a_200_release_page_sends_that_row_only(client, engineer):
    client.force_login(engineer)
    batch = batch_of(200, engineer, 30)
    live_url, etag = poller(client.get(page_url("batch", batch)))
    changed = batch.releases.order_by("pk")[7]
    other = batch.releases.order_by("pk")[8]

    notify(40, {changed.application.name: "v9"})
    answer, _ = poll(client, live_url, etag)

    assert answer.status_code == 200
    assert len(answer.content) <= 8 * 1024, len(answer.content)
    assert f"live-releaseapp-{changed.pk}-latest_tag" in regions(answer)
    assert ">v9</code>" in answer.content.decode()
    assert not any(f"live-releaseapp-{other.pk}-" in r for r in regions(answer))
    assert poll(client, live_url, answer["ETag"])[0].status_code == 304


def rows(answer, batch) -> dict[str, set[str]]:
    """The release rows an answer re-renders, by application name."""
    names = dict(batch.releases.values_list("pk", "application__name"))
    found: dict[str, set[str]] = {}
    for region in regions(answer):
        if match := re.fullmatch(r"live-releaseapp-(\d+)-(\w+)", region):
            found.setdefault(names[int(match[1])], set()).add(match[2])
    return found


ROW = {"chosen_tag", "latest_tag", "release_status", "deployments_now", "switch"}


def test_each_workflow_reaches_the_batch_page_with_the_rows_it_changed(
    client, engineer, batch, executor
):
    client.force_login(engineer)
    live_url, etag = poller(client.get(page_url("batch", batch)))

    def after(change) -> str:
        nonlocal etag
        change()
        answer, _ = poll(client, live_url, etag)
        assert answer.status_code == 200
        etag = answer["ETag"]
        return answer

    switched = after(
        lambda: switch_version(
            release_id=batch.releases.get(application__name="api").pk, user=engineer
        )
    )
    assert rows(switched, batch) == {"api": ROW}
    assert ">v2</code>" in switched.content.decode()

    tagged = after(lambda: notify(3, {"web": "w2"}, repo="org/shop"))
    assert rows(tagged, batch) == {"web": ROW}

    started = after(lambda: start_pre_deploy(batch_id=batch.pk, user=engineer))
    assert rows(started, batch) == {"api": ROW, "web": ROW}  # the batch's status: every row
    assert "Deploying to pre" in started.content.decode()

    api = Deployment.objects.get(release_app__application__name="api", superseded_at=None)
    running = after(
        lambda: deployment_mark_running(deployment_id=api.pk, job_name="j", job_namespace="rt-pre")
    )
    assert rows(running, batch) == {"api": ROW}
    assert 'data-status="running"' in running.content.decode()

    finished = after(lambda: apply_deployment_outcome(deployment_id=api.pk, outcome="succeeded"))
    assert rows(finished, batch) == {"api": ROW}
    assert 'data-status="succeeded"' in finished.content.decode()

    cancelled = after(lambda: cancel_batch(batch_id=batch.pk, user=engineer))
    assert rows(cancelled, batch) == {"api": ROW, "web": ROW}
    assert f"live-batch-{batch.pk}-batch_status" in regions(cancelled)
    assert poll(client, live_url, etag)[0].status_code == 304


def test_the_applications_list_and_page_follow_a_deployment_and_a_build(
    client, engineer, batch, executor
):
    client.force_login(engineer)
    api = Application.objects.get(name="api")
    listing = poller(client.get(reverse("admin:applications_application_changelist")))
    page = poller(client.get(reverse("admin:applications_application_change", args=[api.pk])))

    result = start_pre_deploy(batch_id=batch.pk, user=engineer)
    deployment = next(d for d in result.deployments if d.application_id == api.pk)
    deployment_mark_running(deployment_id=deployment.pk, job_name="j", job_namespace="rt-pre")
    apply_deployment_outcome(deployment_id=deployment.pk, outcome="succeeded")

    for live_url, etag in (listing, page):
        answer, _ = poll(client, live_url, etag)
        assert answer.status_code == 200
        # The deployment now runs in pre: its link is in the app's regions.
        link = reverse("admin:deployments_deployment_change", args=[deployment.pk])
        assert link in answer.content.decode()
    listing = poller(client.get(reverse("admin:applications_application_changelist")))
    notify(5, {"web": "w7"}, repo="org/shop")
    answer, _ = poll(client, *listing)
    assert ">w7</code>" in answer.content.decode()
    assert {r for r in regions(answer) if r.startswith("live-application-")} == {
        f"live-application-{Application.objects.get(name='web').pk}-{name}"
        for name in ("pre_now", "prod_now", "latest_build", "open_batches")
    }


def test_the_applications_list_answers_304_while_the_minutes_pass(client, engineer, batch):
    client.force_login(engineer)
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        live_url, etag = poller(client.get(reverse("admin:applications_application_changelist")))
    for minutes in (1, 2, 61, 60 * 25):
        with time_machine.travel(start + timedelta(minutes=minutes), tick=False):
            assert poll(client, live_url, etag)[0].status_code == 304


def test_relative_times_are_absolute_in_the_markup(client, engineer, batch):
    client.force_login(engineer)
    page = client.get(reverse("admin:applications_application_changelist")).content.decode()

    times = re.findall(r"<time [^>]*data-rt-ago[^>]*>[^<]*</time>", page)
    assert times and all(re.search(r'datetime="\d{4}-\d\d-\d\dT', t) for t in times)
    assert " ago" not in page


def test_a_permission_granted_meanwhile_renders_the_page_again(client, switcher, viewer, batch):
    client.force_login(viewer)
    live_url, etag = poller(client.get(page_url("batch", batch)))
    assert poll(client, live_url, etag)[0].status_code == 304

    client.force_login(switcher)  # another user with other rights, same ETag
    answer, _ = poll(client, live_url, etag)

    assert answer.status_code == 200
    assert rows(answer, batch) == {"api": ROW, "web": ROW}


def test_the_one_statement_touch_writes_what_the_portable_code_writes(engineer, monkeypatch):
    """PostgreSQL's `live_touch` is one statement; the demo's SQLite runs the same steps one by
    one. The same touches leave the same revisions either way."""
    from django.db import transaction

    from live.models import ApplicationRevision, BatchRevision, ReleaseRevision
    from live.revisions import live_touch

    one, two = batch_of(3, engineer, 70), batch_of(2, engineer, 80)
    releases = sorted(one.releases.values_list("pk", flat=True))
    deployments = sorted(
        Deployment.objects.filter(release_app__batch=two).values_list("pk", flat=True)
    )
    touches = [
        {"release_ids": releases[:2]},
        {"deployment_ids": deployments},
        {"batch_ids": [two.pk]},
        {"application_ids": [one.releases.first().application_id]},
        {"release_ids": releases[1:], "batch_ids": [one.pk], "deployment_ids": deployments[:1]},
    ]

    def touched():
        for touch in touches:
            live_touch(**touch)
        return [
            sorted(BatchRevision.objects.values_list("batch_id", "revision", "whole")),
            sorted(ApplicationRevision.objects.values_list("application_id", "revision")),
            sorted(ReleaseRevision.objects.values_list("release_id", "batch_id", "revision")),
        ]

    before = touched()  # a history to start from: rows exist, and are bumped
    with transaction.atomic():
        in_one_statement = touched()
        transaction.set_rollback(True)
    monkeypatch.setattr(connection, "vendor", "sqlite")
    step_by_step = touched()

    assert in_one_statement == step_by_step != before
