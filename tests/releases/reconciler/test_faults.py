"""Kubernetes faults and reconciler crashes, many at once, through the real client over HTTP.

Three reconcilers tick side by side against the fake API server while it fails at random
(5xx on create, read and delete; answers lost after the work was done; Jobs that vanish), a
"crashed" reconciler leaves claims behind, and one batch is cancelled in flight. In the end
the surviving batch has gone through pre and prod, every Job was created for a deployment
that wanted it, the cancelled batch's Jobs are gone, and nothing waits for cleanup.
`make soak` raises the counts (FAULT_APPS, FAULT_RATE).
"""

import json
import os
import random
import threading
import urllib.request

import pytest
from django.db import connection
from django.utils import timezone
from prometheus_client import REGISTRY

from deployments.models import Deployment
from releases.models import Batch
from releases.reconciler import Reconciler, launchable_deployments
from releases.services import (
    cancel_batch,
    create_batch,
    start_pre_deploy,
    start_prod_deploy,
    switch_version,
)
from releases.services.batches import AppChoice
from tests.concurrency import invariants
from tests.factories import UserFactory
from tests.helpers import notify
from tests.releases.reconciler.conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

APPS = [f"app{i}" for i in range(int(os.environ.get("FAULT_APPS", "8")))]
FAULT_RATE = float(os.environ.get("FAULT_RATE", "0.7"))
MAX_TICKS = 400


def inject_some(server, rng: random.Random) -> None:
    # One burst at a time: faults queued faster than requests consume them would starve the
    # reconcilers for good, which no real outage does.
    if rng.random() > FAULT_RATE or any(f.times > 0 for f in server.faults):
        return
    # The operations a tick makes: it reads Jobs by listing them (a single Job is read only
    # to confirm one vanished, or to check the owner of a Job that already existed).
    op = rng.choice(["create", "delete", "list"])
    kind = rng.random()
    if kind < 0.6:
        server.inject(op, times=rng.randint(1, 4), status=rng.choice([500, 503, 429]))
    elif kind < 0.8 and op in ("create", "delete"):
        # The server does the work but the answer never arrives (client timeout).
        server.inject(op, times=1, delay=0.7, apply=True)
    elif server.jobs:
        namespace, name = rng.choice(sorted(server.jobs))
        server.vanish(namespace, name)


def finish_jobs_of(server, batch) -> None:
    """What the Job controller does for the batch's running Jobs: they succeed."""
    names = set(
        Deployment.objects.filter(release_app__batch=batch).values_list("job_namespace", "job_name")
    )
    for key, job in list(server.jobs.items()):
        if key in names and not job["status"].get("conditions"):
            server.finish(*key, succeeded=True)


def crash_a_reconciler() -> None:
    """A reconciler claims a row and dies before doing anything: its lease must run out."""
    crashed = Reconciler(name="crashed")
    crashed._claim(launchable_deployments(), limit=1, assign_job=True)
    connection.close()


def side_by_side(fleet, ticks: int) -> list[BaseException]:
    errors: list[BaseException] = []

    def run(reconciler):
        try:
            for _ in range(ticks):
                reconciler.tick()
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(r,)) for r in fleet]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a reconciler hung"
    return errors


