"""backfill_latest_tags beside live traffic: real threads, transactions and row locks."""

import pytest

from releases.models import ReleaseApp
from releases.services import (
    backfill_latest_tags,
    create_batch,
    start_pre_deploy,
    switch_version,
)
from releases.services.batches import AppChoice
from tests.factories import UserFactory
from tests.helpers import notify, race, record_unseen

pytestmark = pytest.mark.django_db(transaction=True)

APPS = [f"app{i}" for i in range(12)]


def test_backfill_runs_beside_switches_detection_and_a_stage_start(executor):
    user = UserFactory(permissions=["applications.switch_version", "applications.deploy_batch"])
    notify(1, {name: "v1" for name in APPS})
    batches = [
        create_batch(name=f"b{n}", apps=[AppChoice(a) for a in APPS], user=user).batch
        for n in range(3)
    ]
    notify(2, {name: "v2" for name in APPS})  # every release now sees v2
    # A build detection never saw (a lost notification): only the backfill finds it.
    record_unseen(3, dict.fromkeys(APPS, "v3"))
    first = list(batches[0].releases.order_by("pk"))

    def switches():
        return [switch_version(release_id=r.pk, user=user, image_tag="v2").changed for r in first]

    results = race(
        lambda: backfill_latest_tags(chunk_size=5),
        switches,
        lambda: notify(4, {APPS[0]: "v4"}),
        lambda: start_pre_deploy(batch_id=batches[1].pk, user=user),
        lambda: backfill_latest_tags(chunk_size=7),
    )

    assert not [r for r in results if isinstance(r, Exception)], results
    assert results[1] == [True] * len(APPS)
    # Whatever the interleaving, every open release ends at its app's newest successful build,
    # and one more pass has nothing left to do.
    assert backfill_latest_tags().changes == []
    pairs = set(ReleaseApp.objects.values_list("application__name", "latest_image_tag"))
    assert pairs == {(name, "v4" if name == APPS[0] else "v3") for name in APPS}
