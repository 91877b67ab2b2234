"""Who may call what: tokens (Bearer and Token), sessions, and the permission of each endpoint."""

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from releases.services import create_batch, start_pre_deploy
from releases.services.batches import AppChoice
from tests.factories import UserFactory
from tests.helpers import ALL_PERMISSIONS, group_member, notify, run_stage, token_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    """Batches waiting for prod and for pre, a newer tag: every write endpoint can succeed."""
    notify(1, {"api": "v1"})
    user = UserFactory(permissions=["applications.deploy_batch"])
    batch = create_batch(name="Nov", apps=[AppChoice("api")], user=user).batch
    run_stage(start_pre_deploy(batch_id=batch.pk, user=user))
    notify(2, {"api": "v2"})
    waiting = create_batch(name="Fresh", apps=[AppChoice("api")], user=user).batch
    return {"batch": batch.pk, "release": batch.releases.get().pk, "waiting_batch": waiting.pk}


WRITES = {
    "notify": (
        "builds.notify_build",
        lambda w: "/api/v1/builds/notify",
        {
            "build_number": 3,
            "build_status": "success",
            "apps": [{"name": "api", "image_tag": "v3"}],
        },
        201,
    ),
    "create batch": (
        "releases.add_batch",
        lambda w: "/api/v1/batches/",
        {"name": "Dec", "apps": [{"name": "api"}]},
        201,
    ),
    "start pre": (
        "applications.deploy_batch",
        lambda w: f"/api/v1/batches/{w['waiting_batch']}/start-pre-deploy",
        None,
        200,
    ),
    "start prod": (
        "applications.deploy_batch",
        lambda w: f"/api/v1/batches/{w['batch']}/start-prod-deploy",
        None,
        200,
    ),
    "cancel": (
        "applications.deploy_batch",
        lambda w: f"/api/v1/batches/{w['batch']}/cancel",
        None,
        200,
    ),
    "switch version": (
        "applications.switch_version",
        lambda w: f"/api/v1/releases/{w['release']}/switch-version",
        {},
        200,
    ),
}


@pytest.mark.parametrize("endpoint", WRITES.keys())
def test_anonymous_writes_are_401(world, anonymous, endpoint):
    _, url, body, _ = WRITES[endpoint]

    response = anonymous.post(url(world), body, format="json")

    assert (response.status_code, response.json()["code"]) == (401, "not_authenticated")
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("endpoint", WRITES.keys())
def test_writes_without_their_permission_are_403(world, endpoint):
    permission, url, body, _ = WRITES[endpoint]
    client = token_client(UserFactory(permissions=[p for p in ALL_PERMISSIONS if p != permission]))

    response = client.post(url(world), body, format="json")

    assert (response.status_code, response.json()["code"]) == (403, "permission_denied")


@pytest.mark.parametrize("endpoint", WRITES.keys())
def test_writes_with_their_permission_alone_succeed(world, endpoint):
    permission, url, body, status = WRITES[endpoint]
    client = token_client(UserFactory(permissions=[permission]))

    response = client.post(url(world), body, format="json")

    assert response.status_code == status, response.json()


READS = {
    "releases.view_batch": "/api/v1/batches/",
    "releases.view_releaseapp": "/api/v1/releases/",
    "deployments.view_deployment": "/api/v1/deployments/",
    "builds.view_build": "/api/v1/builds/",
}


@pytest.mark.parametrize(("permission", "url"), READS.items())
def test_reads_need_authentication_and_the_view_permission(world, anonymous, permission, url):
    others = [p for p in READS if p != permission]

    assert anonymous.get(url).status_code == 401
    assert token_client(UserFactory(permissions=others)).get(url).status_code == 403
    assert token_client(UserFactory(permissions=[permission])).get(url).status_code == 200


def test_drf_token_keyword_works_too(world):
    client = token_client(UserFactory(permissions=["releases.view_batch"]), keyword="Token")

    assert client.get("/api/v1/batches/").status_code == 200


def test_a_session_works_for_the_browsable_api(world):
    client = APIClient()
    client.force_login(UserFactory(permissions=["releases.view_batch"]))

    assert client.get("/api/v1/batches/").status_code == 200


@pytest.mark.parametrize(
    "header",
    ["Bearer not-a-token", "Bearer", "Bearer two tokens", "Token 0000", "Bearer \u00e9t\u00e9"],
)
def test_a_bad_token_is_401(world, header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)

    response = client.get("/api/v1/batches/")

    assert (response.status_code, response.json()["code"]) == (401, "authentication_failed")


def test_an_inactive_users_token_is_refused(world):
    user = UserFactory(permissions=["releases.view_batch"])
    client = token_client(user)
    user.is_active = False
    user.save(update_fields=["is_active"])

    assert client.get("/api/v1/batches/").status_code == 401


def test_a_group_permission_counts_and_is_read_with_the_token_in_one_query(world):
    user, _ = group_member("viewers", "view_batch")
    client = token_client(user)

    with CaptureQueriesContext(connection) as queries:
        assert client.get(f"/api/v1/batches/{world['batch']}/").status_code == 200

    assert sum("authtoken_token" in q["sql"] for q in queries.captured_queries) == 1
    assert not any(
        "auth_permission" in q["sql"] and "authtoken_token" not in q["sql"]
        for q in queries.captured_queries
    )


def test_a_deleted_token_is_refused_by_the_very_next_request(world):
    user = UserFactory(permissions=["releases.view_batch"])
    client = token_client(user)
    assert client.get("/api/v1/batches/").status_code == 200

    Token.objects.filter(user=user).delete()

    assert client.get("/api/v1/batches/").status_code == 401


def test_a_revoked_permission_is_refused_by_the_very_next_request(world):
    user = UserFactory(permissions=["releases.view_batch", "releases.view_releaseapp"])
    client = token_client(user)
    assert client.get(f"/api/v1/releases/{world['release']}/status").status_code == 200

    user.user_permissions.remove(Permission.objects.get(codename="view_releaseapp"))

    assert client.get(f"/api/v1/releases/{world['release']}/status").status_code == 403
    assert client.get("/api/v1/batches/").status_code == 200


def test_leaving_a_group_revokes_its_permissions_at_the_very_next_request(world):
    user, group = group_member("engineers", "notify_build")
    client = token_client(user)
    notify_body = {"build_number": 7, "build_status": "success", "apps": []}
    assert client.post("/api/v1/builds/notify", notify_body).status_code == 201

    user.groups.remove(group)

    assert client.post("/api/v1/builds/notify", notify_body).status_code == 403


def test_a_token_sent_without_its_scheme_is_told_how_to_send_it(world):
    key = Token.objects.create(user=UserFactory(permissions=["releases.view_batch"])).key
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=key)

    response = client.get("/api/v1/batches/")

    assert (response.status_code, response.json()["code"]) == (401, "authentication_failed")
    assert response.json()["detail"] == "Send the token as 'Authorization: Bearer <token>'."
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_the_how_to_send_it_hint_is_in_chinese_too(world):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="0123456789abcdef")

    response = client.get("/api/v1/batches/", HTTP_ACCEPT_LANGUAGE="zh-Hans")

    assert response.json()["detail"] == "请以 'Authorization: Bearer <token>' 的形式发送令牌。"
