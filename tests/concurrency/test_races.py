"""Randomised races through the API with real concurrency, threads and PostgreSQL row locks.

Eight threads, each with its own connection, fire switches, stage starts, cancels, batch
creations, status reads and build notifications at a few batches through the REST API, while
reconciler ticks (the real `Reconciler`, with Jobs that end at random) move deployments on.
A watcher thread checks in a loop, one statement (one snapshot) at a time, that no release
is pending in a deploying batch. Afterwards: no 5xx, no exception, no deadlock, every changed
switch answered from a waiting batch, and all invariants hold. `make soak` raises the counts
(RACE_OPERATIONS, RACE_THREADS).
"""

import itertools
import os
import random
import threading
import time
from collections import Counter

import pytest
from django.db import connection
from rest_framework.test import APIClient

from deployments.executors import Executor, JobState, JobStatus
from releases.choices import OPEN_BATCH_STATUSES, BatchStatus, ReleaseStatus
from releases.models import Batch, ReleaseApp
from releases.reconciler import Reconciler
from releases.selectors import application_tag_choices
from tests.concurrency import invariants
from tests.factories import UserFactory
from tests.helpers import ALL_PERMISSIONS, notify, token_client

pytestmark = pytest.mark.django_db(transaction=True)

# Switches, stage starts and cancels; creations, notifications, status reads and reconciler
# ticks run between them and are not counted.
OPERATIONS = int(os.environ.get("RACE_OPERATIONS", "1000"))
THREADS = int(os.environ.get("RACE_THREADS", "8"))
APPS = ["api", "web", "worker", "cron"]
OPEN_BATCHES = 3
# Codes a refused request may carry here; anything else is a finding.
EXPECTED_REFUSALS = {
    "stale_version",
    "unknown_tag",
    "batch_closed",
    "batch_not_waiting",
    "deployment_in_progress",
    "invalid_transition",
    "batch_name_taken",
}


class CoinFlipExecutor(Executor):
    """Jobs that start at once and end, on a later poll, in success (mostly) or failure."""

    def job_target(self, deployment):
        return f"rt-race-{deployment.pk}", "rt-race"

    def launch(self, deployment) -> None:
        pass

    def poll(self, deployment) -> JobStatus:
        roll = random.random()
        if roll < 0.5:
            return JobStatus(JobState.RUNNING)
        return JobStatus(JobState.SUCCEEDED if roll < 0.9 else JobState.FAILED, "coin flip")

    def cancel(self, deployment) -> None:
        pass


class Race:
    def __init__(self, client: APIClient, rng: random.Random, log: "Log", number_source):
        self.client, self.rng, self.log, self.numbers = client, rng, log, number_source

    def post(self, kind: str, url: str, body: dict | None = None):
        response = self.client.post(url, body or {}, format="json")
        self.log.record(kind, response)
        return response

    def step(self) -> bool:
        """One random operation; True if it was one of the raced ones (switch, stage start,
        cancel), which the test counts towards its quota."""
        open_ids = list(
            Batch.objects.filter(status__in=OPEN_BATCH_STATUSES).values_list("pk", flat=True)
        )
        roll = self.rng.random()
        if len(open_ids) < OPEN_BATCHES and roll < 0.5:
            self.create()
        elif roll < 0.40:
            return self.switch()
        elif roll < 0.60 and open_ids:
            stage = self.rng.choice(["start-pre-deploy", "start-prod-deploy"])
            self.post(f"batch {stage}", f"/api/v1/batches/{self.rng.choice(open_ids)}/{stage}")
            return True
        elif roll < 0.63 and open_ids:
            self.post("batch cancel", f"/api/v1/batches/{self.rng.choice(open_ids)}/cancel")
            return True
        elif roll < 0.75:
            number = self.numbers()
            apps = self.rng.sample(APPS, self.rng.randint(1, 3))
            self.post(
                "notify",
                "/api/v1/builds/notify",
                {
                    "build_number": number,
                    "build_status": "success",
                    "apps": [{"name": a, "image_tag": f"{a}-{number}"} for a in apps],
                },
            )
        elif roll < 0.85 and (release_ids := list(ReleaseApp.objects.values_list("pk", flat=True))):
            release_id = self.rng.choice(release_ids)
            self.log.record("status", self.client.get(f"/api/v1/releases/{release_id}/status"))
        else:
            Reconciler(executor=CoinFlipExecutor(), name=f"race-{threading.get_ident()}").tick()
            self.log.count("reconcile tick")
        return False

    def create(self) -> None:
        apps = self.rng.sample(APPS, self.rng.randint(1, len(APPS)))
        name = f"race {self.rng.randrange(10**9)}"
        self.post(
            "batch create", "/api/v1/batches/", {"name": name, "apps": [{"name": a} for a in apps]}
        )

    def switch(self) -> bool:
        releases = list(
            ReleaseApp.objects.filter(batch__status__in=OPEN_BATCH_STATUSES).values_list(
                "pk", "application_id"
            )
        )
        if not releases:
            return False
        release_id, application_id = self.rng.choice(releases)
        body = {}
        if self.rng.random() < 0.5:
            # One of the app's newest tags, the latest or an older one.
            tags = application_tag_choices(application_id=application_id)[:5]
            body["image_tag"] = self.rng.choice(tags).image_tag
        response = self.post("switch", f"/api/v1/releases/{release_id}/switch-version", body)
        if response.status_code == 200 and response.json()["changed"]:
            self.log.switched(response.json()["batch_status"])
        return True


