"""Rollouts driven only by reconciler ticks, with each executor, through faults and crashes."""

import time
import uuid
from collections import Counter
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models.functions import Now

from applications.models import Application
from deployments.executors.kubernetes import KubernetesExecutor
from deployments.models import Deployment
from releases.models import Batch, ReleaseApp
from releases.reconciler import Reconciler
from releases.services import (
    cancel_batch,
    create_batch,
    start_pre_deploy,
    start_prod_deploy,
    switch_version,
)
from releases.services.batches import AppChoice
from tests.helpers import notify

from .conftest import tick

pytestmark = pytest.mark.django_db


def _batch_status(batch) -> str:
    return Batch.objects.get(pk=batch.pk).status


def _release_statuses(batch) -> dict[str, str]:
    return dict(ReleaseApp.objects.filter(batch=batch).values_list("application__name", "status"))


def _deployment(app: str, environment: str = "pre") -> Deployment:
    """The current deployment of `app` in `environment`."""
    return Deployment.objects.current().get(
        release_app__application__name=app, environment=environment
    )


def _end_rests() -> None:
    """As if every failed attempt's pause had run out."""
    Deployment.objects.exclude(next_attempt_at=None).update(
        next_attempt_at=Now() - timedelta(seconds=1)
    )


def _tick_until(condition, *, rounds: int = 300) -> None:
    """Tick (bounded) until `condition()` holds; for executors whose Jobs take real time."""
    for _ in range(rounds):
        tick()
        if condition():
            return
        time.sleep(0.02)
    pytest.fail("the reconciler did not get there")


# --- Kubernetes ---


def test_full_rollout_on_kubernetes(cluster, batch, user):
    start_pre_deploy(batch_id=batch.pk, user=user)

    assert tick() == "launched=2 finished=0 cleaned=0 errors=0"
    assert set(Deployment.objects.values_list("status", flat=True)) == {"running"}
    assert tick() == "launched=0 finished=0 cleaned=0 errors=0"  # still running

    cluster.finish_all()
    assert tick() == "launched=0 finished=2 cleaned=0 errors=0"
    assert _batch_status(batch) == "prod_waiting"
    assert _release_statuses(batch) == {"api": "pre_deployed", "web": "pre_deployed"}

    start_prod_deploy(batch_id=batch.pk, user=user)
    assert tick() == "launched=2 finished=0 cleaned=0 errors=0"
    cluster.finish_all()
    tick()

    assert _batch_status(batch) == "completed"
    assert _release_statuses(batch) == {"api": "prod_deployed", "web": "prod_deployed"}
    assert sorted(ns for ns, _ in cluster.created()) == [
        "release-train-pre",
        "release-train-pre",
        "release-train-prod",
        "release-train-prod",
    ]
    assert Counter(cluster.created()).most_common(1)[0][1] == 1
    assert not Deployment.objects.exclude(claimed_by="").exists()


@pytest.mark.parametrize("stage", ["pre", "prod"])
def test_a_failing_job_fails_the_release_and_a_switch_then_works(
    cluster, batch, user, stage, django_capture_on_commit_callbacks
):
    start_pre_deploy(batch_id=batch.pk, user=user)
    tick()
    if stage == "prod":
        cluster.finish_all()
        tick()
        start_prod_deploy(batch_id=batch.pk, user=user)
        tick()
    failing = _deployment("api", stage)
    cluster.finish(failing.job_namespace, failing.job_name, succeeded=False, message="exit 2")
    cluster.finish_all()

    tick()

    failing.refresh_from_db()
    assert failing.status == "failed"
    assert "BackoffLimitExceeded" in failing.error and "exit 2" in failing.error
    assert _release_statuses(batch) == {"api": f"{stage}_failed", "web": f"{stage}_deployed"}
    assert _batch_status(batch) == f"{stage}_waiting"

    notify(2, {"api": "v2"})
    with django_capture_on_commit_callbacks(execute=True):
        result = switch_version(release_id=failing.release_app_id, user=user)

    assert result.changed
    assert _batch_status(batch) == "pre_waiting"
    # The superseded deployments' Jobs are deleted after commit.
    assert (failing.job_namespace, failing.job_name) not in cluster.jobs
    assert not Deployment.objects.filter(cleanup_pending=True).exists()
    start_pre_deploy(batch_id=batch.pk, user=user)
    assert tick() == "launched=1 finished=0 cleaned=0 errors=0"
    assert _deployment("api").image_tag == "v2"


