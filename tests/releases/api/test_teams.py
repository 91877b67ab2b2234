"""Teams: the working permissions globally or per application (SPEC §12), through the API."""

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from guardian.shortcuts import assign_perm, remove_perm

from applications.models import Application
from releases.models import Batch
from releases.services import create_batch
from releases.services.batches import AppChoice
from tests.factories import UserFactory
from tests.helpers import READ_PERMISSIONS, notify, token_client

pytestmark = pytest.mark.django_db

SWITCH = "applications.switch_version"
DEPLOY = "applications.deploy_batch"


@pytest.fixture
def batch() -> Batch:
    """pay-api and web in a waiting batch, each with a newer tag built since."""
    notify(1, {"pay-api": "p1", "web": "w1"})
    lead = UserFactory(permissions=[DEPLOY])
    batch = create_batch(name="Nov", apps=[AppChoice("pay-api"), AppChoice("web")], user=lead)
    notify(2, {"pay-api": "p2", "web": "w2"})
    return batch.batch


@pytest.fixture
def payments():
    """The Payments team: it reads everything and holds nothing yet."""
    return Group.objects.create(name="Payments")


def member_of(group, username="carol"):
    user = UserFactory(username=username, permissions=READ_PERMISSIONS)
    user.groups.add(group)
    return user


def app(name: str) -> Application:
    return Application.objects.get(name=name)


def switch(client, batch, name: str):
    release = batch.releases.get(application__name=name)
    return client.post(f"/api/v1/releases/{release.pk}/switch-version", {}, format="json")


def status(client, batch, name: str) -> dict:
    release = batch.releases.get(application__name=name)
    return client.get(f"/api/v1/releases/{release.pk}/status").json()


def test_a_team_member_switches_their_app_and_is_refused_another(batch, payments):
    assign_perm(SWITCH, payments, app("pay-api"))
    client = token_client(member_of(payments))

    assert switch(client, batch, "pay-api").json()["changed"] is True

    refused = switch(client, batch, "web")
    assert refused.status_code == 403
    assert refused.json()["code"] == "permission_denied"
    assert refused.json()["detail"] == "You need the switch_version permission for web."
    assert batch.releases.get(application__name="web").image_tag == "w1"


def test_the_status_says_the_same_per_application(batch, payments):
    assign_perm(SWITCH, payments, app("pay-api"))
    client = token_client(member_of(payments))

    assert status(client, batch, "pay-api")["can_switch"] is True
    web = status(client, batch, "web")
    assert web["can_switch"] is False
    assert web["switch_blockers"] == [
        {"code": "permission_denied", "detail": "You need the switch_version permission for web."}
    ]


def test_the_refusal_is_in_the_readers_language(batch, payments):
    client = token_client(member_of(payments))

    refused = client.post(
        f"/api/v1/releases/{batch.releases.get(application__name='web').pk}/switch-version",
        {},
        format="json",
        HTTP_ACCEPT_LANGUAGE="zh-hans",
    )

    assert refused.status_code == 403
    assert refused.json()["detail"] == "您需要 web 的 switch_version 权限。"


def test_a_global_grant_still_works_for_every_application(batch):
    client = token_client(UserFactory(permissions=[*READ_PERMISSIONS, SWITCH]))

    assert switch(client, batch, "pay-api").json()["changed"] is True
    assert switch(client, batch, "web").json()["changed"] is True


def test_a_grant_to_a_user_works_like_one_to_their_group(batch):
    dana = UserFactory(username="dana", permissions=READ_PERMISSIONS)
    assign_perm(SWITCH, dana, app("web"))
    client = token_client(dana)

    assert switch(client, batch, "web").json()["changed"] is True
    assert switch(client, batch, "pay-api").status_code == 403


def test_revoking_works_at_once(batch, payments):
    assign_perm(SWITCH, payments, app("pay-api"))
    client = token_client(member_of(payments))
    assert status(client, batch, "pay-api")["can_switch"] is True

    remove_perm(SWITCH, payments, app("pay-api"))

    assert status(client, batch, "pay-api")["can_switch"] is False
    assert switch(client, batch, "pay-api").status_code == 403


def test_leaving_the_team_works_at_once(batch, payments):
    carol = member_of(payments)
    assign_perm(SWITCH, payments, app("pay-api"))
    client = token_client(carol)
    assert status(client, batch, "pay-api")["can_switch"] is True

    carol.groups.remove(payments)

    assert switch(client, batch, "pay-api").status_code == 403


