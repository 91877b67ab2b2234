"""Releases: list and filters, switch-version (SPEC §5) and status (SPEC §6)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from deployments.models import Deployment
from releases.choices import BatchStatus, ReleaseStatus
from releases.models import Batch, ReleaseApp
from releases.services import cancel_batch, create_batch, start_pre_deploy, switch_version
from releases.services.batches import AppChoice
from tests.factories import UserFactory
from tests.helpers import deployment_mark_running, notify, nov_batch, run_stage

pytestmark = pytest.mark.django_db

SWITCHER = ["applications.switch_version"]


@pytest.fixture
def lead():
    return UserFactory(permissions=["applications.switch_version", "applications.deploy_batch"])


@pytest.fixture
def release(lead):
    """api at v1 in a waiting batch, with v2 built since: a new tag to switch to."""
    batch = nov_batch(lead, new_tag=True)
    return batch.releases.get(application__name="api")


def switch_url(release) -> str:
    return f"/api/v1/releases/{release.pk}/switch-version"


def status_url(release) -> str:
    return f"/api/v1/releases/{release.pk}/status"


def _state(release) -> tuple:
    release = ReleaseApp.objects.select_related("batch").get(pk=release.pk)
    return (
        release.image_tag,
        release.status,
        release.batch.status,
        Deployment.objects.filter(release_app=release).count(),
    )


# --- switch-version ---


def test_switch_to_the_latest_tag(client_with, release):
    client = client_with(*SWITCHER)

    response = client.post(switch_url(release), {}, format="json")

    assert response.status_code == 200
    body = response.json()
    deployment = Deployment.objects.get(release_app=release)
    assert body["changed"] is True
    assert body["previous_image_tag"] == "v1"
    assert body["batch_status"] == "pre_waiting"
    assert body["superseded_deployment_ids"] == []
    assert (body["release"]["image_tag"], body["release"]["has_new_tag"]) == ("v2", False)
    assert body["release"]["status"] == "pending"
    assert body["deployment"]["id"] == deployment.pk
    assert (body["deployment"]["environment"], body["deployment"]["status"]) == ("pre", "pending")


def test_switch_to_a_named_older_tag_with_the_expected_tag(client_with, release):
    notify(3, {"api": "v3"})
    client = client_with(*SWITCHER)

    response = client.post(
        switch_url(release), {"image_tag": "v2", "expected_image_tag": "v1"}, format="json"
    )

    assert response.status_code == 200
    assert response.json()["release"]["image_tag"] == "v2"
    assert response.json()["release"]["has_new_tag"] is True  # v3 is still newer


def test_switch_again_to_the_same_tag_is_200_unchanged(client_with, release):
    client = client_with(*SWITCHER)
    client.post(switch_url(release), {"image_tag": "v2"}, format="json")
    before = _state(release)

    response = client.post(switch_url(release), {"image_tag": "v2"}, format="json")

    assert response.status_code == 200
    assert (response.json()["changed"], response.json()["deployment"]) == (False, None)
    assert _state(release) == before


def test_a_switch_sent_again_after_a_lost_answer_is_200_unchanged(client_with, release):
    client = client_with(*SWITCHER)
    body = {"image_tag": "v2", "expected_image_tag": "v1"}
    first = client.post(switch_url(release), body, format="json")

    again = client.post(switch_url(release), body, format="json")

    assert (first.status_code, first.json()["changed"]) == (200, True)
    assert (again.status_code, again.json()["changed"]) == (200, False)
    assert again.json()["release"]["image_tag"] == "v2"


def test_switch_in_a_completed_batch_is_409_batch_closed(client_with, release):
    Batch.objects.filter(pk=release.batch_id).update(status=BatchStatus.COMPLETED)

    response = client_with(*SWITCHER).post(switch_url(release), {}, format="json")

    assert response.status_code == 409
    assert response.json()["code"] == "batch_closed"
    assert response.json()["detail"] == "The batch is completed; it can no longer change."


def test_switch_without_permission_is_403(client_with, release):
    before = _state(release)

    response = client_with("releases.view_releaseapp").post(switch_url(release), {}, format="json")

    assert (response.status_code, response.json()["code"]) == (403, "permission_denied")
    assert _state(release) == before


def test_switch_with_a_stale_expected_tag_is_409(client_with, release):
    before = _state(release)

    response = client_with(*SWITCHER).post(
        switch_url(release), {"expected_image_tag": "v0"}, format="json"
    )

    assert (response.status_code, response.json()["code"]) == (409, "stale_version")
    assert _state(release) == before


def test_switch_to_a_tag_no_successful_build_made_is_400(client_with, release):
    notify(3, {"api": "v3"}, status="failure")
    before = _state(release)

    for tag in ("v3", "v9"):
        response = client_with(*SWITCHER).post(
            switch_url(release), {"image_tag": tag}, format="json"
        )

        assert (response.status_code, response.json()["code"]) == (400, "unknown_tag")
        assert "image_tag" in response.json()["fields"]
    assert _state(release) == before


def test_switch_while_the_batch_deploys_is_409(client_with, release, lead):
    start_pre_deploy(batch_id=release.batch_id, user=lead)
    before = _state(release)

    response = client_with(*SWITCHER).post(switch_url(release), {}, format="json")

    assert (response.status_code, response.json()["code"]) == (409, "batch_not_waiting")
    assert _state(release) == before


def test_switch_while_any_deployment_of_the_release_runs_is_409(client_with, release, lead):
    # A stale running deployment in a waiting batch: the reconciler has not caught up yet.
    stage = start_pre_deploy(batch_id=release.batch_id, user=lead)
    run_stage(stage, outcomes={"web": "succeeded", "api": "failed"})
    assert Batch.objects.get(pk=release.batch_id).status == BatchStatus.PRE_WAITING
    switch_version(release_id=release.pk, user=lead, image_tag="v2")
    old = Deployment.objects.filter(release_app=release).order_by("pk").first()
    Deployment.objects.filter(pk=old.pk).update(status="running")
    before = _state(release)

    response = client_with(*SWITCHER).post(switch_url(release), {"image_tag": "v1"}, format="json")

    assert (response.status_code, response.json()["code"]) == (409, "deployment_in_progress")
    assert _state(release) == before


def test_switch_in_prod_waiting_sends_the_batch_back_to_pre(client_with, release, lead):
    run_stage(start_pre_deploy(batch_id=release.batch_id, user=lead))
    pre = Deployment.objects.get(release_app=release, environment="pre")

    response = client_with(*SWITCHER).post(switch_url(release), {}, format="json")

    assert response.json()["batch_status"] == BatchStatus.PRE_WAITING
    assert response.json()["superseded_deployment_ids"] == [pre.pk]
    assert Batch.objects.get(pk=release.batch_id).status == BatchStatus.PRE_WAITING


@pytest.mark.parametrize(
    "body",
    [
        {"image_tag": True},
        {"image_tag": ""},
        {"image_tag": "v" * 129},
        {"expected_image_tag": ["v1"]},
        ["v2"],
    ],
)
def test_switch_with_a_malformed_body_is_400(client_with, release, body):
    before = _state(release)

    response = client_with(*SWITCHER).post(switch_url(release), body, format="json")

    assert (response.status_code, response.json()["code"]) == (400, "invalid")
    assert _state(release) == before


def test_switch_with_broken_json_is_400(client_with, release):
    response = client_with(*SWITCHER).post(
        switch_url(release), b'{"image_tag":', content_type="application/json"
    )

    assert (response.status_code, response.json()["code"]) == (400, "invalid")


def test_switch_of_an_unknown_release_is_404(client_with):
    response = client_with(*SWITCHER).post("/api/v1/releases/999999/switch-version", {})

    assert (response.status_code, response.json()["code"]) == (404, "not_found")


# --- status ---


def test_status_of_a_switchable_release(client_with, release):
    response = client_with("releases.view_releaseapp", *SWITCHER).get(status_url(release))

    assert response.status_code == 200
    assert response.json() == {
        "id": release.pk,
        "app": "api",
        "batch": {"id": release.batch_id, "name": "Nov", "status": "pre_waiting"},
        "status": "pending",
        "image_tag": "v1",
        "latest_image_tag": "v2",
        "has_new_tag": True,
        "latest_build_number": 2,
        "tag_updated_at": None,
        "tag_updated_by": None,
        "can_switch": True,
        "switch_blockers": [],
        "holds": [],
        "current_deployments": [],
        "history": [],
    }


def test_status_reports_every_blocker_for_the_requesting_user(client_with, release, lead):
    stage = start_pre_deploy(batch_id=release.batch_id, user=lead)
    api = next(d for d in stage.deployments if d.release_app_id == release.pk)
    deployment_mark_running(deployment_id=api.pk, job_name="rt-deploy-1", job_namespace="rt-pre")

    viewer = client_with("releases.view_releaseapp").get(status_url(release)).json()
    switcher = client_with("releases.view_releaseapp", *SWITCHER).get(status_url(release)).json()

    assert viewer["can_switch"] is False
    assert [b["code"] for b in viewer["switch_blockers"]] == [
        "permission_denied",
        "batch_not_waiting",
        "deployment_in_progress",
    ]
    assert all(b["detail"] for b in viewer["switch_blockers"])
    assert [b["code"] for b in switcher["switch_blockers"]] == [
        "batch_not_waiting",
        "deployment_in_progress",
    ]
    assert [d["id"] for d in switcher["current_deployments"]] == [api.pk]
    assert switcher["current_deployments"][0]["status"] == "running"


def test_status_history_is_newest_first_and_shows_the_superseded_chain(client_with, release, lead):
    switch_version(release_id=release.pk, user=lead, image_tag="v2")
    switch_version(release_id=release.pk, user=lead, image_tag="v1")

    body = client_with("releases.view_releaseapp").get(status_url(release)).json()

    first, second = Deployment.objects.filter(release_app=release).order_by("pk")
    assert [d["id"] for d in body["history"]] == [second.pk, first.pk]
    assert body["history"][1]["superseded_by"] == second.pk
    assert body["history"][1]["status"] == "cancelled"
    assert [d["id"] for d in body["current_deployments"]] == [second.pk]
    assert (body["tag_updated_by"], body["image_tag"]) == (lead.username, "v1")


def _status_queries(client, release) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(status_url(release)).status_code == 200
    return len(queries)


def test_status_takes_as_many_queries_with_a_long_history_as_with_none(client_with, release, lead):
    client = client_with("releases.view_releaseapp", *SWITCHER)
    without_history = _status_queries(client, release)
    # The token with its user and permissions, the release, its newest and current deployments,
    # the holds covering it.
    assert without_history == 4

    for _ in range(30):
        switch_version(release_id=release.pk, user=lead, image_tag="v2")
        switch_version(release_id=release.pk, user=lead, image_tag="v1")
    assert Deployment.objects.filter(release_app=release).count() == 60

    assert _status_queries(client, release) == without_history
    assert len(client.get(status_url(release)).json()["history"]) == 50


def test_status_needs_the_view_permission(client_with, release):
    response = client_with(*SWITCHER).get(status_url(release))

    assert (response.status_code, response.json()["code"]) == (403, "permission_denied")


def test_status_of_an_unknown_release_is_404(client_with):
    response = client_with("releases.view_releaseapp").get("/api/v1/releases/999999/status")

    assert (response.status_code, response.json()["code"]) == (404, "not_found")


# --- list and retrieve ---


def test_release_filters(client_with, release, lead):
    other = create_batch(name="Dec", apps=[AppChoice("api", "v2")], user=lead).batch
    client = client_with("releases.view_releaseapp")

    def ids(query: str) -> set[int]:
        response = client.get(f"/api/v1/releases/?{query}")
        assert response.status_code == 200
        return {r["id"] for r in response.json()["results"]}

    api_nov, web_nov = (
        release.pk,
        ReleaseApp.objects.get(batch=release.batch, application__name="web").pk,
    )
    api_dec = other.releases.get().pk
    assert ids("") == {api_nov, web_nov, api_dec}
    assert ids(f"batch={release.batch_id}") == {api_nov, web_nov}
    assert ids("app=api") == {api_nov, api_dec}
    assert ids("has_new_tag=true") == {api_nov}
    assert ids("has_new_tag=false") == {web_nov, api_dec}
    assert ids("status=pending") == {api_nov, web_nov, api_dec}
    assert ids("status=pre_deployed") == set()
    assert ids("app=api&has_new_tag=false") == {api_dec}


def test_release_filter_with_a_bad_value_is_400(client_with, release):
    response = client_with("releases.view_releaseapp").get("/api/v1/releases/?status=shipped")

    assert (response.status_code, response.json()["code"]) == (400, "invalid")
    assert "status" in response.json()["fields"]


def test_release_detail(client_with, release):
    response = client_with("releases.view_releaseapp").get(f"/api/v1/releases/{release.pk}/")

    assert response.status_code == 200
    assert response.json()["app"] == "api"
    assert (response.json()["latest_image_tag"], response.json()["has_new_tag"]) == ("v2", True)
    assert response.json()["status"] == ReleaseStatus.PENDING


def test_status_written_out_equals_what_drfs_field_machinery_writes(release, lead):
    """The status and its deployments are serialised by hand for speed; every field must say
    what the declared fields would (all states: running, finished, superseded, by nobody)."""
    from rest_framework import serializers
    from rest_framework.test import APIRequestFactory

    from applications.deploy_config import DEPLOY_CONFIG_PERMISSION
    from deployments.api.serializers import DeploymentSerializer
    from releases.api.serializers import ReleaseStatusSerializer
    from releases.selectors import release_status

    run_stage(start_pre_deploy(batch_id=release.batch_id, user=lead))
    switch_version(release_id=release.pk, user=lead, image_tag="v2")
    deployment_mark_running(
        deployment_id=Deployment.objects.latest("pk").pk, job_name="rt-x", job_namespace="ns"
    )
    Deployment.objects.filter(pk=Deployment.objects.earliest("pk").pk).update(created_by=None)
    request = APIRequestFactory().get("/")
    request.user = UserFactory(permissions=[DEPLOY_CONFIG_PERMISSION])
    context = {"request": request}
    view = release_status(release_id=release.pk, user=lead)
    assert len(view.history) == 2 and view.current_deployments

    for deployment in view.history:
        by_hand = DeploymentSerializer(deployment, context=context).data
        generic = serializers.ModelSerializer.to_representation(
            DeploymentSerializer(context=context), deployment
        )
        assert by_hand == generic
    serializer = ReleaseStatusSerializer(view, context=context)
    assert serializer.data == serializers.Serializer.to_representation(serializer, view)


def test_has_new_tag_lists_only_releases_that_can_still_switch(client_with, release, lead):
    closed = create_batch(name="Old", apps=[AppChoice("api", "v1")], user=lead).batch
    cancel_batch(batch_id=closed.pk, user=lead)
    stale = closed.releases.get()
    assert stale.has_new_tag  # v2 is newer, but a cancelled batch can never switch to it
    client = client_with("releases.view_releaseapp")

    def ids(query: str) -> set[int]:
        return {r["id"] for r in client.get(f"/api/v1/releases/?{query}").json()["results"]}

    assert ids("has_new_tag=true") == {release.pk}
    assert stale.pk in ids("has_new_tag=false")
    assert stale.pk in ids(f"batch={closed.pk}")  # still there, flag and all, in its batch


def test_switch_refusals_are_in_chinese_too(client_with, release):
    client = client_with(*SWITCHER)

    stale = client.post(
        switch_url(release),
        {"expected_image_tag": "v0"},
        format="json",
        HTTP_ACCEPT_LANGUAGE="zh-Hans",
    )
    unknown = client.post(
        switch_url(release), {"image_tag": "v9"}, format="json", HTTP_ACCEPT_LANGUAGE="zh-Hans"
    )

    assert stale.json()["detail"] == "该发布当前为 v1，而不是 v0；请刷新后重试。"  # noqa: RUF001
    assert unknown.json() == {
        "code": "unknown_tag",
        "detail": "api 没有产出 v9 的成功构建。",
        "fields": {"image_tag": ["不是此应用成功构建的标签。"]},
    }
