"""A whole batch driven through the workflows: create, pre, prod, failures, switches."""

import pytest

from deployments.models import Deployment
from releases.choices import BatchStatus, ReleaseStatus
from releases.models import Batch, ReleaseApp
from releases.services import (
    cancel_batch,
    create_batch,
    start_pre_deploy,
    start_prod_deploy,
    switch_version,
)
from releases.services.batches import AppChoice
from tests.helpers import deployment_mark_running, notify, nov_batch, run_stage
from utilities.errors import DomainError

pytestmark = pytest.mark.django_db


def _batch_status(batch) -> str:
    return Batch.objects.get(pk=batch.pk).status


def _statuses(batch) -> dict[str, str]:
    return dict(ReleaseApp.objects.filter(batch=batch).values_list("application__name", "status"))


def test_create_batch_defaults_to_latest_successful_tag(user):
    notify(1, {"api": "v1", "web": "w1"})
    notify(2, {"api": "v2"})
    notify(3, {"api": "v3"}, status="failure")

    batch = create_batch(name="Nov", apps=[AppChoice("api"), AppChoice("web")], user=user).batch

    tags = dict(batch.releases.values_list("application__name", "image_tag"))
    assert tags == {"api": "v2", "web": "w1"}
    api = batch.releases.get(application__name="api")
    assert (api.latest_image_tag, api.has_new_tag) == ("v2", False)


def test_create_batch_with_an_older_tag_shows_the_newer_one_at_once(user):
    notify(1, {"api": "v1"})
    notify(2, {"api": "v2"})

    batch = create_batch(name="Nov", apps=[AppChoice("api", "v1")], user=user).batch

    api = batch.releases.get()
    assert (api.image_tag, api.latest_image_tag, api.has_new_tag) == ("v1", "v2", True)


@pytest.mark.parametrize(
    ("apps", "code"),
    [
        ([], "invalid"),
        ([AppChoice("api"), AppChoice("api")], "invalid"),
        ([AppChoice("nope")], "unknown_app"),
        ([AppChoice("api", "v9")], "unknown_tag"),
        ([AppChoice("never-built")], "no_successful_build"),
    ],
)
def test_create_batch_rejects_bad_input_and_writes_nothing(user, apps, code):
    notify(1, {"api": "v1"})
    notify(2, {"never-built": "x1"}, status="failure")

    with pytest.raises(DomainError) as err:
        create_batch(name="Nov", apps=apps, user=user)

    assert err.value.code == code
    assert not Batch.objects.exists()


def test_create_batch_retry_is_idempotent_and_name_clash_conflicts(user):
    notify(1, {"api": "v1", "web": "w1"})
    first = create_batch(name="Nov", apps=[AppChoice("api")], user=user)

    again = create_batch(name="Nov", apps=[AppChoice("api")], user=user)
    with pytest.raises(DomainError) as err:
        create_batch(name="Nov", apps=[AppChoice("web")], user=user)

    assert (first.changed, again.changed, again.batch.pk) == (True, False, first.batch.pk)
    assert err.value.code == "batch_name_taken"
    assert Batch.objects.count() == 1


def test_full_rollout_with_failure_and_switch(user, executor):
    batch = nov_batch(user)

    pre = start_pre_deploy(batch_id=batch.pk, user=user)
    assert _batch_status(batch) == BatchStatus.PRE_DEPLOYING
    assert _statuses(batch) == {"api": "pre_deploying", "web": "pre_deploying"}
    run_stage(pre, {"web": "failed"})
    assert _batch_status(batch) == BatchStatus.PRE_WAITING
    assert _statuses(batch) == {"api": "pre_deployed", "web": "pre_failed"}

    # Only the failed app is deployed again; its failed deployment is superseded.
    retry = start_pre_deploy(batch_id=batch.pk, user=user)
    assert [d.release_app.application.name for d in retry.deployments] == ["web"]
    run_stage(retry)
    assert _batch_status(batch) == BatchStatus.PROD_WAITING

    # A new tag while waiting for prod: switching reopens pre for that app alone.
    notify(2, {"api": "v2"})
    api = batch.releases.get(application__name="api")
    switched = switch_version(release_id=api.pk, user=user)
    assert switched.changed and switched.batch_status == BatchStatus.PRE_WAITING
    assert _statuses(batch) == {"api": "pending", "web": "pre_deployed"}

    # The switch's pending deployment is reused by the next pre stage.
    pre_again = start_pre_deploy(batch_id=batch.pk, user=user)
    assert [d.pk for d in pre_again.deployments] == [switched.deployment.pk]
    run_stage(pre_again)
    prod = start_prod_deploy(batch_id=batch.pk, user=user)
    assert sorted(d.image_tag for d in prod.deployments) == ["v2", "w1"]
    run_stage(prod)

    assert _batch_status(batch) == BatchStatus.COMPLETED
    assert _statuses(batch) == {"api": "prod_deployed", "web": "prod_deployed"}
    # Every (release, environment) has exactly one current deployment, the chain holds the rest.
    current = Deployment.objects.current().filter(release_app__batch=batch)
    assert sorted(current.values_list("release_app__application__name", "environment")) == [
        ("api", "pre"),
        ("api", "prod"),
        ("web", "pre"),
        ("web", "prod"),
    ]


