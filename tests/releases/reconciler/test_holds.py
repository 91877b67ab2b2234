"""A hold stops launches of a stage already deploying, and they resume when it is lifted or ends:
the real reconciler loop against the fake Kubernetes API, woken only by NOTIFY and its own
schedule (its fallback interval is longer than any test)."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from deployments.models import Deployment
from releases.models import Batch, Hold
from releases.services import start_pre_deploy
from releases.services.holds import hold_lift, hold_place
from tests.factories import UserFactory

from .conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def _pre(batch) -> dict[str, str]:
    return {
        d.release_app.application.name: d.status
        for d in Deployment.objects.filter(release_app__batch=batch, environment="pre")
        .current()
        .select_related("release_app__application")
    }


@pytest.fixture
def holder():
    return UserFactory(permissions=["applications.add_hold", "applications.lift_hold"])


def test_a_hold_placed_while_a_stage_deploys_stops_its_launches_until_lifted(
    cluster, reconcilers, batch, user, holder
):
    start_pre_deploy(batch_id=batch.pk, user=user)
    hold = hold_place(user=holder, reason="incident 42", application="web").hold
    reconcilers(2)

    wait_for(lambda: _pre(batch)["api"] == "running")
    cluster.finish_all()
    wait_for(lambda: _pre(batch)["api"] == "succeeded")
    # The running Job's outcome applied; the held one waits, and so does the stage.
    assert _pre(batch)["web"] == "pending"
    assert Batch.objects.get(pk=batch.pk).status == "pre_deploying"
    assert len(cluster.jobs) == 1

    hold_lift(hold_id=hold.pk, user=holder, note="resolved")

    wait_for(lambda: _pre(batch)["web"] == "running")
    cluster.finish_all()
    wait_for(lambda: Batch.objects.get(pk=batch.pk).status == "prod_waiting")


def test_launches_resume_when_the_hold_ends_with_nobody_acting(
    cluster, reconcilers, batch, user, holder
):
    start_pre_deploy(batch_id=batch.pk, user=user)
    hold = hold_place(
        user=holder,
        reason="maintenance window",
        batch_id=batch.pk,
        ends_at=timezone.now() + timedelta(seconds=1.5),
    ).hold
    reconcilers(1)  # its fallback interval is longer than the test: only its schedule wakes it

    while Hold.objects.active().filter(pk=hold.pk).exists():
        assert cluster.jobs == {}, "launched under an active hold"
        time.sleep(0.05)

    # Nobody lifts it, nobody starts anything: the reconciler woke itself when it ended.
    wait_for(lambda: set(_pre(batch).values()) == {"running"})
    cluster.finish_all()
    wait_for(lambda: Batch.objects.get(pk=batch.pk).status == "prod_waiting")
