"""Interleavings forced one step at a time, for races too narrow to hit by chance.

Races found by forcing an interleaving that random timing rarely hits, kept as regressions.
"""

import contextlib
import threading

import pytest
from django.db import connection

import releases.services.batches as batches_module
from applications.models import Application
from builds.models import Build, BuildImage
from releases.models import ReleaseApp
from releases.services import create_batch
from releases.services.batches import AppChoice
from tests.concurrency import invariants
from tests.factories import UserFactory
from tests.helpers import notify, race

pytestmark = pytest.mark.django_db(transaction=True)


def _create_batch_while(land_build, *, user) -> ReleaseApp:
    """Create batch "Nov" of api, and run `land_build` in another thread right after the batch
    chose its builds and before it commits: the narrowest window for a lost new tag."""
    chosen, ingested = threading.Event(), threading.Event()
    original = batches_module._choose_builds

    def choose_then_let_a_build_land(**kwargs):
        result = original(**kwargs)
        chosen.set()
        # With the fix the build blocks until this batch commits, so do not wait for ever.
        ingested.wait(timeout=3)
        return result

    def drone():
        try:
            chosen.wait(timeout=30)
            land_build()
        finally:
            ingested.set()
            connection.close()

    batches_module._choose_builds = choose_then_let_a_build_land
    thread = threading.Thread(target=drone)
    thread.start()
    try:
        create_batch(name="Nov", apps=[AppChoice("api")], user=user)
    finally:
        batches_module._choose_builds = original
        thread.join(timeout=30)
    return ReleaseApp.objects.get()


def test_a_build_landing_while_a_batch_is_created_becomes_its_latest_tag():
    user = UserFactory()
    notify(1, {"api": "v1"})

    release = _create_batch_while(lambda: notify(2, {"api": "v2"}), user=user)

    assert invariants.latest_tag_is_highest_successful_build() == []
    assert (release.latest_image_tag, release.has_new_tag) == ("v2", True)


def _drone_client():
    from tests.helpers import token_client

    client = token_client(UserFactory(permissions=["builds.notify_build"]))
    client.raise_request_exception = False  # answer as a server would: with a status
    return client


def _post_notification(client, number: int, apps: list[tuple[str, str]]):
    body = {
        "build_number": number,
        "build_status": "success",
        "repo": "org/repo",
        "apps": [{"name": n, "image_tag": t} for n, t in apps],
    }
    try:
        return client.post("/api/v1/builds/notify", body, format="json")
    finally:
        connection.close()


def test_two_notifications_naming_the_same_new_apps_in_opposite_orders_both_land(
    monkeypatch, caplog
):
    """Each registers its first new app, then its second: the other's first. Registered in
    the order they are named, that is a deadlock and one build is lost with a 500."""
    clients = [_drone_client(), _drone_client()]
    both_registered_one = threading.Barrier(2)
    original = Application.objects.bulk_create

    def register_one_row_at_a_time(objs, **kwargs):
        # What PostgreSQL does inside one INSERT of several rows, with the two notifications
        # forced to take turns after their first row.
        original(objs[:1], **kwargs)
        # Broken when the other one waits for this one's row: nothing to interleave with.
        with contextlib.suppress(threading.BrokenBarrierError):
            both_registered_one.wait(timeout=2)
        return original(objs[1:], **kwargs) if objs[1:] else []

    monkeypatch.setattr(Application.objects, "bulk_create", register_one_row_at_a_time)
    first, second = race(
        lambda: _post_notification(clients[0], 1, [("alpha", "a1"), ("beta", "b1")]),
        lambda: _post_notification(clients[1], 2, [("beta", "b2"), ("alpha", "a2")]),
    )

    assert (first.status_code, second.status_code) == (201, 201)
    assert sorted(Build.objects.values_list("number", flat=True)) == [1, 2]
    assert BuildImage.objects.count() == 4
    assert sorted(Application.objects.values_list("name", flat=True)) == ["alpha", "beta"]
    # Registered in one order, they never deadlock: no transaction even had to be retried.
    assert [r for r in caplog.records if r.msg == "workflow_retried"] == []