def test_a_vanished_job_fails_its_deployment_with_a_clear_error(cluster, batch, user):
    start_pre_deploy(batch_id=batch.pk, user=user)
    tick()
    api = _deployment("api")
    cluster.vanish(api.job_namespace, api.job_name)

    tick()

    api.refresh_from_db()
    assert api.status == "failed"
    assert api.error == (
        f"Job {api.job_namespace}/{api.job_name} disappeared before it finished "
        "(deleted by hand, or removed by the cluster)."
    )
    assert _release_statuses(batch)["api"] == "pre_failed"


def test_a_launch_that_can_never_work_fails_the_deployment(cluster, batch, user):
    batch.releases.get(application__name="api").application.__class__.objects.filter(
        name="api"
    ).update(deploy_config={"pre": {"namespace": "Not A Namespace"}})
    start_pre_deploy(batch_id=batch.pk, user=user)

    assert tick() == "launched=1 finished=1 cleaned=0 errors=0"

    api = _deployment("api")
    assert api.status == "failed"
    assert "not a valid Kubernetes namespace" in api.error
    assert cluster.count("create") == 1  # only web's


@pytest.mark.parametrize(
    ("config", "cause"),
    [
        ({"namespace": "kube-system"}, "Namespace 'kube-system' is not allowed"),
        ({"image": "evil.example.com/{app}:{image_tag}"}, "'evil.example.com/api:v1' is not"),
    ],
    ids=["namespace", "image"],
)
def test_a_config_the_allow_lists_refuse_fails_at_launch_and_makes_no_job(
    cluster, batch, user, settings, config, cause
):
    # Saved around the form (or under other settings): the launch checks it again.
    settings.DEPLOY_ALLOWED_NAMESPACES = ["team-*"]
    settings.DEPLOY_ALLOWED_IMAGES = ["registry.example.com/*"]
    Application.objects.filter(name="api").update(deploy_config={"pre": config})
    start_pre_deploy(batch_id=batch.pk, user=user)

    assert tick() == "launched=1 finished=1 cleaned=0 errors=0"

    api = _deployment("api")
    assert (api.status, api.job_name) == ("failed", "")
    assert cause in api.error
    assert cluster.count("create") == 1  # only web's
    assert _release_statuses(batch)["api"] == "pre_failed"


# --- fairness: ready work never waits behind work that is not ready ---


def _five_apps_running(user) -> list[Deployment]:
    apps = [f"app{i}" for i in range(5)]
    notify(1, {app: "v1" for app in apps})
    batch = create_batch(name="Big", apps=[AppChoice(a) for a in apps], user=user).batch
    start_pre_deploy(batch_id=batch.pk, user=user)
    for _ in range(5):
        tick()
    deployments = list(Deployment.objects.order_by("pk"))
    assert {d.status for d in deployments} == {"running"}
    return deployments


def test_finished_jobs_never_wait_behind_long_running_ones(cluster, user, settings):
    """Issue 10: with batch size 2, two long Jobs at the lowest ids kept three finished Jobs
    `running` for as long as the long ones ran."""
    settings.DEPLOY_RECONCILER_BATCH = 2
    deployments = _five_apps_running(user)
    for deployment in deployments[2:]:
        cluster.finish(deployment.job_namespace, deployment.job_name)

    tick()

    statuses = list(Deployment.objects.order_by("pk").values_list("status", flat=True))
    assert statuses == ["running", "running", "succeeded", "succeeded", "succeeded"]


class StuckDeletes(KubernetesExecutor):
    """Deleting these Jobs keeps failing (a finalizer, a webhook that refuses)."""

    stuck: set[str] = set()

    def cancel(self, deployment):
        if deployment.job_name in self.stuck:
            raise ConnectionError("the API refuses this deletion")
        super().cancel(deployment)


