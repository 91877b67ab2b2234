"""Drone's notifications arrive late, twice, or out of order; the end state must not care.

500 notifications (pending -> running -> a final status for each build, the same apps and tags
every time, as Drone sends them) are ingested once in order and once shuffled with duplicates;
builds, images and every release's latest tag end up identical. `make soak` runs more seeds
(CHAOS_SEEDS).
"""

import os
import random

import pytest
from django.db import transaction

from builds.models import Build, BuildImage
from releases.models import ReleaseApp
from releases.services import create_batch
from releases.services.batches import AppChoice
from tests.factories import UserFactory
from tests.helpers import notify

pytestmark = pytest.mark.django_db

APPS = ["api", "web", "worker", "cron", "gateway"]
NOTIFICATIONS = 500
SEEDS = range(int(os.environ.get("CHAOS_SEEDS", "1")))


def notifications(rng: random.Random) -> list[tuple[int, dict[str, str], str]]:
    """(number, apps, status) in the order Drone would send them."""
    sent, number = [], 1
    while len(sent) < NOTIFICATIONS:
        number += 1
        apps = {app: f"{app}-{number}" for app in rng.sample(APPS, rng.randint(1, 3))}
        final = rng.choice(["success", "success", "success", "failure", "error", "killed"])
        for status in ["pending", "running", final][rng.randint(0, 2) :]:
            sent.append((number, apps, status))
    return sent[:NOTIFICATIONS]


def deliver(sent) -> dict:
    for number, apps, status in sent:
        notify(number, apps, status=status)
    return {
        "builds": sorted(Build.objects.values_list("repo", "number", "status")),
        "images": sorted(
            BuildImage.objects.values_list("build__number", "application__name", "image_tag")
        ),
        "releases": sorted(
            ReleaseApp.objects.values_list(
                "batch__name",
                "application__name",
                "image_tag",
                "latest_image_tag",
                "latest_build__number",
                "has_new_tag",
            )
        ),
    }


def in_savepoint(fn, *args):
    """Run `fn` and undo its writes, so both deliveries start from the same state."""
    savepoint = transaction.savepoint()
    try:
        return fn(*args)
    finally:
        transaction.savepoint_rollback(savepoint)


@pytest.mark.parametrize("seed", SEEDS)
def test_shuffled_duplicated_delivery_ends_like_in_order(seed):
    rng = random.Random(seed)
    user = UserFactory()
    notify(1, {app: f"{app}-1" for app in APPS})
    create_batch(name="open", apps=[AppChoice(app) for app in APPS], user=user)
    sent = notifications(rng)
    chaos = sent + rng.sample(sent, len(sent) // 3)
    rng.shuffle(chaos)

    in_order = in_savepoint(deliver, sent)
    shuffled = in_savepoint(deliver, chaos)

    assert shuffled == in_order
    # The run really moved "latest" on, so the comparison means something.
    assert {row[4] for row in in_order["releases"]} != {1}
