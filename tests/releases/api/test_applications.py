"""GET /api/v1/applications/ and /applications/{name}/: what runs where (SPEC §7)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from deployments.models import Deployment
from releases.services import create_batch, start_pre_deploy, start_prod_deploy
from releases.services.batches import AppChoice
from tests.factories import UserFactory
from tests.helpers import notify, old_deployments, run_stage

pytestmark = pytest.mark.django_db

VIEW = "applications.view_application"


@pytest.fixture
def history(executor):
    """api: v1 in prod, v2 passed pre and failed prod (batch Dec stays open); web: only built."""
    user = UserFactory(username="alice", permissions=["applications.deploy_batch"])
    notify(1, {"api": "v1"})
    nov = create_batch(name="Nov", apps=[AppChoice("api")], user=user).batch
    run_stage(start_pre_deploy(batch_id=nov.pk, user=user))
    run_stage(start_prod_deploy(batch_id=nov.pk, user=user))
    notify(2, {"api": "v2", "web": "w1"})
    dec = create_batch(name="Dec", apps=[AppChoice("api")], user=user).batch
    run_stage(start_pre_deploy(batch_id=dec.pk, user=user))
    run_stage(start_prod_deploy(batch_id=dec.pk, user=user), outcomes={"api": "failed"})
    return {"nov": nov, "dec": dec}


def test_an_application_says_what_runs_where(client_with, history):
    nov, dec = history["nov"], history["dec"]
    good = Deployment.objects.get(release_app__batch=nov, environment="prod")
    failed = Deployment.objects.get(release_app__batch=dec, environment="prod")
    pre = Deployment.objects.get(release_app__batch=dec, environment="pre")

    response = client_with(VIEW).get("/api/v1/applications/api/")

    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "api"
    assert body["latest"]["image_tag"] == "v2" and body["latest"]["build_number"] == 2
    assert body["open_releases"] == [dec.releases.get().pk]
    assert body["environments"]["prod"] == {
        "image_tag": "v1",
        "deployment_id": good.pk,
        "batch_id": nov.pk,
        "release_id": good.release_app_id,
        "finished_at": body["environments"]["prod"]["finished_at"],
        "started_by": "alice",
        "behind": True,
        "last_failed": {
            "image_tag": "v2",
            "deployment_id": failed.pk,
            "batch_id": dec.pk,
            "release_id": failed.release_app_id,
            "status": "failed",
            "finished_at": body["environments"]["prod"]["last_failed"]["finished_at"],
            "started_by": "alice",
            "error": "",
        },
    }
    assert body["environments"]["prod"]["finished_at"] is not None
    assert body["environments"]["pre"]["deployment_id"] == pre.pk
    assert body["environments"]["pre"]["behind"] is False
    assert body["environments"]["pre"]["last_failed"] is None


def test_an_app_never_deployed_has_null_environments(client_with, history):
    body = client_with(VIEW).get("/api/v1/applications/web/").json()

    assert body["environments"] == {"pre": None, "prod": None}
    assert body["latest"]["image_tag"] == "w1"
    assert body["open_releases"] == []


def test_the_list_is_paginated_and_filtered(client_with, history):
    client = client_with(VIEW)

    def names(query=""):
        response = client.get(f"/api/v1/applications/{query}")
        assert response.status_code == 200, response.json()
        return [row["name"] for row in response.json()["results"]]

    listing = client.get("/api/v1/applications/").json()
    assert (listing["count"], listing["next"], listing["previous"]) == (2, None, None)
    assert names() == ["api", "web"]
    assert names("?behind=prod") == ["api"]
    assert names("?behind=pre") == []
    assert names("?name=web") == ["web"]
    assert names("?name=nope") == []


@pytest.mark.parametrize("query", ["?behind=staging", "?behind=", "?page=9"])
def test_bad_filters_are_400_or_404_with_a_code(client_with, history, query):
    response = client_with(VIEW).get(f"/api/v1/applications/{query}")

    if query == "?page=9":
        assert (response.status_code, response.json()["code"]) == (404, "not_found")
    else:  # empty is not one of the schema's values either
        assert (response.status_code, response.json()["code"]) == (400, "invalid")
        assert "behind" in response.json()["fields"]


def test_unknown_application_is_a_json_404(client_with, history):
    response = client_with(VIEW).get("/api/v1/applications/nope/")

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


@pytest.mark.parametrize("url", ["/api/v1/applications/", "/api/v1/applications/api/"])
def test_reading_needs_the_view_permission(client_with, anonymous, history, url):
    assert anonymous.get(url).status_code == 401
    denied = client_with("releases.view_batch").get(url)
    assert (denied.status_code, denied.json()["code"]) == (403, "permission_denied")


def _list_queries(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/api/v1/applications/").status_code == 200
    return len(queries)


def test_the_list_costs_the_same_queries_whatever_the_history(client_with, history):
    client = client_with(VIEW)
    before = _list_queries(client)
    release = history["nov"].releases.get()
    old_deployments(release, 10_000)

    assert _list_queries(client) == before


@pytest.mark.parametrize("name", ["%00", "a%00b", "%F0%9F%9A%82", "x" * 300])
def test_any_name_filter_is_answered_without_a_server_error(client_with, history, name):
    response = client_with(VIEW).get(f"/api/v1/applications/?name={name}")

    assert response.status_code in (200, 400), response.content
