"""Every workflow's transaction is run again when PostgreSQL aborts it for a deadlock or a
serialization failure, and answers `busy` (503, Retry-After) when the tries run out."""

import pytest
from django.db import connection

import builds.services
import releases.locks
import releases.services.batches
from builds.models import Build
from releases.choices import BatchStatus
from releases.models import Batch
from releases.services import (
    apply_deployment_outcome,
    cancel_batch,
    create_batch,
    start_pre_deploy,
    switch_version,
)
from releases.services.batches import AppChoice
from tests.factories import UserFactory
from tests.helpers import notify, token_client
from utilities.errors import DomainError

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_pauses(settings):
    settings.WORKFLOW_RETRY_BASE_DELAY = 0
    settings.WORKFLOW_RETRY_ATTEMPTS = 3


def aborted_by_postgresql(monkeypatch, target, name: str, times: int) -> list:
    """Make `target.name` run into a real PostgreSQL deadlock error the first `times` calls."""
    calls = []
    original = getattr(target, name)

    def deadlocking(*args, **kwargs):
        calls.append(1)
        if len(calls) <= times:
            with connection.cursor() as cursor:
                cursor.execute(
                    "DO $$ BEGIN RAISE EXCEPTION 'deadlock detected' "
                    "USING ERRCODE = 'deadlock_detected'; END $$"
                )
        return original(*args, **kwargs)

    monkeypatch.setattr(target, name, deadlocking)
    return calls


@pytest.fixture
def batch(user, executor):
    notify(1, {"api": "v1"})
    batch = create_batch(name="Nov", apps=[AppChoice("api")], user=user).batch
    notify(2, {"api": "v2"})
    return batch


def test_an_aborted_ingestion_is_run_again_and_lands_once(monkeypatch):
    calls = aborted_by_postgresql(monkeypatch, builds.services, "_build_insert_if_new", times=2)

    result = notify(7, {"api": "v7"})

    assert result.created and len(calls) == 3
    assert Build.objects.filter(number=7).count() == 1


def test_an_aborted_batch_creation_is_run_again(monkeypatch, user):
    notify(1, {"api": "v1"})
    calls = aborted_by_postgresql(monkeypatch, releases.services.batches, "_choose_builds", 1)

    result = create_batch(name="Nov", apps=[AppChoice("api")], user=user)

    assert result.changed and len(calls) == 2
    assert Batch.objects.count() == 1


@pytest.mark.parametrize(
    "workflow",
    ["switch", "stage start", "cancel", "outcome"],
)
def test_every_batch_workflow_is_run_again_after_an_abort(monkeypatch, batch, user, workflow):
    if workflow == "outcome":
        deployment = start_pre_deploy(batch_id=batch.pk, user=user).deployments[0]
    calls = aborted_by_postgresql(monkeypatch, releases.locks, "batch_lock", times=1)

    if workflow == "switch":
        assert switch_version(release_id=batch.releases.get().pk, user=user).changed
    elif workflow == "stage start":
        assert start_pre_deploy(batch_id=batch.pk, user=user).changed
    elif workflow == "cancel":
        assert cancel_batch(batch_id=batch.pk, user=user).changed
    else:
        assert apply_deployment_outcome(deployment_id=deployment.pk, outcome="failed").changed

    assert len(calls) == 2


def test_when_the_tries_run_out_the_answer_is_busy_and_nothing_changed(monkeypatch, batch, user):
    calls = aborted_by_postgresql(monkeypatch, releases.locks, "batch_lock", times=99)

    with pytest.raises(DomainError) as err:
        start_pre_deploy(batch_id=batch.pk, user=user)

    assert (err.value.code, err.value.status_code, len(calls)) == ("busy", 503, 3)
    batch.refresh_from_db()
    assert batch.status == BatchStatus.PRE_WAITING


def test_a_notification_whose_tries_run_out_is_503_busy_with_retry_after(monkeypatch, settings):
    settings.WORKFLOW_BUSY_RETRY_AFTER_SECONDS = 2
    aborted_by_postgresql(monkeypatch, builds.services, "_build_insert_if_new", times=99)
    drone = token_client(UserFactory(permissions=["builds.notify_build"]))

    response = drone.post(
        "/api/v1/builds/notify",
        {
            "build_number": 7,
            "build_status": "success",
            "apps": [{"name": "api", "image_tag": "v7"}],
        },
        format="json",
    )

    assert response.status_code == 503
    assert response["Retry-After"] == "2"
    assert response.json()["code"] == "busy"
    assert not Build.objects.exists()


def test_a_switch_whose_tries_run_out_is_503_busy_with_retry_after(monkeypatch, batch):
    aborted_by_postgresql(monkeypatch, releases.locks, "release_batch_lock", times=99)
    client = token_client(UserFactory(permissions=["applications.switch_version"]))

    response = client.post(
        f"/api/v1/releases/{batch.releases.get().pk}/switch-version", {}, format="json"
    )

    assert (response.status_code, response.json()["code"]) == (503, "busy")
    assert response.has_header("Retry-After")
    assert batch.releases.get().image_tag == "v1"