def test_failing_cleanups_back_off_and_never_hold_up_the_others(cluster, user, settings):
    settings.DEPLOY_RECONCILER_BATCH = 2
    deployments = _five_apps_running(user)
    # Cancelled without its after-commit deletions (a test transaction never commits): every
    # Job is left to the reconciler.
    cancel_batch(batch_id=deployments[0].release_app.batch_id, user=user)
    StuckDeletes.stuck = {d.job_name for d in deployments[:3]}
    reconciler = Reconciler(executor=StuckDeletes())

    assert str(reconciler.tick()) == "launched=0 finished=0 cleaned=2 errors=3"

    assert set(cluster.jobs) == {(d.job_namespace, d.job_name) for d in deployments[:3]}
    stuck = Deployment.objects.filter(cleanup_pending=True)
    assert set(stuck.values_list("attempts", "claimed_by")) == {(1, "")}
    # Resting: the next tick leaves them alone rather than hammering the API.
    assert str(reconciler.tick()) == "launched=0 finished=0 cleaned=0 errors=0"

    _end_rests()
    assert str(reconciler.tick()) == "launched=0 finished=0 cleaned=0 errors=3"
    assert set(stuck.values_list("attempts", flat=True)) == {2}

    StuckDeletes.stuck = set()
    _end_rests()
    assert str(reconciler.tick()) == "launched=0 finished=0 cleaned=3 errors=0"
    assert cluster.jobs == {}
    assert set(Deployment.objects.values_list("attempts", "next_attempt_at")) == {(0, None)}


def test_the_pause_after_a_failure_doubles_up_to_a_cap(batch, user, settings):
    from deployments.services import deployment_retry_later

    settings.DEPLOY_RETRY_BASE_SECONDS = 1
    settings.DEPLOY_RETRY_MAX_SECONDS = 20
    start_pre_deploy(batch_id=batch.pk, user=user)
    deployment = Deployment.objects.first()

    pauses = []
    for _ in range(7):
        token = uuid.uuid4()
        Deployment.objects.filter(pk=deployment.pk).update(claimed_by="me", claim_token=token)
        pauses.append(deployment_retry_later(deployment=deployment, token=token).seconds)
        deployment.refresh_from_db()

    assert pauses == [1, 2, 4, 8, 16, 20, 20]
    assert (deployment.attempts, deployment.claimed_by) == (7, "")


def test_work_waiting_is_measured_at_the_start_of_each_tick(cluster, batch, user):
    from prometheus_client import REGISTRY

    def waiting(kind):
        return REGISTRY.get_sample_value("releasetrain_reconciler_work_waiting", {"kind": kind})

    start_pre_deploy(batch_id=batch.pk, user=user)
    tick()
    assert (waiting("launch"), waiting("outcome"), waiting("cleanup")) == (2, 0, 0)
    cluster.finish_all()
    tick()
    assert (waiting("launch"), waiting("outcome"), waiting("cleanup")) == (0, 2, 0)


# --- faults: 5xx and timeouts ---


@pytest.mark.parametrize(
    "fault",
    [
        {"status": 500},
        {"status": 503},
        {"delay": 3.0},  # the request never got through
        {"delay": 3.0, "apply": True},  # the Job was made, the answer lost
    ],
    ids=["500", "503", "timeout", "timeout-after-create"],
)
def test_a_failed_launch_is_retried_and_creates_one_job(cluster, batch, user, fault):
    start_pre_deploy(batch_id=batch.pk, user=user)
    cluster.inject("create", **fault)

    assert tick() == "launched=1 finished=0 cleaned=0 errors=1"
    # Whichever of the two parallel creates met the fault.
    failed = Deployment.objects.get(status="pending")
    # A launch in flight: named, not running, free for another reconciler, resting a while.
    assert (failed.status, bool(failed.job_name), failed.claimed_by, failed.attempts) == (
        "pending",
        True,
        "",
        1,
    )
    creates = cluster.count("create")
    assert tick() == "launched=0 finished=0 cleaned=0 errors=0"
    assert cluster.count("create") == creates  # not hammered

    _end_rests()
    assert tick() == "launched=1 finished=0 cleaned=0 errors=0"
    failed.refresh_from_db()
    assert (failed.attempts, failed.next_attempt_at) == (0, None)

    assert set(Deployment.objects.values_list("status", flat=True)) == {"running"}
    assert sorted(Counter(cluster.created()).values()) == [1, 1]
    assert len(cluster.jobs) == 2


@pytest.mark.parametrize(
    "fault",
    [{"status": 500}, {"status": 429}, {"delay": 3.0}],
    ids=["500", "429", "timeout"],
)
def test_a_failed_list_changes_nothing_and_is_retried(cluster, batch, user, fault):
    start_pre_deploy(batch_id=batch.pk, user=user)
    tick()
    cluster.finish_all()
    cluster.inject("list", **fault)

    assert tick() == "launched=0 finished=0 cleaned=0 errors=2"
    assert set(Deployment.objects.values_list("status", flat=True)) == {"running"}
    # Not a request per Job instead of the failed list.
    assert cluster.count("read") == 0

    assert tick() == "launched=0 finished=2 cleaned=0 errors=0"
    assert _batch_status(batch) == "prod_waiting"


