"""The whole flow through the API, as Drone and a release engineer drive it."""

from types import SimpleNamespace

import pytest

from deployments.models import Deployment
from tests.helpers import run_stage

pytestmark = pytest.mark.django_db


def notify(client, number: int, apps: dict[str, str]):
    body = {
        "build_number": number,
        "build_status": "success",
        "apps": [{"name": n, "image_tag": t} for n, t in apps.items()],
        "repo": "org/shop",
    }
    response = client.post("/api/v1/builds/notify", body, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def reconcile(response) -> None:
    """What the reconciler would do: run every deployment the stage start queued, successfully."""
    ids = [d["id"] for d in response.json()["deployments"]]
    run_stage(SimpleNamespace(deployments=list(Deployment.objects.filter(pk__in=ids))))


def test_notify_create_switch_deploy_switch_again_complete(api):
    notify(api, 1, {"api": "v1", "web": "w1"})

    created = api.post(
        "/api/v1/batches/",
        {"name": "Nov", "apps": [{"name": "api"}, {"name": "web"}]},
        format="json",
    )
    assert created.status_code == 201
    batch_id = created.json()["batch"]["id"]

    def batch_of() -> dict:
        return api.get(f"/api/v1/batches/{batch_id}/").json()

    api_release = next(r["id"] for r in created.json()["batch"]["releases"] if r["app"] == "api")

    # A new build of api: everyone sees the new tag at once.
    detected = notify(api, 2, {"api": "v2"})
    assert detected["new_tags"] == [{"app": "api", "image_tag": "v2", "release_ids": [api_release]}]
    flagged = api.get("/api/v1/releases/?has_new_tag=true").json()["results"]
    assert [r["id"] for r in flagged] == [api_release]
    assert batch_of()["new_tag_count"] == 1

    switched = api.post(f"/api/v1/releases/{api_release}/switch-version", {}, format="json")
    assert (switched.json()["changed"], switched.json()["release"]["image_tag"]) == (True, "v2")

    pre = api.post(f"/api/v1/batches/{batch_id}/start-pre-deploy")
    assert pre.json()["batch"]["status"] == "pre_deploying"
    # While pre deploys, a newer tag shows but cannot be taken.
    notify(api, 3, {"api": "v3"})
    status = api.get(f"/api/v1/releases/{api_release}/status").json()
    assert (status["has_new_tag"], status["can_switch"]) == (True, False)
    assert [b["code"] for b in status["switch_blockers"]] == ["batch_not_waiting"]
    blocked = api.post(f"/api/v1/releases/{api_release}/switch-version", {}, format="json")
    assert (blocked.status_code, blocked.json()["code"]) == (409, "batch_not_waiting")

    reconcile(pre)
    assert batch_of()["status"] == "prod_waiting"

    # Switching in prod_waiting sends the batch back to pre, for that app only.
    status = api.get(f"/api/v1/releases/{api_release}/status").json()
    assert status["can_switch"] is True
    reopened = api.post(
        f"/api/v1/releases/{api_release}/switch-version",
        {"expected_image_tag": "v2"},
        format="json",
    )
    assert (reopened.json()["batch_status"], reopened.json()["release"]["image_tag"]) == (
        "pre_waiting",
        "v3",
    )
    assert len(reopened.json()["superseded_deployment_ids"]) == 1

    pre_again = api.post(f"/api/v1/batches/{batch_id}/start-pre-deploy")
    assert [d["image_tag"] for d in pre_again.json()["deployments"]] == ["v3"]
    reconcile(pre_again)
    assert batch_of()["status"] == "prod_waiting"

    prod = api.post(f"/api/v1/batches/{batch_id}/start-prod-deploy")
    assert {d["environment"] for d in prod.json()["deployments"]} == {"prod"}
    assert len(prod.json()["deployments"]) == 2
    reconcile(prod)

    final = batch_of()
    assert final["status"] == "completed"
    assert {(r["app"], r["image_tag"], r["status"]) for r in final["releases"]} == {
        ("api", "v3", "prod_deployed"),
        ("web", "w1", "prod_deployed"),
    }
    history = api.get(f"/api/v1/releases/{api_release}/status").json()["history"]
    assert [(d["environment"], d["image_tag"]) for d in history] == [
        ("prod", "v3"),
        ("pre", "v3"),
        ("pre", "v2"),
    ]
    # Completed: no stage can start again and it cannot be cancelled.
    assert api.post(f"/api/v1/batches/{batch_id}/start-prod-deploy").status_code == 409
    assert api.post(f"/api/v1/batches/{batch_id}/cancel").json()["code"] == "invalid_transition"
