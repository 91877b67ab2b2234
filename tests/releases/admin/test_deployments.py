"""The Deployments list: which batch each deployment belongs to, and a batch's deployments only."""

import pytest
from django.urls import reverse

from releases.services import create_batch, start_pre_deploy
from releases.services.batches import AppChoice
from tests.pages import row, text

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:deployments_deployment_changelist")


@pytest.fixture
def two_batches(batch, engineer):
    """Nov and Dec both deploy api to pre: "api" alone no longer says which."""
    december = create_batch(name="Dec", apps=[AppChoice("api")], user=engineer).batch
    start_pre_deploy(batch_id=batch.pk, user=engineer)
    start_pre_deploy(batch_id=december.pk, user=engineer)
    return batch, december


def test_each_deployment_links_its_batch(client, viewer, two_batches):
    _november, december = two_batches
    client.force_login(viewer)

    response = client.get(CHANGELIST)

    dec_api = row(response, "Dec</a>")
    assert reverse("admin:releases_batch_change", args=[december.pk]) in dec_api
    assert "api" in dec_api
    assert "column-batch_link" in response.content.decode()


def test_the_batch_filter_keeps_one_batchs_deployments(client, viewer, two_batches):
    november, december = two_batches
    client.force_login(viewer)

    page = client.get(CHANGELIST, {"batch": december.pk})

    shown = text(page)
    assert "1 deployment" in shown
    assert reverse("admin:releases_batch_change", args=[november.pk]) not in row(page, "api")
    sidebar = page.content.decode().split('id="changelist-filter"')[1]
    assert f"?batch={november.pk}" in sidebar and f"?batch={december.pk}" in sidebar


def test_the_batch_page_links_its_deployments(client, viewer, batch):
    client.force_login(viewer)

    page = client.get(reverse("admin:releases_batch_change", args=[batch.pk]))

    assert f"{CHANGELIST}?batch={batch.pk}" in page.content.decode()


def test_a_deployment_page_says_nothing_with_one_dash_and_its_title_in_chinese(
    client, viewer, batch, engineer
):
    start_pre_deploy(batch_id=batch.pk, user=engineer)
    deployment = batch.releases.get(application__name="web").deployments.get()
    client.force_login(viewer)
    url = reverse("admin:deployments_deployment_change", args=[deployment.pk])

    english = client.get(url).content.decode()
    chinese = client.get(url, HTTP_ACCEPT_LANGUAGE="zh-hans")

    assert '<div class="readonly">-</div>' not in english  # not started, not finished: "—"
    assert '<div class="readonly">—</div>' in english
    title = f"#{deployment.pk} 预发布 w1"
    assert title in text(chinese) and f"#{deployment.pk} pre " not in text(chinese)
