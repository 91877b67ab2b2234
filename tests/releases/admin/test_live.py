"""The live URLs behind the batch page, the release list and the release page: the same regions
the page shows, 304 while nothing changed, a constant number of queries."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from releases.services import start_pre_deploy
from tests.helpers import notify
from tests.pages import staff
from tests.releases.admin.test_query_counts import batch_of

pytestmark = pytest.mark.django_db


def poller(page) -> tuple[str, str]:
    """The live URL and ETag the page polls with."""
    content = page.content.decode()
    url = re.search(r'id="rt-live"[^>]*hx-get="([^"]+)"', content, flags=re.S).group(1)
    etag = re.search(r'data-etag="&quot;([0-9a-f]+)&quot;"', content).group(1)
    return url.replace("&amp;", "&"), f'"{etag}"'


@pytest.mark.parametrize("page_of", ["batch", "release list", "release"])
def test_304_until_something_changes_then_the_regions(client, switcher, batch, page_of):
    client.force_login(switcher)
    api = batch.releases.get(application__name="api")
    url = {
        "batch": reverse("admin:releases_batch_change", args=[batch.pk]),
        "release list": reverse("admin:releases_releaseapp_changelist"),
        "release": reverse("admin:releases_releaseapp_change", args=[api.pk]),
    }[page_of]
    live_url, etag = poller(client.get(url))

    unchanged = client.get(live_url, HTTP_IF_NONE_MATCH=etag)
    notify(3, {"api": "v3"}, repo="org/shop")
    changed = client.get(live_url, HTTP_IF_NONE_MATCH=etag)

    assert unchanged.status_code == 304 and unchanged.content == b""
    assert changed.status_code == 200
    assert changed["ETag"] != etag
    assert f'id="live-releaseapp-{api.pk}-latest_tag"' in changed.content.decode()
    assert ">v3</code>" in changed.content.decode()
    assert 'id="rt-live"' in changed.content.decode()  # the poller, with the new ETag
    assert client.get(live_url, HTTP_IF_NONE_MATCH=changed["ETag"]).status_code == 304


def test_a_stage_change_reaches_the_batch_page(client, switcher, engineer, batch):
    client.force_login(switcher)
    live_url, etag = poller(client.get(reverse("admin:releases_batch_change", args=[batch.pk])))

    start_pre_deploy(batch_id=batch.pk, user=engineer)
    answer = client.get(live_url, HTTP_IF_NONE_MATCH=etag).content.decode()

    assert f'id="live-batch-{batch.pk}-batch_status"' in answer
    assert "Deploying to pre" in answer
    assert "switch once its stage has finished" in answer  # the switch buttons are disabled now


def test_the_live_urls_need_the_view_permission(client, batch):
    stranger = staff("stranger")
    stranger.user_permissions.clear()
    client.force_login(stranger)

    answer = client.get(reverse("admin:releases_batch_live", args=[batch.pk]))

    assert answer.status_code == 403


def test_a_poll_costs_the_same_queries_whatever_the_batch_size(client, engineer):
    client.force_login(engineer)
    small, large = batch_of(2, engineer, 10), batch_of(7, engineer, 20)

    def count(url) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        return len(captured)

    def live(batch):
        return reverse("admin:releases_batch_live", args=[batch.pk])

    def listing(batch):
        ids = ",".join(str(pk) for pk in batch.releases.values_list("pk", flat=True))
        return reverse("admin:releases_releaseapp_live_list") + f"?ids={ids}"

    count(live(small))  # warms per-process caches
    assert count(live(small)) == count(live(large))
    assert count(listing(small)) == count(listing(large))