@pytest.mark.parametrize(
    "fault",
    [{"status": 500}, {"delay": 3.0}, {"delay": 3.0, "apply": True}],
    ids=["500", "timeout", "timeout-after-delete"],
)
def test_a_failed_delete_never_undoes_the_switch_and_is_retried(
    cluster, batch, user, fault, django_capture_on_commit_callbacks
):
    start_pre_deploy(batch_id=batch.pk, user=user)
    tick()
    cluster.finish_all()
    tick()
    old = _deployment("api")
    notify(2, {"api": "v2"})
    cluster.inject("delete", **fault)

    with django_capture_on_commit_callbacks(execute=True):
        result = switch_version(release_id=old.release_app_id, user=user)

    assert result.changed
    assert ReleaseApp.objects.get(pk=old.release_app_id).image_tag == "v2"
    old.refresh_from_db()
    assert old.cleanup_pending and old.superseded_at is not None

    assert tick() == "launched=0 finished=0 cleaned=1 errors=0"

    old.refresh_from_db()
    assert not old.cleanup_pending
    assert (old.job_namespace, old.job_name) not in cluster.jobs


def test_cancelling_a_batch_deletes_its_jobs_even_through_a_fault(
    cluster, batch, user, django_capture_on_commit_callbacks
):
    start_pre_deploy(batch_id=batch.pk, user=user)
    tick()
    cluster.inject("delete", times=2, status=503)

    with django_capture_on_commit_callbacks(execute=True):
        cancel_batch(batch_id=batch.pk, user=user)

    assert len(cluster.jobs) == 2
    assert set(Deployment.objects.values_list("status", "cleanup_pending")) == {("cancelled", True)}
    assert tick() == "launched=0 finished=0 cleaned=2 errors=0"
    assert cluster.jobs == {}
    assert not Deployment.objects.filter(cleanup_pending=True).exists()


# --- cancellation racing a launch, and crashes ---


class Killed(BaseException):
    """The reconciler process dies here (no `except Exception` sees it, as with SIGKILL)."""


class CancelledWhileLaunching(KubernetesExecutor):
    """The batch is cancelled after the Job's name was recorded, before the Job exists."""

    capture = None

    def launch(self, deployment):
        with self.capture(execute=True):
            alice = get_user_model().objects.get(username="alice")  # the `user` fixture
            cancel_batch(batch_id=deployment.release_app.batch_id, user=alice)
        super().launch(deployment)


def test_a_job_created_after_its_deployment_was_cancelled_is_deleted(
    cluster, batch, user, settings, django_capture_on_commit_callbacks
):
    # The cancel runs inside the launch, on the test's connection: no launch threads here
    # (tests/releases/reconciler/test_faults.py cancels real launches in flight).
    settings.DEPLOY_RECONCILER_LAUNCH_WORKERS = 1
    start_pre_deploy(batch_id=batch.pk, user=user)
    CancelledWhileLaunching.capture = django_capture_on_commit_callbacks

    result = Reconciler(executor=CancelledWhileLaunching()).tick()

    # The cancel's own delete ran before the create (404): only the reconciler can finish it.
    assert cluster.count("delete", 404) >= 1
    assert cluster.count("create", 201) == 1
    assert (result.launched, result.cleaned) == (0, 1)
    assert cluster.jobs == {}
    assert set(Deployment.objects.values_list("status", "cleanup_pending")) == {
        ("cancelled", False)
    }


class DiesBeforeCreate(KubernetesExecutor):
    def launch(self, deployment):
        raise Killed


class DiesAfterCreate(KubernetesExecutor):
    def launch(self, deployment):
        super().launch(deployment)
        raise Killed


