"""Admin pages cost the same number of queries whatever the number of releases on them."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from releases.services import create_batch, start_pre_deploy
from releases.services.batches import AppChoice
from tests.helpers import notify

pytestmark = pytest.mark.django_db


def batch_of(size: int, user, number: int):
    apps = {f"app{number}-{i}": "v1" for i in range(size)}
    notify(number, apps)
    batch = create_batch(name=f"b{number}", apps=[AppChoice(a) for a in apps], user=user).batch
    notify(number + 1, {a: "v2" for a in apps})
    start_pre_deploy(batch_id=batch.pk, user=user)
    return batch


def queries(client, url) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


def test_batch_page_and_release_list(client, engineer):
    client.force_login(engineer)
    small, large = batch_of(2, engineer, 10), batch_of(7, engineer, 20)

    def page(batch):
        return reverse("admin:releases_batch_change", args=[batch.pk])

    def listing(batch):
        return reverse("admin:releases_releaseapp_changelist") + f"?batch__id__exact={batch.pk}"

    queries(client, page(small))  # warms per-process caches (content types)
    assert queries(client, page(small)) == queries(client, page(large))
    assert queries(client, listing(small)) == queries(client, listing(large))
