"""Concurrent HTTP requests: each gets a clean answer, never a 500 or a deadlock."""

from collections import Counter

import pytest

from deployments.models import Deployment
from releases.models import Batch
from releases.services import create_batch
from releases.services.batches import AppChoice
from tests.factories import UserFactory
from tests.helpers import notify, race, token_client

pytestmark = pytest.mark.django_db(transaction=True)


def test_switches_and_a_stage_start_racing_on_one_batch(executor):
    user = UserFactory(permissions=["applications.switch_version", "applications.deploy_batch"])
    notify(1, {"api": "v1"})
    batch = create_batch(name="Nov", apps=[AppChoice("api")], user=user).batch
    notify(2, {"api": "v2"})
    release = batch.releases.get()
    switch = f"/api/v1/releases/{release.pk}/switch-version"
    start = f"/api/v1/batches/{batch.pk}/start-pre-deploy"

    responses = race(
        *[lambda: token_client(user).post(switch, {"image_tag": "v2"}, format="json")] * 4,
        lambda: token_client(user).post(start),
    )

    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) <= {200, 409}, [r.json() for r in responses]
    switches = [r.json() for r in responses[:4] if r.status_code == 200]
    # Either the switch came first (one change, the rest no-ops) or the start did (all 409
    # batch_not_waiting); the start itself always succeeds.
    assert sum(s["changed"] for s in switches) <= 1
    assert responses[4].status_code == 200
    assert Batch.objects.get(pk=batch.pk).status == "pre_deploying"
    assert Deployment.objects.filter(release_app=release, superseded_at__isnull=True).count() == 1