def test_failed_prod_returns_batch_to_prod_waiting_where_switch_works(user, executor):
    notify(1, {"api": "v1"})
    batch = create_batch(name="Nov", apps=[AppChoice("api")], user=user).batch
    run_stage(start_pre_deploy(batch_id=batch.pk, user=user))
    run_stage(start_prod_deploy(batch_id=batch.pk, user=user), {"api": "failed"})
    assert _batch_status(batch) == BatchStatus.PROD_WAITING
    assert _statuses(batch) == {"api": ReleaseStatus.PROD_FAILED}

    notify(2, {"api": "v2"})
    result = switch_version(release_id=batch.releases.get().pk, user=user)

    assert result.changed
    assert result.batch_status == BatchStatus.PRE_WAITING
    # Both the pre and the failed prod deployment are superseded by the new pre deployment.
    assert len(result.superseded_deployment_ids) == 2
    superseded = Deployment.objects.filter(pk__in=result.superseded_deployment_ids)
    assert set(superseded.values_list("superseded_by", flat=True)) == {result.deployment.pk}


def test_stage_starts_are_idempotent_and_refuse_wrong_states(user, executor):
    notify(1, {"api": "v1"})
    batch = create_batch(name="Nov", apps=[AppChoice("api")], user=user).batch

    with pytest.raises(DomainError) as err:
        start_prod_deploy(batch_id=batch.pk, user=user)
    assert err.value.code == "invalid_transition"

    first = start_pre_deploy(batch_id=batch.pk, user=user)
    second = start_pre_deploy(batch_id=batch.pk, user=user)
    assert (first.changed, second.changed) == (True, False)
    assert Deployment.objects.count() == 1


def test_cancel_cancels_unfinished_deployments_and_deletes_their_jobs(user, executor):
    batch = nov_batch(user)
    pre = start_pre_deploy(batch_id=batch.pk, user=user)
    running = pre.deployments[0]
    deployment_mark_running(deployment_id=running.pk, job_name="rt-1", job_namespace="ns")

    result = cancel_batch(batch_id=batch.pk, user=user)
    again = cancel_batch(batch_id=batch.pk, user=user)

    assert (result.changed, again.changed) == (True, False)
    assert _batch_status(batch) == BatchStatus.CANCELLED
    assert set(Deployment.objects.values_list("status", flat=True)) == {"cancelled"}
    # Only the deployment that had a Job needs one deleted.
    assert Deployment.objects.filter(cleanup_pending=True).count() == 1


def test_completed_batch_cannot_be_cancelled(user, executor):
    notify(1, {"api": "v1"})
    batch = create_batch(name="Nov", apps=[AppChoice("api")], user=user).batch
    run_stage(start_pre_deploy(batch_id=batch.pk, user=user))
    run_stage(start_prod_deploy(batch_id=batch.pk, user=user))

    with pytest.raises(DomainError) as err:
        cancel_batch(batch_id=batch.pk, user=user)

    assert err.value.code == "invalid_transition"
    assert _batch_status(batch) == BatchStatus.COMPLETED


def _set_config(app: str, config: dict) -> None:
    from applications.models import Application

    Application.objects.filter(name=app).update(deploy_config=config)


@pytest.mark.parametrize("environment", ["pre", "prod"])
def test_a_stage_restart_takes_the_fixed_config_of_the_application(user, executor, environment):
    notify(1, {"api": "v1"})
    _set_config("api", {"pre": {"namespace": "typo-pre"}, "prod": {"namespace": "typo-prod"}})
    batch = create_batch(name="Nov", apps=[AppChoice("api")], user=user).batch
    if environment == "prod":
        run_stage(start_pre_deploy(batch_id=batch.pk, user=user))
        start = start_prod_deploy
    else:
        start = start_pre_deploy
    run_stage(start(batch_id=batch.pk, user=user), {"api": "failed"})

    _set_config("api", {"pre": {"namespace": "shop-pre"}, "prod": {"namespace": "shop-prod"}})
    retry = start(batch_id=batch.pk, user=user)

    assert [d.config for d in retry.deployments] == [{"namespace": f"shop-{environment}"}]


def test_a_pending_deployment_left_by_a_switch_starts_with_the_current_config(user, executor):
    notify(1, {"api": "v1"})
    batch = create_batch(name="Nov", apps=[AppChoice("api")], user=user).batch
    notify(2, {"api": "v2"})
    switched = switch_version(release_id=batch.releases.get().pk, user=user).deployment
    _set_config("api", {"pre": {"namespace": "shop-pre"}})

    stage = start_pre_deploy(batch_id=batch.pk, user=user)

    assert [d.pk for d in stage.deployments] == [switched.pk]
    assert Deployment.objects.get(pk=switched.pk).config == {"namespace": "shop-pre"}
