"""Batches in the admin: list, the releases inline, and rollout buttons through the services."""

import re

import pytest
from django.urls import reverse

from deployments.models import Deployment
from releases.choices import BatchStatus
from releases.models import Batch
from releases.services import start_pre_deploy
from tests.helpers import run_stage
from tests.pages import messages_of, row, text

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:releases_batch_changelist")


def change_url(batch):
    return reverse("admin:releases_batch_change", args=[batch.pk])


def rollout_url(batch, transition):
    return reverse("admin:releases_batch_rollout", args=[batch.pk, transition])


def status_of(batch) -> str:
    return Batch.objects.get(pk=batch.pk).status


def test_list_shows_status_release_count_and_new_tag_count(client, viewer, batch):
    client.force_login(viewer)

    response = client.get(CHANGELIST)

    assert response.status_code == 200
    line = row(response, "Nov")
    assert 'data-status="pre_waiting"' in line
    assert "Waiting for pre" in line
    assert '<td class="field-release_count">2</td>' in line
    assert re.search(
        r'class="field-new_tag_count">(<span [^>]*>)?1 <span class="rt-badge rt-badge-new">', line
    )


def test_list_filters_by_status(client, viewer, batch, engineer):
    client.force_login(viewer)
    start_pre_deploy(batch_id=batch.pk, user=engineer)

    waiting = text(client.get(CHANGELIST, {"status__exact": BatchStatus.PRE_WAITING}))
    deploying = text(client.get(CHANGELIST, {"status__exact": BatchStatus.PRE_DEPLOYING}))

    assert "0 batches" in waiting
    assert "Nov" in deploying and "1 batch" in deploying


def test_change_page_shows_each_release_with_tags_badge_status_and_deployments(
    client, viewer, batch, engineer
):
    client.force_login(viewer)
    start_pre_deploy(batch_id=batch.pk, user=engineer)

    response = client.get(change_url(batch))

    assert response.status_code == 200
    api, web = row(response, ">api<"), row(response, ">web<")
    assert ">v1</code>" in api and ">v2</code>" in api
    assert "rt-badge-new" in api and "new tag" in api
    assert "rt-badge-new" not in web
    assert "Deploying to pre" in api
    deployment = Deployment.objects.get(release_app__application__name="api")
    assert reverse("admin:deployments_deployment_change", args=[deployment.pk]) in api


def test_status_is_not_editable(client, engineer, batch):
    client.force_login(engineer)

    page = client.get(change_url(batch))
    saved = client.post(change_url(batch), {"name": "renamed", "status": "completed"})

    assert 'name="status"' not in page.content.decode()
    assert 'name="_save"' not in page.content.decode()
    assert saved.status_code == 403
    assert (status_of(batch), Batch.objects.get(pk=batch.pk).name) == ("pre_waiting", "Nov")


def test_deployer_sees_the_buttons_of_the_transitions_the_status_allows(client, deployer, batch):
    client.force_login(deployer)

    waiting = client.get(change_url(batch)).content.decode()
    start_pre_deploy(batch_id=batch.pk, user=deployer)
    deploying = client.get(change_url(batch)).content.decode()

    assert rollout_url(batch, "start_pre_deploy") in waiting
    assert rollout_url(batch, "start_prod_deploy") not in waiting
    assert rollout_url(batch, "cancel") in waiting
    assert rollout_url(batch, "start_pre_deploy") not in deploying
    assert rollout_url(batch, "cancel") in deploying


def test_without_deploy_permission_there_are_no_rollout_buttons(client, switcher, batch):
    client.force_login(switcher)

    page = client.get(change_url(batch)).content.decode()

    assert "/rollout/" not in page


def test_start_pre_rollout_runs_the_service(client, deployer, batch):
    client.force_login(deployer)

    response = client.post(rollout_url(batch, "start_pre_deploy"), follow=True)

    assert response.redirect_chain == [(change_url(batch), 302)]
    assert status_of(batch) == BatchStatus.PRE_DEPLOYING
    assert Deployment.objects.filter(environment="pre", status="pending").count() == 2
    assert messages_of(response) == [
        "Rollout started: 2 deployments queued; the batch is now Deploying to pre."
    ]


def test_starting_again_changes_nothing(client, deployer, batch):
    client.force_login(deployer)
    client.post(rollout_url(batch, "start_pre_deploy"), follow=True)

    response = client.post(rollout_url(batch, "start_pre_deploy"), follow=True)

    assert Deployment.objects.count() == 2
    assert messages_of(response) == ["Nothing to do: the batch is already Deploying to pre."]


def test_start_prod_rollout_after_pre(client, deployer, batch):
    client.force_login(deployer)
    run_stage(start_pre_deploy(batch_id=batch.pk, user=deployer))

    response = client.post(rollout_url(batch, "start_prod_deploy"), follow=True)

    assert status_of(batch) == BatchStatus.PROD_DEPLOYING
    assert messages_of(response) == [
        "Rollout started: 2 deployments queued; the batch is now Deploying to prod."
    ]


def test_a_transition_the_status_forbids_is_refused_with_the_translated_reason(
    client, deployer, batch
):
    client.force_login(deployer)

    response = client.post(rollout_url(batch, "start_prod_deploy"), follow=True)

    assert status_of(batch) == BatchStatus.PRE_WAITING
    assert messages_of(response) == ["That is not possible in the batch's current status."]


def test_rollouts_need_post(client, deployer, batch):
    client.force_login(deployer)

    response = client.get(rollout_url(batch, "start_pre_deploy"))

    assert response.status_code == 405
    assert status_of(batch) == BatchStatus.PRE_WAITING


@pytest.mark.parametrize("transition", ["start_pre_deploy", "cancel"])
def test_without_deploy_permission_rollout_urls_are_forbidden(client, switcher, batch, transition):
    client.force_login(switcher)

    response = client.post(rollout_url(batch, transition))

    assert response.status_code == 403
    assert status_of(batch) == BatchStatus.PRE_WAITING


def test_cancel_asks_first_then_cancels_unfinished_deployments(client, deployer, batch):
    client.force_login(deployer)
    start_pre_deploy(batch_id=batch.pk, user=deployer)

    confirm = client.get(rollout_url(batch, "cancel"))
    assert status_of(batch) == BatchStatus.PRE_DEPLOYING
    assert "Cancel batch “Nov”?" in text(confirm)

    response = client.post(rollout_url(batch, "cancel"), follow=True)

    assert status_of(batch) == BatchStatus.CANCELLED
    assert set(Deployment.objects.values_list("status", flat=True)) == {"cancelled"}
    assert messages_of(response) == [
        "Batch cancelled. 2 unfinished deployments were cancelled; their Jobs are being deleted."
    ]
    assert "/rollout/" not in response.content.decode()


def test_csrf_is_required(deployer, batch):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(deployer)

    response = client.post(rollout_url(batch, "start_pre_deploy"))

    assert response.status_code == 403
    assert status_of(batch) == BatchStatus.PRE_WAITING


def test_anonymous_users_are_sent_to_log_in(client, batch):
    response = client.post(rollout_url(batch, "start_pre_deploy"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
    assert status_of(batch) == BatchStatus.PRE_WAITING


def test_cancelling_a_waiting_batch(client, deployer, batch):
    client.force_login(deployer)

    response = client.post(rollout_url(batch, "cancel"), follow=True)

    assert status_of(batch) == BatchStatus.CANCELLED
    assert messages_of(response) == ["Batch cancelled."]