@pytest.mark.parametrize("action", ["start-pre-deploy", "cancel"])
def test_deploy_batch_is_needed_for_every_application_of_the_batch(batch, payments, action):
    assign_perm(DEPLOY, payments, app("pay-api"))
    client = token_client(member_of(payments))
    url = f"/api/v1/batches/{batch.pk}/{action}"

    refused = client.post(url)
    assert refused.status_code == 403
    assert refused.json()["detail"] == "You need the deploy_batch permission for web."
    assert Batch.objects.get(pk=batch.pk).status == "pre_waiting"

    assign_perm(DEPLOY, payments, app("web"))
    assert client.post(url).json()["changed"] is True


def test_a_global_deploy_batch_starts_any_batch(batch):
    client = token_client(UserFactory(permissions=[*READ_PERMISSIONS, DEPLOY]))

    assert client.post(f"/api/v1/batches/{batch.pk}/start-pre-deploy").json()["changed"] is True


def test_the_application_says_what_you_may_do(batch, payments):
    assign_perm(SWITCH, payments, app("pay-api"))
    client = token_client(member_of(payments))

    assert client.get("/api/v1/applications/pay-api/").json()["you_may"] == {
        "switch_version": True,
        "deploy_batch": False,
    }
    assert client.get("/api/v1/applications/web/").json()["you_may"] == {
        "switch_version": False,
        "deploy_batch": False,
    }
    boss = token_client(UserFactory(permissions=[*READ_PERMISSIONS, SWITCH, DEPLOY]))
    assert boss.get("/api/v1/applications/web/").json()["you_may"] == {
        "switch_version": True,
        "deploy_batch": True,
    }


def test_every_api_403_names_the_missing_permission(batch):
    client = token_client(UserFactory(permissions=["releases.view_batch"]))

    reads = client.get("/api/v1/releases/")
    assert reads.status_code == 403
    assert reads.json()["detail"] == "You need the releases.view_releaseapp permission."
    creates = client.post("/api/v1/batches/", {"name": "x", "apps": [{"name": "web"}]})
    assert creates.json()["detail"] == "You need the releases.add_batch permission."
    notifies = client.post("/api/v1/builds/notify", {}, format="json")
    assert notifies.status_code == 403
    assert notifies.json()["detail"] == "You need the builds.notify_build permission."


# --- statement counts stay constant whatever the number of grants --------------------------


def _queries(call) -> int:
    with CaptureQueriesContext(connection) as captured:
        call()
    return len(captured)


def _many_grants(user, group, count: int) -> None:
    """`count` more applications granted to the user and to their group, several permissions."""
    names = [f"team-app-{n}" for n in range(count)]
    notify(90, dict.fromkeys(names, "v1"))
    for name in names:
        for permission in (SWITCH, DEPLOY, "applications.add_hold"):
            assign_perm(permission, user, app(name))
            assign_perm(permission, group, app(name))


def test_status_and_switch_cost_one_query_for_grants_however_many(batch, payments):
    carol = member_of(payments)
    assign_perm(SWITCH, payments, app("pay-api"))
    boss = UserFactory(username="boss", permissions=[*READ_PERMISSIONS, SWITCH])
    release = batch.releases.get(application__name="pay-api")
    status_url = f"/api/v1/releases/{release.pk}/status"
    switch_url = f"/api/v1/releases/{release.pk}/switch-version"

    def status_queries(user) -> int:
        client = token_client(user)
        client.get(status_url)  # warms what is cached across requests (content types)
        return _queries(lambda: client.get(status_url))

    def switch_queries(user, tag: str) -> int:
        client = token_client(user)
        client.get(status_url)
        notify(int(tag[1:]), {"pay-api": tag})
        return _queries(lambda: client.post(switch_url, {}, format="json").json()["changed"])

    switch_queries(boss, "p9")  # from now on each switch supersedes one pending deployment
    global_holder = (status_queries(boss), switch_queries(boss, "p10"))
    one_grant = (status_queries(carol), switch_queries(carol, "p11"))
    _many_grants(carol, payments, 25)
    many_grants = (status_queries(carol), switch_queries(carol, "p12"))

    assert one_grant == many_grants
    assert one_grant == (global_holder[0] + 1, global_holder[1] + 1)