def _die() -> None:
    """The reconciler's process dies: its session's liveness lock goes with it (the reconcilers
    of these tests share the test's session, which must live on)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_unlock_all()")


@pytest.mark.parametrize("dying", [DiesBeforeCreate, DiesAfterCreate])
def test_a_reconciler_killed_mid_launch_leaves_work_the_next_one_finishes_once(
    cluster, batch, user, dying
):
    start_pre_deploy(batch_id=batch.pk, user=user)
    with pytest.raises(Killed):
        Reconciler(name="dying", executor=dying()).tick()
    # Both launches were in flight together: the dying reconciler holds both rows.
    dead = Deployment.objects.exclude(claimed_by="")
    assert {(d.status, bool(d.job_name)) for d in dead} == {("pending", True)}
    assert dead.count() == 2
    # While it lives (its session holds its liveness lock), others leave its launches alone.
    assert Reconciler().tick().launched == 0
    assert cluster.count("create") == (2 if dying is DiesAfterCreate else 0)

    _die()
    # Long before its lease runs out, the next tick takes its launches over.
    assert tick() == "launched=2 finished=0 cleaned=0 errors=0"

    assert set(Deployment.objects.values_list("status", flat=True)) == {"running"}
    assert sorted(Counter(cluster.created()).values()) == [1, 1]
    assert len(cluster.jobs) == 2


def test_a_batch_cancelled_after_a_reconciler_died_mid_launch_leaves_no_job(
    cluster, batch, user, django_capture_on_commit_callbacks
):
    start_pre_deploy(batch_id=batch.pk, user=user)
    with pytest.raises(Killed):
        Reconciler(executor=DiesAfterCreate()).tick()
    with django_capture_on_commit_callbacks(execute=True):
        cancel_batch(batch_id=batch.pk, user=user)
    # Deleted, but the dead reconciler's claim keeps the matter open until it is taken over.
    assert cluster.jobs == {}
    assert Deployment.objects.filter(cleanup_pending=True).count() == 2

    _die()
    assert tick() == "launched=0 finished=0 cleaned=2 errors=0"

    assert cluster.jobs == {}
    assert not Deployment.objects.filter(cleanup_pending=True).exists()


# --- the local executor ---


def test_full_rollout_with_the_local_executor(local_jobs, batch, user):
    start_pre_deploy(batch_id=batch.pk, user=user)
    _tick_until(lambda: _batch_status(batch) == "prod_waiting")
    start_prod_deploy(batch_id=batch.pk, user=user)
    _tick_until(lambda: _batch_status(batch) == "completed")

    assert _release_statuses(batch) == {"api": "prod_deployed", "web": "prod_deployed"}
    assert set(Deployment.objects.values_list("environment", "status")) == {
        ("pre", "succeeded"),
        ("prod", "succeeded"),
    }
    assert len(list(local_jobs.glob("*/*/exit_code"))) == 4


def test_a_failing_local_job_fails_the_release_and_a_switch_then_works(
    local_jobs, user, django_capture_on_commit_callbacks
):
    from releases.services import create_batch
    from releases.services.batches import AppChoice

    notify(1, {"api": "v1-fail", "web": "w1"})
    batch = create_batch(name="Dec", apps=[AppChoice("api"), AppChoice("web")], user=user).batch
    start_pre_deploy(batch_id=batch.pk, user=user)
    _tick_until(lambda: _batch_status(batch) == "pre_waiting")

    assert _release_statuses(batch) == {"api": "pre_failed", "web": "pre_deployed"}
    failed = _deployment("api")
    assert failed.error.startswith("exit status 1")
    assert "did not become healthy" in failed.error

    notify(2, {"api": "v2"})
    with django_capture_on_commit_callbacks(execute=True):
        assert switch_version(release_id=failed.release_app_id, user=user).changed
    start_pre_deploy(batch_id=batch.pk, user=user)
    _tick_until(lambda: _batch_status(batch) == "prod_waiting")
    assert _deployment("api").status == "succeeded"


@pytest.mark.parametrize(
    ("config", "cause"),
    [
        ({"namespace": "n" * 70}, "namespace"),  # longer than the column and Kubernetes allow
        ({"namespace": "../../etc"}, "namespace"),  # would be a path for the local executor
        ({"env": {"A=B": "x"}}, "env"),  # not a variable name
        ({"env": {"OK": 3}}, "env"),  # not a string
    ],
    ids=["long-namespace", "path-namespace", "env-name", "env-value"],
)
def test_a_config_that_can_never_launch_fails_its_deployment_not_the_tick(
    local_jobs, batch, user, config, cause
):
    web = batch.releases.get(application__name="web").application
    web.deploy_config = {"pre": config}
    web.save(update_fields=["deploy_config"])
    start_pre_deploy(batch_id=batch.pk, user=user)

    _tick_until(lambda: _batch_status(batch) == "pre_waiting")

    failed = _deployment("web")
    assert failed.status == "failed" and cause in failed.error
    # The other app of the batch was launched and finished all the same.
    assert _release_statuses(batch) == {"api": "pre_deployed", "web": "pre_failed"}
    # No launch marker was left behind without its Job's exit status.
    assert all(pid.with_name("exit_code").exists() for pid in local_jobs.glob("*/*/pid"))
