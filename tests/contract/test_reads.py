"""Deployments and builds: lists, filters, details (SPEC §7)."""

import pytest

from deployments.models import Deployment
from releases.services import create_batch, start_pre_deploy, switch_version
from releases.services.batches import AppChoice
from tests.factories import UserFactory
from tests.helpers import notify, run_stage

pytestmark = pytest.mark.django_db


@pytest.fixture
def history():
    """api: pre succeeded, then switched (superseded + a new pending pre); web: pre failed."""
    user = UserFactory(permissions=["applications.switch_version", "applications.deploy_batch"])
    notify(1, {"api": "v1", "web": "w1"}, repo="org/shop")
    notify(2, {"web": "w2"}, repo="org/web", status="failure")
    batch = create_batch(name="Nov", apps=[AppChoice("api"), AppChoice("web")], user=user).batch
    run_stage(start_pre_deploy(batch_id=batch.pk, user=user), outcomes={"web": "failed"})
    notify(3, {"api": "v2"}, repo="org/shop")
    api = batch.releases.get(application__name="api")
    switch_version(release_id=api.pk, user=user)
    return {"api": api.pk, "web": batch.releases.get(application__name="web").pk}


def _ids(client, url) -> set[int]:
    response = client.get(url)
    assert response.status_code == 200, response.json()
    return {row["id"] for row in response.json()["results"]}


def test_deployment_filters(client_with, history):
    client = client_with("deployments.view_deployment")
    api = list(Deployment.objects.filter(release_app=history["api"]).order_by("pk"))
    web = Deployment.objects.get(release_app=history["web"])
    superseded, switched = api

    assert _ids(client, "/api/v1/deployments/") == {superseded.pk, switched.pk, web.pk}
    assert _ids(client, f"/api/v1/deployments/?release={history['api']}") == {
        superseded.pk,
        switched.pk,
    }
    assert _ids(client, "/api/v1/deployments/?current=true") == {switched.pk, web.pk}
    assert _ids(client, "/api/v1/deployments/?current=false") == {superseded.pk}
    assert _ids(client, "/api/v1/deployments/?status=failed") == {web.pk}
    assert _ids(client, "/api/v1/deployments/?status=succeeded&status=failed") == {
        superseded.pk,
        web.pk,
    }
    assert _ids(client, "/api/v1/deployments/?environment=prod") == set()
    assert _ids(client, "/api/v1/deployments/?environment=pre&current=true") == {
        switched.pk,
        web.pk,
    }


def test_deployment_detail_shows_the_superseded_chain(client_with, history):
    superseded, switched = Deployment.objects.filter(release_app=history["api"]).order_by("pk")

    body = (
        client_with("deployments.view_deployment")
        .get(f"/api/v1/deployments/{superseded.pk}/")
        .json()
    )

    assert body["superseded_by"] == switched.pk
    assert (body["status"], body["current"], body["image_tag"]) == ("succeeded", False, "v1")
    assert body["superseded_at"] is not None


def test_build_filters_and_detail(client_with, history):
    client = client_with("builds.view_build")
    rows = client.get("/api/v1/builds/").json()["results"]
    by_number = {row["number"]: row for row in rows}

    assert [row["number"] for row in rows] == [3, 2, 1]  # newest first
    assert by_number[1]["images"] == [
        {"app": "api", "image_tag": "v1"},
        {"app": "web", "image_tag": "w1"},
    ]
    assert _ids(client, "/api/v1/builds/?repo=org/web") == {by_number[2]["id"]}
    assert _ids(client, "/api/v1/builds/?app=api") == {by_number[1]["id"], by_number[3]["id"]}
    assert _ids(client, "/api/v1/builds/?status=failure") == {by_number[2]["id"]}
    assert _ids(client, "/api/v1/builds/?app=api&repo=org/web") == set()
    detail = client.get(f"/api/v1/builds/{by_number[3]['id']}/").json()
    assert (detail["repo"], detail["status"], detail["images"]) == (
        "org/shop",
        "success",
        [{"app": "api", "image_tag": "v2"}],
    )


def test_lists_are_paginated(client_with, settings):
    for number in range(1, 56):
        notify(number, {"api": f"v{number}"})
    client = client_with("builds.view_build")

    first = client.get("/api/v1/builds/").json()
    second = client.get(first["next"]).json()

    assert (first["count"], len(first["results"]), len(second["results"])) == (55, 50, 5)
    assert second["next"] is None


@pytest.mark.parametrize(
    "query", ["?release=1.5", "?release=abc", "?environment=staging", "?status=done"]
)
def test_bad_filter_values_are_400(client_with, query):
    response = client_with("deployments.view_deployment").get(f"/api/v1/deployments/{query}")

    assert (response.status_code, response.json()["code"]) == (400, "invalid")
    assert response.json()["fields"]
