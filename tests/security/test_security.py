"""Who may call what, how signatures are compared, what never reaches a log, and CSRF.

The endpoint lists are generated from the URL conf, so a route added later is covered (or
fails here until it is classified) without anyone remembering to add it.
"""

import hashlib
import hmac
import json
import logging
import re

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import URLResolver, get_resolver
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from builds.models import Build, BuildImage
from config.logging import formatter as log_formatter
from deployments.models import Deployment
from releases.models import Batch, Hold, ReleaseApp
from releases.services import create_batch, start_pre_deploy
from releases.services.batches import AppChoice
from releases.services.holds import hold_place
from tests.factories import UserFactory
from tests.helpers import ALL_PERMISSIONS, notify, token_client

pytestmark = pytest.mark.django_db

# Served to anyone on purpose: the API's own description.
PUBLIC_API_ROUTES = {"schema", "api-docs"}
SECRET = "whsec-0123456789abcdef-SECRET"
PASSWORD = "correct-horse-battery-staple-PW"


def walk(patterns, prefix=""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from walk(pattern.url_patterns, prefix + str(pattern.pattern))
        else:
            yield prefix + str(pattern.pattern), pattern


def api_endpoints() -> list[tuple[str, str, str]]:
    """(route name, HTTP method, route) of every named /api/ route."""
    found = []
    for route, pattern in walk(get_resolver().url_patterns):
        if not route.startswith("api/") or pattern.name is None or "format" in route:
            continue
        callback = pattern.callback
        actions = getattr(callback, "actions", None)
        if actions:
            methods = list(actions)
        else:
            view = callback.cls
            methods = [
                m
                for m in view.http_method_names
                if m not in ("options", "head") and hasattr(view, m)
            ]
        found += [(pattern.name, method, route) for method in methods]
    return sorted(found)


ENDPOINTS = api_endpoints()


def url_for(route: str, ids: dict[str, int]) -> str:
    """A concrete path: the route's regex with its `pk` (or `name`) filled by an object of its
    collection."""
    path = "/" + route.replace("^", "").replace("$", "")
    collection = re.search(r"v1/(\w+)/", path)
    pk = ids.get(collection.group(1)) if collection else None
    return re.sub(r"\(\?P<(pk|name)>[^)]*\)", str(pk), path)


def body_for(name: str) -> dict:
    return {
        "batch-list": {"name": "matrix", "apps": [{"name": "api"}]},
        "build-notify": {
            "build_number": 99,
            "build_status": "success",
            "apps": [{"name": "api", "image_tag": "v99"}],
        },
        "releaseapp-switch-version": {"image_tag": "v2"},
        "hold-list": {"reason": "matrix", "application": "api", "environment": "prod"},
    }.get(name, {})


def snapshot() -> tuple:
    return (
        Hold.objects.count(),
        Hold.objects.filter(lifted_at__isnull=False).count(),
        Build.objects.count(),
        BuildImage.objects.count(),
        Batch.objects.count(),
        list(Batch.objects.order_by("pk").values_list("status", flat=True)),
        list(ReleaseApp.objects.order_by("pk").values_list("image_tag", "status")),
        Deployment.objects.count(),
    )


@pytest.fixture
def world(executor):
    user = UserFactory(permissions=["applications.switch_version", "applications.deploy_batch"])
    notify(1, {"api": "v1"})
    batch = create_batch(name="Nov", apps=[AppChoice("api")], user=user).batch
    notify(2, {"api": "v2"})
    deployment = start_pre_deploy(batch_id=batch.pk, user=user).deployments[0]
    placer = UserFactory(permissions=["applications.add_hold"])
    hold = hold_place(user=placer, reason="matrix", environment="prod").hold
    return {
        "holds": hold.pk,
        "batches": batch.pk,
        "releases": batch.releases.get().pk,
        "deployments": deployment.pk,
        "builds": Build.objects.get(number=1).pk,
        "applications": "api",
    }


def test_the_matrix_covers_every_api_route():
    names = {name for name, _, _ in ENDPOINTS}
    assert {"build-notify", "releaseapp-switch-version", "releaseapp-switch-status"} <= names
    assert len(ENDPOINTS) >= 15


@pytest.mark.parametrize(
    ("name", "method", "route"), ENDPOINTS, ids=[f"{m} {n}" for n, m, _ in ENDPOINTS]
)
def test_auth_matrix(world, name, method, route):
    url = url_for(route, world)
    before = snapshot()

    def call(client):
        return getattr(client, method)(url, body_for(name), format="json")

    anonymous = call(APIClient())
    nobody = call(token_client(UserFactory(username="nobody")))
    if name in PUBLIC_API_ROUTES:
        assert anonymous.status_code == nobody.status_code == 200
        return
    assert anonymous.status_code == 401, anonymous.content
    assert anonymous["WWW-Authenticate"].startswith("Bearer")
    assert nobody.status_code == 403, nobody.content
    assert anonymous.json()["code"] and nobody.json()["code"] == "permission_denied"
    assert snapshot() == before, "a refused request wrote something"

    permitted = call(token_client(UserFactory(username="everything", permissions=ALL_PERMISSIONS)))
    assert permitted.status_code not in (401, 403, 404, 405), permitted.content
    assert permitted.status_code < 500


@pytest.mark.parametrize(
    ("name", "method", "route"), ENDPOINTS, ids=[f"{m} {n}" for n, m, _ in ENDPOINTS]
)
def test_a_bad_token_is_refused_like_no_token(world, name, method, route):
    if name in PUBLIC_API_ROUTES:
        return
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer " + "0" * 40)
    response = getattr(client, method)(url_for(route, world), body_for(name), format="json")
    assert response.status_code == 401


def test_session_writes_to_the_api_need_a_csrf_token(world):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(UserFactory(permissions=ALL_PERMISSIONS))
    before = snapshot()
    response = client.post(f"/api/v1/batches/{world['batches']}/cancel")
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    assert snapshot() == before


# --- the webhook signature ---


def signed(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def post_notify(body: bytes, **headers):
    return APIClient().post(
        "/api/v1/builds/notify", body, content_type="application/json", headers=headers
    )


NOTIFICATION = json.dumps(
    {"build_number": 5, "build_status": "success", "apps": [{"name": "api", "image_tag": "v5"}]}
).encode()
RIGHT = signed(NOTIFICATION)


@pytest.mark.parametrize(
    "signature",
    [
        # Right length and shape, wrong value: differs only in the last hex digit.
        RIGHT[:-1] + ("0" if RIGHT[-1] != "0" else "1"),
        signed(NOTIFICATION, secret="another-secret"),
        signed(NOTIFICATION + b" "),
        RIGHT.removeprefix("sha256="),
        "sha1=" + hashlib.sha1(NOTIFICATION).hexdigest(),
        "sha256=",
        "sha256=zz",
        "",
        "sha256=" + "é" * 64,
        RIGHT + "00",
    ],
    ids=[
        "one-digit-off",
        "other-secret",
        "other-body",
        "no-prefix",
        "sha1",
        "empty-hex",
        "not-hex",
        "empty",
        "non-ascii",
        "too-long",
    ],
)
def test_a_wrong_or_malformed_signature_is_401_and_writes_nothing(settings, signature):
    settings.BUILDS_WEBHOOK_SECRET = SECRET
    response = post_notify(NOTIFICATION, **{"X-Signature-256": signature})
    assert response.status_code == 401, response.content
    assert not Build.objects.exists()


def test_a_wrong_signature_is_refused_even_with_a_valid_token(settings):
    settings.BUILDS_WEBHOOK_SECRET = SECRET
    token = Token.objects.create(user=UserFactory(permissions=["builds.notify_build"]))
    response = post_notify(
        NOTIFICATION,
        **{"X-Signature-256": RIGHT[:-1] + "x", "Authorization": f"Bearer {token.key}"},
    )
    assert response.status_code == 401
    assert not Build.objects.exists()


def test_signatures_are_compared_in_constant_time(settings, monkeypatch):
    settings.BUILDS_WEBHOOK_SECRET = SECRET
    compared = []
    real = hmac.compare_digest

    def spy(a, b):
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    wrong = post_notify(NOTIFICATION, **{"X-Signature-256": RIGHT[:-1] + "0"})
    right = post_notify(NOTIFICATION, **{"X-Signature-256": RIGHT})

    assert (wrong.status_code, right.status_code) == (401, 201)
    # Each check went through hmac.compare_digest, never ==, on the whole signature.
    assert len(compared) == 2
    assert all(len(b) == len(RIGHT) for _, b in compared)


# --- logs ---


class Collect(logging.Handler):
    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)


@pytest.fixture
def every_log_record():
    """Every record any logger emits at its configured level, however it propagates."""
    handler = Collect()
    loggers = [logging.getLogger()] + [
        logging.getLogger(name) for name in list(logging.root.manager.loggerDict)
    ]
    for logger in loggers:
        logger.addHandler(handler)
    yield handler.records
    for logger in loggers:
        logger.removeHandler(handler)


def test_no_secret_reaches_any_log_line(settings, every_log_record, executor):
    settings.BUILDS_WEBHOOK_SECRET = SECRET
    user = UserFactory(username="ops", permissions=ALL_PERMISSIONS)
    user.set_password(PASSWORD)
    user.save()
    user.user_permissions.add(Permission.objects.get(codename="view_build"))
    token = Token.objects.create(user=user)
    user.is_staff = True
    user.save()

    browser = Client()
    browser.post("/admin/login/", {"username": "ops", "password": PASSWORD})
    browser.post("/admin/login/", {"username": "ops", "password": PASSWORD + "-wrong"})
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token.key}")
    api.post("/api/v1/builds/notify", json.loads(NOTIFICATION), format="json")
    body = json.dumps(
        {"build_number": 6, "build_status": "success", "apps": [{"name": "api", "image_tag": "v6"}]}
    ).encode()
    post_notify(body, **{"X-Signature-256": signed(body)})
    post_notify(body, **{"X-Signature-256": signed(body)[:-1] + "0"})
    batch = api.post(
        "/api/v1/batches/",
        {"name": "n", "apps": [{"name": "api", "image_tag": "v5"}]},
        format="json",
    )
    release_id = batch.json()["batch"]["releases"][0]["id"]
    api.post(f"/api/v1/releases/{release_id}/switch-version", {}, format="json")
    api.get(f"/api/v1/releases/{release_id}/status?token={token.key}")
    bad = APIClient()
    bad.credentials(HTTP_AUTHORIZATION=f"Bearer {token.key[:-4]}abcd")
    bad.get("/api/v1/builds/")
    APIClient().get("/api/v1/builds/", headers={"Authorization": f"Token {token.key} extra"})

    assert len(every_log_record) > 10
    secrets = [token.key, SECRET, PASSWORD, signed(body), token.key[:-4] + "abcd"]
    for formatter in (log_formatter("json"), log_formatter("text")):
        for record in every_log_record:
            line = formatter.format(record)
            leaked = [s for s in secrets if s in line]
            assert not leaked, f"{leaked} in {line}"


