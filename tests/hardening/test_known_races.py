"""Interleavings forced one step at a time, for races too narrow to hit by chance.

Races found by forcing an interleaving that random timing rarely hits, kept as regressions.
"""

import threading

import pytest
from django.db import connection

import releases.services.batches as batches_module
from releases.models import ReleaseApp
from releases.services import create_batch
from releases.services.batches import AppChoice
from tests.factories import UserFactory
from tests.hardening import invariants
from tests.helpers import notify

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_build_landing_while_a_batch_is_created_becomes_its_latest_tag():
    user = UserFactory()
    notify(1, {"api": "v1"})
    chosen, ingested = threading.Event(), threading.Event()
    original = batches_module._choose_builds

    def choose_then_let_a_build_land(**kwargs):
        result = original(**kwargs)
        chosen.set()
        # With the fix the build blocks until this batch commits, so do not wait for ever.
        ingested.wait(timeout=3)
        return result

    def drone():
        try:
            chosen.wait(timeout=30)
            notify(2, {"api": "v2"})
        finally:
            ingested.set()
            connection.close()

    batches_module._choose_builds = choose_then_let_a_build_land
    thread = threading.Thread(target=drone)
    thread.start()
    try:
        create_batch(name="Nov", apps=[AppChoice("api")], user=user)
    finally:
        batches_module._choose_builds = original
        thread.join(timeout=30)

    release = ReleaseApp.objects.get()
    assert invariants.latest_tag_is_highest_successful_build() == []
    assert (release.latest_image_tag, release.has_new_tag) == ("v2", True)