class Log:
    def __init__(self):
        self.lock = threading.Lock()
        self.outcomes: Counter = Counter()
        self.failures: list[str] = []
        self.switched_into: Counter = Counter()

    def record(self, kind: str, response) -> None:
        body = response.json() if response.get("Content-Type") == "application/json" else {}
        code = body.get("code", "ok") if response.status_code >= 400 else "ok"
        with self.lock:
            self.outcomes[(kind, response.status_code, code)] += 1
            if response.status_code >= 500 or (
                response.status_code >= 400 and code not in EXPECTED_REFUSALS
            ):
                self.failures.append(f"{kind}: {response.status_code} {body}")

    def count(self, kind: str) -> None:
        with self.lock:
            self.outcomes[(kind, None, "ok")] += 1

    def switched(self, batch_status: str) -> None:
        with self.lock:
            self.switched_into[batch_status] += 1

    def error(self, exc: BaseException) -> None:
        with self.lock:
            self.failures.append(f"exception: {exc!r}")


def watch(stop: threading.Event, seen: list[str]) -> None:
    """Catch even a transient violation: each check is one statement, so one snapshot."""
    try:
        while not stop.is_set():
            seen.extend(invariants.no_pending_release_in_deploying_batch())
            seen.extend(invariants.one_current_deployment_per_environment())
            time.sleep(0.005)
    finally:
        connection.close()


def test_randomised_races_through_the_api(settings):
    settings.DEPLOY_RECONCILER_LEASE_SECONDS = 30
    user = UserFactory(username="racer", permissions=ALL_PERMISSIONS)
    notify(1, {app: f"{app}-1" for app in APPS})
    notify(2, {app: f"{app}-2" for app in APPS})
    log = Log()
    numbers = itertools.count(3)
    numbers_lock = threading.Lock()

    def next_number() -> int:
        with numbers_lock:
            return next(numbers)

    barrier = threading.Barrier(THREADS)

    def worker(index: int) -> None:
        rng = random.Random(index)
        race = Race(token_client(user), rng, log, next_number)
        try:
            barrier.wait(timeout=60)
            raced = 0
            while raced < -(-OPERATIONS // THREADS):  # ceil: the threads together reach it
                raced += race.step()
        except Exception as exc:  # collected and asserted below
            log.error(exc)
        finally:
            connection.close()

    stop, violations = threading.Event(), []
    watcher = threading.Thread(target=watch, args=(stop, violations))
    watcher.start()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    stop.set()
    watcher.join(timeout=60)

    assert not any(t.is_alive() for t in threads), "a thread hung: deadlock?"
    assert log.failures == []
    assert violations == []
    assert set(log.switched_into) <= {"pre_waiting"}, log.switched_into
    assert invariants.violations() == []
    # The run exercised what it claims to: real switches and stage changes happened.
    kinds = Counter()
    for (kind, status_code, _code), n in log.outcomes.items():
        kinds[(kind, status_code)] += n
    assert sum(log.switched_into.values()) > 0
    assert kinds[("batch start-pre-deploy", 200)] > 0
    raced = sum(
        n
        for (kind, _, _), n in log.outcomes.items()
        if kind == "switch" or kind.startswith(("batch start", "batch cancel"))
    )
    assert raced >= OPERATIONS
    assert not ReleaseApp.objects.filter(
        batch__status__in=[BatchStatus.PRE_DEPLOYING, BatchStatus.PROD_DEPLOYING],
        status=ReleaseStatus.PENDING,
    ).exists()
