"""Kubernetes faults and reconciler crashes, many at once, through the real client over HTTP.

Three reconcilers tick side by side against the fake API server while it fails at random
(5xx on create, read and delete; answers lost after the work was done; Jobs that vanish), a
"crashed" reconciler leaves claims behind, and one batch is cancelled in flight. In the end
the surviving batch has gone through pre and prod, every Job was created for a deployment
that wanted it, the cancelled batch's Jobs are gone, and nothing waits for cleanup.
`make soak` raises the counts (FAULT_APPS, FAULT_RATE).
"""

import os
import random
import threading

import pytest
from django.db import connection
from django.utils import timezone

from deployments.models import Deployment
from deployments.reconciler import Reconciler, launchable_deployments
from releases.models import Batch
from releases.services import cancel_batch, create_batch, start_pre_deploy, start_prod_deploy
from releases.services.batches import AppChoice
from tests.deployments.conftest import cluster  # noqa: F401 (the fake Kubernetes fixture)
from tests.factories import UserFactory
from tests.hardening import invariants
from tests.helpers import notify

pytestmark = pytest.mark.django_db(transaction=True)

APPS = [f"app{i}" for i in range(int(os.environ.get("FAULT_APPS", "8")))]
FAULT_RATE = float(os.environ.get("FAULT_RATE", "0.7"))
MAX_TICKS = 400


def inject_some(server, rng: random.Random) -> None:
    # One burst at a time: faults queued faster than requests consume them would starve the
    # reconcilers for good, which no real outage does.
    if rng.random() > FAULT_RATE or any(f.times > 0 for f in server.faults):
        return
    op = rng.choice(["create", "read", "delete", "list"])
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


def side_by_side(reconcilers, ticks: int) -> list[BaseException]:
    errors: list[BaseException] = []

    def run(reconciler):
        try:
            for _ in range(ticks):
                reconciler.tick()
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(r,)) for r in reconcilers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a reconciler hung"
    return errors


def test_faults_and_crashes_never_lose_or_duplicate_a_job(cluster, settings):  # noqa: F811
    settings.DEPLOY_RECONCILER_LEASE_SECONDS = 1
    rng = random.Random(7)
    user = UserFactory(permissions=["releases.switch_version", "releases.deploy_batch"])
    notify(1, {app: "v1" for app in APPS})
    keep = create_batch(name="keep", apps=[AppChoice(a) for a in APPS], user=user).batch
    doomed = create_batch(name="doomed", apps=[AppChoice(a) for a in APPS], user=user).batch
    start_pre_deploy(batch_id=keep.pk, user=user)
    start_pre_deploy(batch_id=doomed.pk, user=user)
    reconcilers = [Reconciler(name=f"r{i}") for i in range(3)]

    for tick in range(MAX_TICKS):
        inject_some(cluster, rng)
        if rng.random() < 0.1:
            crash_a_reconciler()
        assert side_by_side(reconcilers, 1) == []
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
