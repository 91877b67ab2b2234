"""A signed-in user's request: the session, then the user with every global permission in one
query (utilities/auth.py, utilities/sessions.py); nothing kept from one request to the next."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.contrib.sessions.models import Session
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.factories import UserFactory
from tests.helpers import group_member, notify

pytestmark = pytest.mark.django_db

BATCHES = "/api/v1/batches/"


@pytest.fixture
def signed_in(client):
    notify(1, {"api": "v1"})

    def sign_in(user):
        client.force_login(user)
        return client

    return sign_in


def test_the_session_then_the_user_with_their_own_and_group_permissions_in_one_query(signed_in):
    user, _ = group_member("viewers", "view_batch", "releases.view_releaseapp")
    client = signed_in(user)

    with CaptureQueriesContext(connection) as queries:
        assert client.get(BATCHES).status_code == 200

    sqls = [q["sql"] for q in queries.captured_queries]
    assert "django_session" in sqls[0] and "auth_user" in sqls[1]
    assert not any("auth_permission" in q for q in sqls[2:])  # no more reads of permissions


def test_a_revoked_permission_is_refused_by_the_very_next_request(signed_in):
    user = UserFactory(permissions=["releases.view_batch"])
    client = signed_in(user)
    assert client.get(BATCHES).status_code == 200

    user.user_permissions.clear()

    assert client.get(BATCHES).status_code == 403


def test_leaving_a_group_revokes_its_permissions_at_the_very_next_request(signed_in):
    user, group = group_member("viewers", "view_batch")
    client = signed_in(user)
    assert client.get(BATCHES).status_code == 200

    user.groups.remove(group)

    assert client.get(BATCHES).status_code == 403


def test_a_deactivated_user_is_signed_out_at_the_very_next_request(signed_in):
    user = UserFactory(permissions=["releases.view_batch"])
    client = signed_in(user)
    assert client.get(BATCHES).status_code == 200

    user.is_active = False
    user.save(update_fields=["is_active"])

    assert client.get(BATCHES).status_code == 401
    assert client.get("/admin/").status_code == 302  # to the sign-in page


def test_an_expired_or_deleted_session_signs_out(signed_in):
    client = signed_in(UserFactory(permissions=["releases.view_batch"]))
    Session.objects.update(expire_date=timezone.now() - timedelta(seconds=1))
    assert client.get(BATCHES).status_code == 401

    client = signed_in(UserFactory(permissions=["releases.view_batch"]))
    Session.objects.all().delete()
    assert client.get(BATCHES).status_code == 401


def test_a_superuser_still_holds_every_permission(signed_in):
    client = signed_in(UserFactory(is_superuser=True, is_staff=True))

    assert client.get(BATCHES).status_code == 200
    user = client.get("/admin/").wsgi_request.user
    assert user.get_all_permissions() == {
        f"{p.content_type.app_label}.{p.codename}"
        for p in Permission.objects.select_related("content_type")
    }