# --- CSRF on the admin ---


def admin_post_routes() -> list[str]:
    return sorted(
        {
            route
            for route, pattern in walk(get_resolver().url_patterns)
            if route.startswith("admin/") and pattern.name and "<path:content_type_id>" not in route
        }
    )


def test_every_admin_form_refuses_a_post_without_csrf_token(world):
    user = UserFactory(username="admin", permissions=ALL_PERMISSIONS)
    user.is_staff = user.is_superuser = True
    user.save()
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    before = snapshot()
    checked = 0
    for route in admin_post_routes():
        path = "/" + re.sub(
            r"<(?:int|str|path):(\w+)>", lambda m: "1" if m[1] != "transition" else "cancel", route
        )
        path = path.replace("^", "").replace("$", "")
        if "(?P<" in path:
            continue
        response = client.post(path, {"action": "delete_selected", "_selected_action": ["1"]})
        assert response.status_code == 403, (path, response.status_code)
        assert b"CSRF" in response.content
        checked += 1
    assert checked > 30
    assert snapshot() == before
    # With the token, the same client gets through (the 403s above were CSRF's alone).
    client.get("/admin/")
    token = client.cookies["csrftoken"].value
    response = client.post(
        f"/admin/releases/batch/{world['batches']}/rollout/cancel/", {"csrfmiddlewaretoken": token}
    )
    assert response.status_code in (200, 302)


def test_admin_login_refuses_a_post_without_csrf_token():
    UserFactory(username="ops")
    response = Client(enforce_csrf_checks=True).post(
        "/admin/login/", {"username": "ops", "password": "pw"}
    )
    assert response.status_code == 403