def test_faults_and_crashes_never_lose_or_duplicate_a_job(cluster, settings):
    settings.DEPLOY_RECONCILER_LEASE_SECONDS = 1
    settings.DEPLOY_RETRY_BASE_SECONDS = 0.05
    settings.DEPLOY_RETRY_MAX_SECONDS = 0.5
    rng = random.Random(7)
    user = UserFactory(permissions=["applications.switch_version", "applications.deploy_batch"])
    notify(1, {app: "v1" for app in APPS})
    keep = create_batch(name="keep", apps=[AppChoice(a) for a in APPS], user=user).batch
    doomed = create_batch(name="doomed", apps=[AppChoice(a) for a in APPS], user=user).batch
    start_pre_deploy(batch_id=keep.pk, user=user)
    start_pre_deploy(batch_id=doomed.pk, user=user)
    fleet = [Reconciler(name=f"r{i}") for i in range(3)]

    for tick in range(MAX_TICKS):
        inject_some(cluster, rng)
        if rng.random() < 0.1:
            crash_a_reconciler()
        assert side_by_side(fleet, 1) == []
        # The doomed batch's Jobs never end by themselves: it is cancelled while they run.
        finish_jobs_of(cluster, keep)
        if tick == 3:
            cancel_batch(batch_id=doomed.pk, user=user)
        keep.refresh_from_db()
        # A Job that vanished fails its deployment; the release engineer starts the stage again.
        if keep.status == "pre_waiting":
            start_pre_deploy(batch_id=keep.pk, user=user)
        if keep.status == "prod_waiting":
            start_prod_deploy(batch_id=keep.pk, user=user)
        if (
            keep.status == "completed"
            and not Deployment.objects.filter(cleanup_pending=True).exists()
        ):
            break
        if tick % 20 == 19:
            # Let crashed claims expire now and then instead of waiting for the clock.
            Deployment.objects.filter(claimed_by="crashed").update(claimed_until=timezone.now())
    cluster.clear_faults()

    assert Batch.objects.get(pk=keep.pk).status == "completed", (
        tick,
        [
            (
                d.pk,
                d.environment,
                d.status,
                d.job_name,
                d.claimed_by,
                d.claimed_until,
                (d.job_namespace, d.job_name) in cluster.jobs,
                d.superseded_at,
            )
            for d in Deployment.objects.filter(release_app__batch=keep).order_by("pk")
        ],
        list(Batch.objects.values_list("status", flat=True)),
    )
    assert Batch.objects.get(pk=doomed.pk).status == "cancelled"
    kept = Deployment.objects.filter(release_app__batch=keep).current()
    assert set(kept.values_list("environment", "status")) == {
        ("pre", "succeeded"),
        ("prod", "succeeded"),
    }
    # Every Job the cluster ever created belongs to a deployment that asked for it by name ...
    wanted = set(Deployment.objects.exclude(job_name="").values_list("job_namespace", "job_name"))
    assert set(cluster.created()) <= wanted
    # ... each at most once (a repeated create got 409 and counted as launched) ...
    assert len(cluster.created()) == len(set(cluster.created()))
    # ... the cancelled batch's Jobs are all deleted, and no deletion is left pending.
    doomed = Deployment.objects.filter(release_app__batch=doomed)
    # Failed: its Job vanished before the cancel came.
    assert set(doomed.values_list("status", flat=True)) <= {"cancelled", "failed"}
    cancelled_jobs = set(
        doomed.filter(status="cancelled")
        .exclude(job_name="")
        .values_list("job_namespace", "job_name")
    )
    assert cancelled_jobs, "the doomed batch had no Job running when it was cancelled"
    assert not cancelled_jobs & set(cluster.jobs)
    assert not Deployment.objects.filter(cleanup_pending=True).exists()
    assert invariants.violations() == []
    assert sum(r.status in (429, 500, 503) for r in cluster.requests) > 3, "too few faults"


# --- one fault at a time, against reconcilers running their real loop ---

WATCHED = [f"w{i}" for i in range(4)]


@pytest.fixture
def watched_batch(cluster, settings):
    settings.DEPLOY_RETRY_BASE_SECONDS = 0.05
    settings.DEPLOY_RETRY_MAX_SECONDS = 0.5
    user = UserFactory(permissions=["applications.deploy_batch"])
    notify(1, {app: "v1" for app in WATCHED})
    batch = create_batch(name="watched", apps=[AppChoice(a) for a in WATCHED], user=user).batch
    return batch, user


def statuses(batch) -> set[str]:
    return set(Deployment.objects.filter(release_app__batch=batch).values_list("status", flat=True))


def assert_settled(server) -> None:
    """Every deployment final, running with its Job, or pending for a stage that has not
    started; no Job left for a cancelled or superseded deployment; no deletion pending; the
    model's invariants hold."""
    assert not launchable_deployments().exists()
    for d in Deployment.objects.all():
        job = (d.job_namespace, d.job_name)
        assert d.status != "pending" or not d.job_name, d
        if d.status == "running":
            assert job in server.jobs, d
        if d.job_name and (d.status == "cancelled" or d.superseded_at):
            assert job not in server.jobs, d
    assert not Deployment.objects.filter(cleanup_pending=True).exists()
    # A reconciler ends its claims right after the outcomes it applied.
    wait_for(lambda: not Deployment.objects.exclude(claimed_by="").exists())
    assert invariants.violations() == []


def run_to_prod_waiting(server, batch, user) -> None:
    start_pre_deploy(batch_id=batch.pk, user=user)
    wait_for(lambda: statuses(batch) == {"running"})
    server.finish_all()
    wait_for(lambda: Batch.objects.get(pk=batch.pk).status == "prod_waiting")
    assert_settled(server)


def restarts(reason: str) -> float:
    return (
        REGISTRY.get_sample_value("releasetrain_job_watch_restarts_total", {"reason": reason}) or 0
    )


def test_a_cut_watch_stream_is_listed_again(cluster, reconcilers, watched_batch):
    batch, user = watched_batch
    reconcilers(2)
    start_pre_deploy(batch_id=batch.pk, user=user)
    wait_for(lambda: statuses(batch) == {"running"})
    lists, errors = cluster.count("list"), restarts("error")

    assert cluster.cut_watches() >= 2
    cluster.finish_all()  # while nobody watches

    wait_for(lambda: Batch.objects.get(pk=batch.pk).status == "prod_waiting")
    assert restarts("error") >= errors + 2
    assert cluster.count("list") >= lists + 2  # what happened meanwhile came from a new list
    assert_settled(cluster)


