"""Real reconciler processes (`manage.py run_reconciler`) killed, paused and cut off from the
database while they work, against the fake Kubernetes API over loopback.

A dead reconciler's claims are taken over as soon as its liveness lock is gone, long before
its lease: the leases here are far longer than the bounded waits. Each test checks what an
operator would: the work finished, one Job per deployment, each outcome applied once (one
`deployment_finished` line in all the processes' logs).
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connection, transaction

from deployments.models import Deployment
from releases.models import Batch
from releases.services import cancel_batch, create_batch, start_pre_deploy
from releases.services.batches import AppChoice
from tests.concurrency import invariants
from tests.factories import UserFactory
from tests.helpers import notify
from tests.releases.reconciler.conftest import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(240)]

APPS = [f"f{i}" for i in range(6)]
# What SPEC §15 promises: a dead reconciler's work goes on within this.
TAKEOVER_SECONDS = 15.0
# Far beyond the waits: only the liveness lock can free a dead reconciler's claims in time.
LONG_LEASE = "120"


class Reconcilers:
    """`manage.py run_reconciler` processes on the test database, each logging JSON to a file."""

    def __init__(self, kubeconfig: str, logs: Path):
        db = connection.settings_dict
        self.env = {
            **{
                k: v
                for k, v in os.environ.items()
                if not k.startswith(("DEPLOY_", "DJANGO_", "PROMETHEUS_", "LOG_", "KUBE"))
            },
            "DJANGO_SETTINGS_MODULE": "config.settings.production",
            "DJANGO_SECRET_KEY": "failover-tests-not-a-secret",
            "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
            "DEPLOY_EXECUTOR": "kubernetes",
            "DEPLOY_KUBECONFIG": kubeconfig,
            "DEPLOY_JOB_IMAGE": "registry.example.com/{app}:{image_tag}",
            "DEPLOY_KUBERNETES_TIMEOUT": "5",
            "DEPLOY_RECONCILER_LAUNCH_WORKERS": "2",
            "DEPLOY_RECONCILER_BATCH": "2",
            "DEPLOY_RECONCILER_LEASE_SECONDS": LONG_LEASE,
            "DEPLOY_RETRY_BASE_SECONDS": "0.1",
            "DEPLOY_RETRY_MAX_SECONDS": "0.5",
            "LOG_FORMAT": "json",
        }
        self.logs = logs
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, count: int, **env: str) -> list[str]:
        """Start `count` more; returns their names once each has started."""
        started = []
        for _ in range(count):
            log = self.logs / f"reconciler-{len(self.procs)}.log"
            proc = subprocess.Popen(
                [sys.executable, "manage.py", "run_reconciler", "--interval", "0.5"],
                cwd=django_settings.BASE_DIR,
                env={**self.env, **env},
                stdout=log.open("w"),
                stderr=subprocess.STDOUT,
            )
            self.procs[str(log)] = proc
            started.append(str(log))
        names = []
        for log in started:
            wait_for(lambda log=log: self._name(log), seconds=60, what="a reconciler start")
            name = self._name(log)
            self.procs[name] = self.procs.pop(log)
            names.append(name)
        return names

    def _name(self, log: str) -> str | None:
        for event in _events(Path(log)):
            if event["event"] == "reconciler_started":
                return event["reconciler"]
        return None

    def signal(self, name: str, signum: int) -> float:
        """Send `signum` to reconciler `name`; returns when (time.monotonic())."""
        self.procs[name].send_signal(signum)
        if signum == signal.SIGKILL:
            self.procs[name].wait(timeout=10)
        return time.monotonic()

    def events(self, event: str) -> list[dict]:
        return [e for log in self.logs.glob("*.log") for e in _events(log) if e["event"] == event]

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _events(log: Path) -> list[dict]:
    events = []
    for line in log.read_text().splitlines():
        if line.startswith("{"):
            events.append(json.loads(line))
    return events


@pytest.fixture
def fleet(cluster, settings, tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    reconcilers = Reconcilers(settings.DEPLOY_KUBECONFIG, logs)
    yield reconcilers
    reconcilers.stop()


@pytest.fixture
def user():
    return UserFactory(permissions=["applications.deploy_batch"])


@pytest.fixture
def batch(user):
    notify(1, {app: "v1" for app in APPS})
    return create_batch(name="failover", apps=[AppChoice(a) for a in APPS], user=user).batch


def deployments(**filters):
    return Deployment.objects.filter(**filters).order_by("pk")


def owner_of_some(rows) -> str:
    """A reconciler that holds a claim on one of `rows`, once one does."""
    claimed = rows.exclude(claimed_by="")
    wait_for(claimed.exists, what="a claim")
    return claimed.values_list("claimed_by", flat=True).first()


def _in_thread(call, **kwargs) -> None:
    try:
        call(**kwargs)
    finally:
        connection.close()


def batch_status(batch) -> str:
    return Batch.objects.get(pk=batch.pk).status


def assert_each_job_once_and_each_outcome_once(server, fleet, batch) -> None:
    ours = deployments(release_app__batch=batch)
    assert Counter(server.created()) == Counter({(d.job_namespace, d.job_name) for d in ours})
    finished = Counter(e["deployment_id"] for e in fleet.events("deployment_finished"))
    assert finished == Counter({d.pk: 1 for d in ours if d.status in ("succeeded", "failed")})
    wait_for(lambda: not Deployment.objects.exclude(claimed_by="").exists(), what="the claims")
    assert invariants.violations() == []


def test_a_reconciler_killed_mid_launch_has_its_launches_restarted_at_once(
    cluster,
    fleet,
    batch,
    user,
):
    fleet.start(2)
    cluster.create_delay = 1.0  # launches stay in flight

    start_pre_deploy(batch_id=batch.pk, user=user)
    in_flight = deployments(status="pending").exclude(job_name="")
    victim = owner_of_some(in_flight)
    claimed = list(deployments(claimed_by=victim).values_list("pk", flat=True))
    fleet.signal(victim, signal.SIGKILL)

    # Its claimed launches restart and end (running), however long its lease.
    wait_for(
        lambda: deployments(pk__in=claimed, status="running").count() == len(claimed),
        seconds=TAKEOVER_SECONDS,
        what="the survivor taking the dead one's launches",
    )
    wait_for(lambda: deployments(status="running").count() == len(APPS))
    cluster.finish_all()
    wait_for(lambda: batch_status(batch) == "prod_waiting")
    assert_each_job_once_and_each_outcome_once(cluster, fleet, batch)
    assert fleet.events("reconciler_claims_taken_over")[0]["owners"] == [victim]


def test_a_reconciler_killed_mid_outcome_has_its_outcomes_applied_at_once(
    cluster,
    fleet,
    batch,
    user,
):
    fleet.start(2)
    start_pre_deploy(batch_id=batch.pk, user=user)
    wait_for(lambda: deployments(status="running").count() == len(APPS))
    # The batch is held (as a slow workflow would): the reconcilers apply outcomes up to the
    # batch's lock and wait there, each holding a claim.
    held, release = threading.Event(), threading.Event()

    def hold_the_batch():
        try:
            with transaction.atomic():
                Batch.objects.select_for_update().get(pk=batch.pk)
                held.set()
                release.wait(timeout=60)
        finally:
            connection.close()

    holder = threading.Thread(target=hold_the_batch)
    holder.start()
    try:
        assert held.wait(timeout=30)
        cluster.finish_all()
        victim = owner_of_some(deployments(status="running"))
        fleet.signal(victim, signal.SIGKILL)
    finally:
        release.set()
        holder.join(timeout=30)

    wait_for(
        lambda: batch_status(batch) == "prod_waiting",
        seconds=TAKEOVER_SECONDS,
        what="the survivor applying the dead one's outcomes",
    )
    assert_each_job_once_and_each_outcome_once(cluster, fleet, batch)


def test_a_reconciler_killed_mid_cleanup_has_its_deletions_finished_at_once(
    cluster,
    fleet,
    batch,
    user,
    settings,
):
    fleet.start(2)
    start_pre_deploy(batch_id=batch.pk, user=user)
    wait_for(lambda: deployments(status="running").count() == len(APPS))
    # The cancel leaves every deletion to the reconcilers; each takes a while.
    settings.DEPLOY_CLEANUP_BUDGET_SECONDS = 0
    cluster.inject("delete", times=2 * len(APPS), delay=1.0, apply=True)

    # The reconcilers start deleting at the cancel's commit, before the call returns.
    cancelling = threading.Thread(
        target=_in_thread, args=(cancel_batch,), kwargs={"batch_id": batch.pk, "user": user}
    )
    cancelling.start()
    victim = owner_of_some(deployments(cleanup_pending=True))
    fleet.signal(victim, signal.SIGKILL)
    cancelling.join(timeout=30)

    wait_for(
        lambda: not Deployment.objects.filter(cleanup_pending=True).exists(),
        seconds=TAKEOVER_SECONDS,
        what="the survivor finishing the dead one's deletions",
    )
    assert cluster.jobs == {}
    assert set(deployments().values_list("status", flat=True)) == {"cancelled"}
    wait_for(lambda: not Deployment.objects.exclude(claimed_by="").exists(), what="the claims")


def test_a_reconciler_paused_past_its_lease_writes_nothing_over_the_new_owner(
    cluster,
    fleet,
    batch,
    user,
):
    # A paused process keeps its database sessions, so its liveness lock: only the lease,
    # short here, frees its claims.
    fleet.start(2, DEPLOY_RECONCILER_LEASE_SECONDS="2", DEPLOY_KUBERNETES_TIMEOUT="1")
    cluster.create_delay = 0.5

    start_pre_deploy(batch_id=batch.pk, user=user)
    paused = owner_of_some(deployments(status="pending").exclude(job_name=""))
    claimed = list(deployments(claimed_by=paused).values_list("pk", flat=True))
    fleet.signal(paused, signal.SIGSTOP)
    wait_for(
        lambda: deployments(status="running").count() == len(APPS),
        seconds=TAKEOVER_SECONDS,
        what="the other one taking the paused one's launches after its lease",
    )
    before = list(deployments().values_list("pk", "status", "started_at", "claimed_by"))

    fleet.signal(paused, signal.SIGCONT)
    wait_for(
        lambda: any(
            set(e["deployment_ids"]) & set(claimed) for e in fleet.events("reconciler_claim_lost")
        ),
        what="the woken reconciler to find its claim taken",
    )

    assert list(deployments().values_list("pk", "status", "started_at", "claimed_by")) == before
    cluster.finish_all()
    wait_for(lambda: batch_status(batch) == "prod_waiting")
    assert_each_job_once_and_each_outcome_once(cluster, fleet, batch)


def test_both_reconcilers_recover_when_the_database_drops_their_connections(
    cluster,
    fleet,
    batch,
    user,
):
    fleet.start(2)
    cluster.create_delay = 0.5

    start_pre_deploy(batch_id=batch.pk, user=user)
    owner_of_some(deployments(status="pending").exclude(job_name=""))
    with connection.cursor() as cursor:  # a database restart, as the reconcilers see it
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        assert cursor.fetchone()[0] >= 4  # two each: the one that ticks, the one that LISTENs

    wait_for(lambda: deployments(status="running").count() == len(APPS))
    cluster.finish_all()
    wait_for(lambda: batch_status(batch) == "prod_waiting")
    assert_each_job_once_and_each_outcome_once(cluster, fleet, batch)
    assert all(proc.poll() is None for proc in fleet.procs.values())
