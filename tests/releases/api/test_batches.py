"""Batches: create, read, and the stage actions (SPEC §7)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from deployments.models import Deployment
from releases.models import Batch
from releases.services import create_batch, start_pre_deploy, start_prod_deploy
from releases.services.batches import AppChoice
from tests.factories import BatchFactory, UserFactory
from tests.helpers import deployment_mark_running, notify, run_stage

pytestmark = pytest.mark.django_db

DEPLOYER = ["applications.deploy_batch"]


@pytest.fixture
def built():
    notify(1, {"api": "v1", "web": "w1"})
    notify(2, {"api": "v2"})


@pytest.fixture
def batch(built):
    return create_batch(
        name="Nov", apps=[AppChoice("api"), AppChoice("web")], user=UserFactory()
    ).batch


def action_url(batch, name: str) -> str:
    return f"/api/v1/batches/{batch.pk}/{name}"


# --- create ---


def test_create_a_batch(client_with, built):
    client = client_with("releases.add_batch")

    response = client.post(
        "/api/v1/batches/",
        {"name": "Nov", "apps": [{"name": "api", "image_tag": "v1"}, {"name": "web"}]},
        format="json",
    )

    assert response.status_code == 201
    body = response.json()
    assert (body["changed"], body["deployments"]) == (True, [])
    assert (body["batch"]["name"], body["batch"]["status"]) == ("Nov", "pre_waiting")
    assert (body["batch"]["release_count"], body["batch"]["new_tag_count"]) == (2, 1)
    releases = {r["app"]: r for r in body["batch"]["releases"]}
    assert (releases["api"]["image_tag"], releases["api"]["has_new_tag"]) == ("v1", True)
    assert (releases["web"]["image_tag"], releases["web"]["has_new_tag"]) == ("w1", False)
    assert Batch.objects.get().created_by.username == body["batch"]["created_by"]


def test_create_the_same_batch_again_is_200_unchanged(client_with, built):
    client = client_with("releases.add_batch")
    request = {"name": "Nov", "apps": [{"name": "api"}]}
    first = client.post("/api/v1/batches/", request, format="json")

    again = client.post("/api/v1/batches/", request, format="json")

    assert again.status_code == 200
    assert again.json()["changed"] is False
    assert again.json()["batch"]["id"] == first.json()["batch"]["id"]
    assert Batch.objects.count() == 1


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"name": "Nov", "apps": [{"name": "web"}]}, 409, "batch_name_taken"),
        ({"name": "Dec", "apps": [{"name": "nope"}]}, 400, "unknown_app"),
        ({"name": "Dec", "apps": [{"name": "api", "image_tag": "v9"}]}, 400, "unknown_tag"),
        ({"name": "Dec", "apps": [{"name": "never-built"}]}, 400, "no_successful_build"),
        ({"name": "Dec", "apps": []}, 400, "invalid"),
        ({"name": "Dec", "apps": [{"name": "api"}, {"name": "api"}]}, 400, "duplicate_app"),
        ({"name": "", "apps": [{"name": "api"}]}, 400, "invalid"),
        ({"name": "Dec"}, 400, "invalid"),
        ({"name": "Dec", "apps": "api"}, 400, "invalid"),
        ({"name": "Dec", "apps": [{"image_tag": "v1"}]}, 400, "invalid"),
        ({"name": "D\u0000c", "apps": [{"name": "api"}]}, 400, "invalid"),
    ],
)
def test_create_a_batch_that_cannot_be_made(client_with, built, body, status, code):
    create_batch(name="Nov", apps=[AppChoice("api")], user=UserFactory())
    notify(3, {"never-built": "x1"}, status="failure")

    response = client_with("releases.add_batch").post("/api/v1/batches/", body, format="json")

    assert (response.status_code, response.json()["code"]) == (status, code), response.json()
    assert Batch.objects.count() == 1


# --- read ---


def test_list_and_detail(client_with, batch):
    client = client_with("releases.view_batch")

    listed = client.get("/api/v1/batches/").json()
    detail = client.get(f"/api/v1/batches/{batch.pk}/").json()

    assert listed["count"] == 1
    assert listed["results"][0]["id"] == batch.pk
    assert "releases" not in listed["results"][0]
    assert (listed["results"][0]["release_count"], listed["results"][0]["new_tag_count"]) == (2, 0)
    assert sorted(r["app"] for r in detail["releases"]) == ["api", "web"]


def test_list_filters_by_status(client_with, batch):
    BatchFactory(name="old")  # stays pre_waiting
    client = client_with("releases.view_batch")
    client_with("applications.deploy_batch").post(action_url(batch, "start-pre-deploy"))

    deploying = client.get("/api/v1/batches/?status=pre_deploying").json()["results"]

    assert [b["id"] for b in deploying] == [batch.pk]


def _list_queries(client, url) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries)


@pytest.mark.parametrize(
    ("url", "permission"),
    [
        ("/api/v1/batches/", "releases.view_batch"),
        ("/api/v1/releases/", "releases.view_releaseapp"),
        ("/api/v1/deployments/", "deployments.view_deployment"),
        ("/api/v1/builds/", "builds.view_build"),
    ],
)
def test_list_queries_do_not_grow_with_rows(client_with, url, permission):
    user = UserFactory(permissions=["applications.deploy_batch"])
    client = client_with(permission)
    notify(1, {"api": "v1"})
    run_stage(start_pre_deploy(batch_id=_batch(user, "a").pk, user=user))
    few = _list_queries(client, url)

    for n in range(2, 12):
        notify(n, {"api": f"v{n}", "web": f"w{n}", f"app-{n}": "v1"})
    for name in "bcdefgh":
        batch = _batch(user, name, ["api", "web"])
        run_stage(start_pre_deploy(batch_id=batch.pk, user=user))

    assert _list_queries(client, url) == few


def _batch(user, name, apps=("api",)):
    return create_batch(name=name, apps=[AppChoice(a) for a in apps], user=user).batch


# --- actions ---


def test_start_pre_deploy_queues_deployments(client_with, batch):
    response = client_with(*DEPLOYER).post(action_url(batch, "start-pre-deploy"))

    assert response.status_code == 200
    body = response.json()
    assert (body["changed"], body["batch"]["status"]) == (True, "pre_deploying")
    assert {r["status"] for r in body["batch"]["releases"]} == {"pre_deploying"}
    assert {(d["environment"], d["status"]) for d in body["deployments"]} == {("pre", "pending")}
    assert sorted(d["id"] for d in body["deployments"]) == sorted(
        Deployment.objects.values_list("pk", flat=True)
    )


def test_start_pre_deploy_again_is_200_unchanged(client_with, batch):
    client = client_with(*DEPLOYER)
    client.post(action_url(batch, "start-pre-deploy"))

    again = client.post(action_url(batch, "start-pre-deploy"))

    assert again.status_code == 200
    assert (again.json()["changed"], again.json()["deployments"]) == (False, [])
    assert Deployment.objects.count() == 2


def test_start_prod_deploy_after_pre_succeeded(client_with, batch):
    client = client_with(*DEPLOYER)
    run_stage(start_pre_deploy(batch_id=batch.pk, user=UserFactory(permissions=DEPLOYER)))

    response = client.post(action_url(batch, "start-prod-deploy"))
    again = client.post(action_url(batch, "start-prod-deploy"))

    assert (response.status_code, response.json()["batch"]["status"]) == (200, "prod_deploying")
    assert {d["environment"] for d in response.json()["deployments"]} == {"prod"}
    assert (again.status_code, again.json()["changed"]) == (200, False)


def test_start_prod_deploy_before_pre_is_409(client_with, batch):
    response = client_with(*DEPLOYER).post(action_url(batch, "start-prod-deploy"))

    assert (response.status_code, response.json()["code"]) == (409, "invalid_transition")
    assert Batch.objects.get(pk=batch.pk).status == "pre_waiting"


def test_start_pre_deploy_of_an_empty_batch_is_409(client_with):
    empty = BatchFactory()

    response = client_with(*DEPLOYER).post(action_url(empty, "start-pre-deploy"))

    assert (response.status_code, response.json()["code"]) == (409, "batch_empty")


def test_cancel_cancels_unfinished_deployments_and_deletes_their_jobs(
    client_with, batch, executor, django_capture_on_commit_callbacks
):
    stage = start_pre_deploy(batch_id=batch.pk, user=UserFactory(permissions=DEPLOYER))
    running = stage.deployments[0]
    deployment_mark_running(deployment_id=running.pk, job_name="rt-deploy-x", job_namespace="pre")
    client = client_with(*DEPLOYER)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(action_url(batch, "cancel"))
    again = client.post(action_url(batch, "cancel"))

    assert response.status_code == 200
    assert (response.json()["changed"], response.json()["batch"]["status"]) == (True, "cancelled")
    assert {d["status"] for d in response.json()["deployments"]} == {"cancelled"}
    assert executor.cancelled_ids() == [running.pk]
    assert (again.status_code, again.json()["changed"]) == (200, False)


def test_cancel_a_completed_batch_is_409(client_with, batch):
    user = UserFactory(permissions=DEPLOYER)
    run_stage(start_pre_deploy(batch_id=batch.pk, user=user))
    run_stage(start_prod_deploy(batch_id=batch.pk, user=user))
    assert Batch.objects.get(pk=batch.pk).status == "completed"

    response = client_with(*DEPLOYER).post(action_url(batch, "cancel"))

    assert (response.status_code, response.json()["code"]) == (409, "invalid_transition")


@pytest.mark.parametrize("name", ["start-pre-deploy", "start-prod-deploy", "cancel"])
def test_actions_on_an_unknown_batch_are_404(client_with, name):
    response = client_with(*DEPLOYER).post(f"/api/v1/batches/999999/{name}")

    assert (response.status_code, response.json()["code"]) == (404, "not_found")


def test_actions_answer_get_with_405(client_with, batch):
    response = client_with(*DEPLOYER, "releases.view_batch").get(action_url(batch, "cancel"))

    assert (response.status_code, response.json()["code"]) == (405, "method_not_allowed")


def test_a_batch_refusal_is_in_chinese_too(client_with, built):
    response = client_with("releases.add_batch").post(
        "/api/v1/batches/",
        {"name": "Nov", "apps": [{"name": "ghost"}]},
        format="json",
        HTTP_ACCEPT_LANGUAGE="zh-Hans",
    )

    assert response.json() == {
        "code": "unknown_app",
        "detail": "没有名为 ghost 的应用。",
        "fields": {"apps": ["未知应用：ghost"]},  # noqa: RUF001
    }
