"""The reconciler as a controller: woken by NOTIFY, told of finished Jobs by the executor's
watch, and quiet (no database write, no API request) while nothing changes.

Reconcilers run their real loop (`Reconciler.run`) in threads with their own connections, so
these tests commit for real (`transaction=True`). Waiting is bounded; nothing asserts on time.
"""

import threading
from collections import Counter

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from prometheus_client import REGISTRY

from deployments.executors import get_executor
from deployments.models import Deployment
from releases.models import Batch
from releases.reconciler import Reconciler
from releases.services import cancel_batch, create_batch, start_pre_deploy
from releases.services.batches import AppChoice
from tests.helpers import notify

from .conftest import NEVER, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

APPS = [f"app{i}" for i in range(6)]


def batch_of(user, apps=APPS) -> Batch:
    notify(1, {app: "v1" for app in apps})
    return create_batch(name="Watch", apps=[AppChoice(a) for a in apps], user=user).batch


def statuses() -> set[str]:
    return set(Deployment.objects.values_list("status", flat=True))


def batch_status(batch) -> str:
    return Batch.objects.get(pk=batch.pk).status


def metric(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_stage_start_wakes_the_reconciler_and_finished_jobs_are_applied_from_the_watch(
    cluster, reconcilers, user
):
    batch = batch_of(user)
    reconcilers(1)

    start_pre_deploy(batch_id=batch.pk, user=user)
    wait_for(lambda: statuses() == {"running"})
    cluster.finish_all()
    wait_for(lambda: batch_status(batch) == "prod_waiting")

    assert statuses() == {"succeeded"}
    # No Job was ever read one by one: the informers' first lists told everything, then the
    # watch; one list per configured namespace.
    assert cluster.count("read") == 0
    assert cluster.count("list") == 2
    assert cluster.count("create") == len(APPS)


def test_several_reconcilers_launch_each_job_once_and_apply_each_outcome_once(
    cluster, reconcilers, user, caplog
):
    batch = batch_of(user)
    reconcilers(3)
    cluster.create_delay = 0.05  # launches stay in flight while the others look

    start_pre_deploy(batch_id=batch.pk, user=user)
    wait_for(lambda: statuses() == {"running"})
    cluster.finish_all()
    wait_for(lambda: batch_status(batch) == "prod_waiting")

    assert Counter(cluster.created()) == Counter(
        {(d.job_namespace, d.job_name) for d in Deployment.objects.all()}
    )
    assert cluster.count("create") == len(APPS)  # not even a 409
    applied = [r for r in caplog.records if r.getMessage() == "deployment_finished"]
    assert sorted(r.deployment_id for r in applied) == sorted(
        Deployment.objects.values_list("pk", flat=True)
    )
    assert not Deployment.objects.exclude(claimed_by="").exists()


def test_at_rest_a_tick_writes_nothing_and_asks_the_api_nothing(cluster, user):
    batch = batch_of(user)
    start_pre_deploy(batch_id=batch.pk, user=user)
    reconciler = Reconciler()
    reconciler.tick()
    assert statuses() == {"running"}
    stop = threading.Event()
    try:
        reconciler.executor.watch(on_change=lambda: None, stop=stop)
        wait_for(reconciler.executor.synced, what="the informers")
        before = cluster.snapshot()

        with CaptureQueriesContext(connection) as queries:
            for _ in range(5):
                assert str(reconciler.tick()) == "launched=0 finished=0 cleaned=0 errors=0"

        writes = [
            q["sql"]
            for q in queries.captured_queries
            if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))
        ]
        assert writes == []
        after = cluster.snapshot()
        assert {op: after[op] - before[op] for op in ("create", "read", "list", "delete")} == {
            "create": 0,
            "read": 0,
            "list": 0,
            "delete": 0,
        }
    finally:
        stop.set()
        reconciler.close()


