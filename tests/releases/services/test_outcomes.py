"""Applying a deployment's outcome: deployment -> release -> batch, idempotently."""

import pytest

from deployments.models import Deployment
from releases.models import Batch
from releases.services import (
    apply_deployment_outcome,
    cancel_batch,
    create_batch,
    start_pre_deploy,
)
from releases.services.batches import AppChoice
from tests.helpers import deployment_mark_running, notify, nov_batch
from utilities.errors import DomainError

pytestmark = pytest.mark.django_db


@pytest.fixture
def running(user, executor) -> Deployment:
    batch = nov_batch(user)
    deployment = start_pre_deploy(batch_id=batch.pk, user=user).deployments[0]
    deployment_mark_running(deployment_id=deployment.pk, job_name="rt-1", job_namespace="pre")
    return deployment


def test_applying_the_same_outcome_twice_changes_nothing_the_second_time(running):
    first = apply_deployment_outcome(deployment_id=running.pk, outcome="succeeded")
    second = apply_deployment_outcome(deployment_id=running.pk, outcome="succeeded")
    contradicting = apply_deployment_outcome(deployment_id=running.pk, outcome="failed", error="x")

    running.refresh_from_db()
    assert (first.changed, second.changed, contradicting.changed) == (True, False, False)
    assert (running.status, running.error) == ("succeeded", "")
    assert running.release_app.status == "pre_deployed"
    # The other app still deploys, so the batch stays in its stage.
    assert Batch.objects.get().status == "pre_deploying"


def test_failure_records_the_error(running):
    apply_deployment_outcome(deployment_id=running.pk, outcome="failed", error="exit 3")

    running.refresh_from_db()
    assert (running.status, running.error, running.release_app.status) == (
        "failed",
        "exit 3",
        "pre_failed",
    )
    assert running.finished_at is not None


def test_a_late_outcome_for_a_cancelled_deployment_changes_nothing(running, user):
    cancel_batch(batch_id=running.release_app.batch_id, user=user)

    result = apply_deployment_outcome(deployment_id=running.pk, outcome="succeeded")

    running.refresh_from_db()
    assert not result.changed and running.status == "cancelled"
    assert Batch.objects.get().status == "cancelled"


def test_a_never_launched_deployment_can_fail(user, executor):
    notify(1, {"api": "v1"})
    batch = create_batch(name="Nov", apps=[AppChoice("api")], user=user).batch
    deployment = start_pre_deploy(batch_id=batch.pk, user=user).deployments[0]

    apply_deployment_outcome(deployment_id=deployment.pk, outcome="failed", error="invalid spec")

    assert Batch.objects.get().status == "pre_waiting"


@pytest.mark.parametrize(
    ("deployment_id", "outcome", "code"),
    [(None, "done", "invalid"), (999999, "failed", "not_found")],
)
def test_bad_input(running, deployment_id, outcome, code):
    with pytest.raises(DomainError) as err:
        apply_deployment_outcome(deployment_id=deployment_id or running.pk, outcome=outcome)
    assert err.value.code == code


def test_an_empty_batch_cannot_start(user):
    batch = Batch.objects.create(name="empty")
    with pytest.raises(DomainError) as err:
        start_pre_deploy(batch_id=batch.pk, user=user)
    assert err.value.code == "batch_empty"
    assert Batch.objects.get().status == "pre_waiting"