def test_410_gone_on_watch_lists_again(cluster, reconcilers, watched_batch, settings):
    batch, user = watched_batch
    settings.DEPLOY_KUBERNETES_WATCH_SECONDS = 1  # watches end and resume from their version
    reconcilers(1)
    start_pre_deploy(batch_id=batch.pk, user=user)
    wait_for(lambda: statuses(batch) == {"running"})
    expired = restarts("expired")

    # Someone else's Job moves the cluster's resourceVersion on where we do not watch, and the
    # history is compacted: renewing a watch from our last version is answered 410 Gone.
    theirs = urllib.request.Request(
        f"{cluster.url}/apis/batch/v1/namespaces/elsewhere/jobs",
        data=json.dumps({"metadata": {"name": "theirs"}}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    urllib.request.urlopen(theirs, timeout=10).close()
    cluster.expire_history()
    wait_for(lambda: restarts("expired") > expired, what="a 410 and a relist")
    cluster.finish_all()

    wait_for(lambda: Batch.objects.get(pk=batch.pk).status == "prod_waiting")
    assert cluster.count("watch", 200) >= 2
    assert_settled(cluster)


@pytest.mark.parametrize(
    "faults",
    [
        [("watch", {"status": 500, "times": 3})],
        [("watch", {"status": 429, "retry_after": 1, "times": 2})],
        [("list", {"status": 503, "times": 3}), ("watch", {"status": 500, "times": 1})],
        [("list", {"delay": 1.5, "times": 1})],  # past DEPLOY_KUBERNETES_TIMEOUT
    ],
    ids=["watch-500", "watch-429", "list-503", "list-timeout"],
)
def test_failing_lists_and_watches_are_retried_with_backoff(
    cluster,
    reconcilers,
    watched_batch,
    faults,
):
    batch, user = watched_batch
    reconcilers(1)
    for op, fault in faults:
        cluster.inject(op, **fault)
    before = cluster.snapshot()

    cluster.cut_watches()
    run_to_prod_waiting(cluster, batch, user)

    wait_for(lambda: all(f.times == 0 for f in cluster.faults), what="the informers")
    # Each failure cost one request and a pause, not a burst of retries.
    injected = sum(fault["times"] for _, fault in faults)
    after = cluster.snapshot()
    assert after["list"] + after["watch"] - before["list"] - before["watch"] <= 2 * injected + 6


@pytest.mark.parametrize(
    "fault",
    [{"status": 429, "retry_after": 1}, {"status": 500}, {"delay": 1.5, "apply": True}],
    ids=["429", "500", "timeout-after-create"],
)
def test_failing_creates_and_deletes_are_retried(
    cluster,
    reconcilers,
    watched_batch,
    fault,
):
    batch, user = watched_batch
    reconcilers(2)
    cluster.inject("create", times=2, **fault)
    run_to_prod_waiting(cluster, batch, user)
    assert len(cluster.created()) == len(set(cluster.created())) == len(WATCHED)

    # A switch's own deletion fails; the reconcilers finish it.
    notify(2, {"w0": "v2"})
    cluster.inject("delete", times=2, **fault)
    release = batch.releases.get(application__name="w0")
    old = Deployment.objects.get(release_app=release, superseded_at=None)
    switch_version(
        release_id=release.pk, user=UserFactory(permissions=["applications.switch_version"])
    )
    wait_for(lambda: not Deployment.objects.filter(cleanup_pending=True).exists())
    assert (old.job_namespace, old.job_name) not in cluster.jobs
    assert_settled(cluster)


def test_a_deployment_cancelled_while_its_launch_is_in_flight_leaves_no_job(
    cluster,
    reconcilers,
    watched_batch,
):
    batch, user = watched_batch
    reconcilers(2)
    cluster.create_delay = 0.3  # within DEPLOY_KUBERNETES_TIMEOUT: the launches succeed, late

    start_pre_deploy(batch_id=batch.pk, user=user)
    in_flight = Deployment.objects.filter(status="pending").exclude(job_name="")
    wait_for(in_flight.exists, what="a launch in flight")
    cancel_batch(batch_id=batch.pk, user=user)

    wait_for(lambda: cluster.count("create") == len(WATCHED) and cluster.jobs == {})
    wait_for(lambda: not Deployment.objects.filter(cleanup_pending=True).exists())
    assert statuses(batch) == {"cancelled"}
    assert_settled(cluster)


def test_the_reconciler_survives_losing_its_database_connections(
    cluster,
    reconcilers,
    watched_batch,
):
    batch, user = watched_batch
    reconcilers(1)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        assert cursor.fetchone()[0] >= 2  # its own and the one that LISTENs

    run_to_prod_waiting(cluster, batch, user)