def test_a_job_deleted_by_someone_else_fails_its_deployment_clearly(cluster, reconcilers, user):
    batch = batch_of(user, ["api", "web"])
    reconcilers(1)
    start_pre_deploy(batch_id=batch.pk, user=user)
    wait_for(lambda: statuses() == {"running"})
    api = Deployment.objects.get(release_app__application__name="api")

    cluster.vanish(api.job_namespace, api.job_name)
    wait_for(lambda: Deployment.objects.get(pk=api.pk).status == "failed")

    api.refresh_from_db()
    assert api.error == (
        f"Job {api.job_namespace}/{api.job_name} disappeared before it finished "
        "(deleted by hand, or removed by the cluster)."
    )
    # The other one runs on, untouched.
    assert Deployment.objects.get(release_app__application__name="web").status == "running"


def test_the_time_from_finished_to_applied_is_measured(cluster, reconcilers, user):
    batch = batch_of(user, ["api"])
    reconcilers(1)
    observed = metric("releasetrain_job_outcome_delay_seconds_count")
    start_pre_deploy(batch_id=batch.pk, user=user)
    wait_for(lambda: statuses() == {"running"})

    cluster.finish_all()
    wait_for(lambda: batch_status(batch) == "prod_waiting")

    assert metric("releasetrain_job_outcome_delay_seconds_count") == observed + 1


def test_the_local_executor_wakes_the_reconciler_when_its_process_ends(local_jobs, user, settings):
    batch = batch_of(user, ["api", "web"])
    stop = threading.Event()
    reconciler = Reconciler(stop=stop)

    def run():
        try:
            reconciler.run(interval=NEVER)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    try:
        start_pre_deploy(batch_id=batch.pk, user=user)
        wait_for(lambda: batch_status(batch) == "prod_waiting")
    finally:
        reconciler.request_stop()
        thread.join(timeout=30)
    assert not thread.is_alive()
    assert statuses() == {"succeeded"}


def test_a_job_that_appears_for_a_cancelled_deployment_is_deleted(cluster, reconcilers, user):
    """A create that timed out on our side completes on the server after the batch was
    cancelled and the cancel's deletion found nothing: the watch shows the Job, the reconciler
    deletes it."""
    batch = batch_of(user, ["api"])
    start_pre_deploy(batch_id=batch.pk, user=user)
    deployment = Deployment.objects.select_related("release_app__application").get()
    name, namespace = get_executor().job_target(deployment)
    Deployment.objects.filter(pk=deployment.pk).update(job_name=name, job_namespace=namespace)
    cancel_batch(batch_id=batch.pk, user=user)  # its deletion: 404, nothing there yet
    deployment.refresh_from_db()
    assert (deployment.status, deployment.cleanup_pending) == ("cancelled", False)
    get_executor().launch(deployment)  # the late create lands
    assert (namespace, name) in cluster.jobs

    reconcilers(1)

    wait_for(lambda: cluster.jobs == {})
    wait_for(lambda: not Deployment.objects.filter(cleanup_pending=True).exists())


@pytest.mark.parametrize(("deletes_fail", "woken"), [(False, False), (True, True)])
def test_a_cancel_wakes_the_reconcilers_only_for_jobs_it_could_not_delete(
    executor, user, deletes_fail, woken
):
    """The request deletes its Jobs itself; waking the reconcilers before would only have them
    race it to delete the same Jobs. What it leaves undone is theirs at once."""
    import psycopg

    from deployments.wakeup import CHANNEL

    batch = batch_of(user, apps=["a", "b"])
    start_pre_deploy(batch_id=batch.pk, user=user)
    Deployment.objects.update(status="running", job_name="job")  # both have a Job to delete
    type(executor).fail_cancel = deletes_fail  # read by every instance get_executor() makes
    with psycopg.connect(**connection.get_connection_params(), autocommit=True) as listener:
        listener.execute(f"LISTEN {CHANNEL}")

        cancel_batch(batch_id=batch.pk, user=user)

        notified = list(listener.notifies(timeout=0.5, stop_after=1))
    assert bool(notified) is woken
    assert Deployment.objects.filter(cleanup_pending=True).count() == (2 if deletes_fail else 0)