@pytest.mark.parametrize("named", [{}, {"web": "w2"}], ids=["no apps", "other apps"])
def test_a_success_naming_other_apps_while_a_batch_is_created_still_detects_its_tag(named):
    """The success of build 2 names none of api's image, which build 2 recorded earlier:
    detection must still wait for the batch of api being created, or miss it for good."""
    user = UserFactory()
    notify(1, {"api": "v1", "web": "w1"})
    notify(2, {"api": "v2"}, status="running")

    release = _create_batch_while(lambda: notify(2, named, status="success"), user=user)

    assert (release.latest_image_tag, release.has_new_tag) == ("v2", True)
    assert invariants.latest_tag_is_highest_successful_build() == []


# --- reconciler claims ---


def _reconciler_batch(apps: list[str]):
    from releases.services import start_pre_deploy

    user = UserFactory(permissions=["applications.deploy_batch"])
    notify(1, {app: "v1" for app in apps})
    batch = create_batch(name="Claims", apps=[AppChoice(a) for a in apps], user=user).batch
    start_pre_deploy(batch_id=batch.pk, user=user)
    return batch


def test_the_moment_an_outcome_commits_its_deployment_is_no_longer_claimed(
    cluster,
    monkeypatch,
):
    """The flaky watch test: the batch reached prod_waiting with the last outcome's commit,
    while the reconciler still held the claims of the outcomes it had applied, and ended them
    only after its whole claim. Whoever looks right after a commit sees the truth."""
    from deployments.models import Deployment
    from releases import reconciler as reconciler_module
    from releases.reconciler import Reconciler

    batch = _reconciler_batch(["api", "web"])
    reconciler = Reconciler()
    assert reconciler.tick().launched == 2
    cluster.finish_all()
    seen = []
    original = reconciler_module.apply_deployment_outcome

    def apply_then_look(**kwargs):
        result = original(**kwargs)
        # Another reader, right after the commit: the status page, a test, an operator.
        row = Deployment.objects.filter(pk=kwargs["deployment_id"])
        seen.append(row.values_list("status", "claimed_by").get())
        return result

    monkeypatch.setattr(reconciler_module, "apply_deployment_outcome", apply_then_look)

    assert reconciler.tick().finished == 2

    batch.refresh_from_db()
    assert batch.status == "prod_waiting"
    assert seen == [("succeeded", ""), ("succeeded", "")]


def test_a_reconciler_woken_after_its_claim_was_taken_over_writes_nothing_over_the_new_owner(
    cluster,
):
    """Paused past its lease mid-launch (SIGSTOP, a long GC, a frozen VM), a reconciler wakes
    while another holds the claim and is launching the same Job: it must leave the row to it."""
    from django.db.models.functions import Now
    from prometheus_client import REGISTRY

    from deployments.executors.kubernetes import KubernetesExecutor
    from deployments.models import Deployment
    from releases.reconciler import Reconciler

    class Pausing(KubernetesExecutor):
        def __init__(self):
            super().__init__()
            self.launching, self.resume = threading.Event(), threading.Event()

        def launch(self, deployment):
            self.launching.set()
            assert self.resume.wait(timeout=30)
            super().launch(deployment)

    def lost() -> float:
        return (
            REGISTRY.get_sample_value(
                "releasetrain_reconciler_claims_lost_total", {"work": "launch"}
            )
            or 0.0
        )

    _reconciler_batch(["api"])
    row = Deployment.objects.filter(status__in=["pending", "running"])
    paused, taker = Pausing(), Pausing()
    results = {}

    def tick(name, executor):
        try:
            results[name] = Reconciler(name=name, executor=executor).tick()
        finally:
            connection.close()

    first = threading.Thread(target=tick, args=("paused", paused))
    first.start()
    assert paused.launching.wait(timeout=30)
    # Its lease runs out while it is paused (it is alive: its liveness lock is held).
    row.update(claimed_until=Now())
    second = threading.Thread(target=tick, args=("taker", taker))
    second.start()
    assert taker.launching.wait(timeout=30)
    assert row.get().claimed_by == "taker"
    lost_before = lost()

    paused.resume.set()  # wakes up: its Job is created, then it comes to record the launch
    first.join(timeout=30)

    assert (row.get().status, row.get().claimed_by) == ("pending", "taker")
    assert results["paused"].launched == 0
    assert lost() == lost_before + 1
    taker.resume.set()
    second.join(timeout=30)
    assert results["taker"].launched == 1
    assert (row.get().status, row.get().claimed_by) == ("running", "")
    assert cluster.count("create", 201) == 1
