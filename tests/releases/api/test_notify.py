"""POST /api/v1/builds/notify: Drone's webhook (SPEC §4)."""

import json

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.test.utils import CaptureQueriesContext

from applications.models import Application
from builds.api.webhook import signature_for
from builds.models import Build, BuildImage
from deployments.models import Deployment
from releases.models import Batch, ReleaseApp
from releases.services import create_batch
from releases.services.batches import AppChoice
from tests.factories import UserFactory
from tests.helpers import notify, nov_batch

pytestmark = pytest.mark.django_db

URL = "/api/v1/builds/notify"


def payload(number=11, status="success", apps=None, **extra) -> dict:
    apps = {"api": "v2"} if apps is None else apps
    return {
        "build_number": number,
        "build_status": status,
        "apps": [{"name": n, "image_tag": t} for n, t in apps.items()],
        **extra,
    }


def post(client, body, **headers):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.generic("POST", URL, data, content_type="application/json", **headers)


@pytest.fixture
def drone(client_with):
    return client_with("builds.notify_build")


@pytest.fixture
def open_release():
    """api@v1 in an open batch: what a successful build of api would touch."""
    batch = nov_batch(UserFactory())
    return batch.releases.get(application__name="api")


def test_first_notification_is_recorded_and_reports_the_new_tag(drone, open_release):
    body = payload(11, apps={"api": "v2", "worker": "k1"}, repo="org/shop", commit="0a1b2c")

    response = post(drone, body)

    assert response.status_code == 201
    build = Build.objects.get(repo="org/shop", number=11)
    assert response.json() == {
        "build": {"id": build.pk, "repo": "org/shop", "number": 11, "status": "success"},
        "duplicate": False,
        "stale": False,
        "new_tags": [{"app": "api", "image_tag": "v2", "release_ids": [open_release.pk]}],
    }
    open_release.refresh_from_db()
    assert (open_release.latest_image_tag, open_release.has_new_tag) == ("v2", True)
    assert Application.objects.filter(name="worker").exists()


def test_the_same_notification_again_is_a_duplicate(drone, open_release):
    first = post(drone, payload(11))

    again = post(drone, payload(11))

    assert again.status_code == 200
    assert again.json() == {**first.json(), "duplicate": True, "new_tags": []}
    assert Build.objects.filter(number=11).count() == 1


def test_a_resent_build_with_a_new_app_merges_it(drone, open_release):
    post(drone, payload(11, apps={"api": "v2"}))
    web = open_release.batch.releases.get(application__name="web")

    response = post(drone, payload(11, apps={"api": "v2", "web": "w2"}))

    assert response.status_code == 200
    assert (response.json()["duplicate"], response.json()["new_tags"]) == (
        False,
        [{"app": "web", "image_tag": "w2", "release_ids": [web.pk]}],
    )
    assert BuildImage.objects.filter(build__number=11).count() == 2


def test_a_resent_build_with_another_tag_for_an_app_is_409_and_writes_nothing(drone, open_release):
    post(drone, payload(11, apps={"api": "v2"}))

    response = post(drone, payload(11, apps={"api": "v3", "web": "w2"}))

    assert response.status_code == 409
    assert response.json()["code"] == "conflicting_image"
    assert "api" in response.json()["detail"] and "v2" in response.json()["detail"]
    assert list(
        BuildImage.objects.filter(build__number=11).values_list("application__name", "image_tag")
    ) == [("api", "v2")]


def test_a_progressing_status_is_applied_and_detects_once(drone, open_release):
    running = post(drone, payload(11, status="running"))
    success = post(drone, payload(11, status="success"))

    assert (running.status_code, running.json()["new_tags"]) == (201, [])
    assert success.status_code == 200
    assert success.json()["build"]["status"] == "success"
    assert success.json()["new_tags"] == [
        {"app": "api", "image_tag": "v2", "release_ids": [open_release.pk]}
    ]


def test_a_status_that_would_regress_is_stale_and_changes_nothing(drone, open_release):
    post(drone, payload(11, status="success"))

    response = post(drone, payload(11, status="running"))

    assert response.status_code == 200
    assert (response.json()["stale"], response.json()["build"]["status"]) == (True, "success")
    assert Build.objects.get(number=11).status == "success"


def test_a_failed_build_is_recorded_but_detects_nothing(drone, open_release):
    response = post(drone, payload(12, status="failure", apps={"api": "v9"}))

    assert (response.status_code, response.json()["new_tags"]) == (201, [])
    open_release.refresh_from_db()
    assert open_release.latest_image_tag == "v1"


def test_unknown_fields_are_ignored(drone, open_release):
    response = post(drone, {**payload(11), "event": "push", "author": {"login": "bob"}})

    assert response.status_code == 201


def test_a_body_of_exactly_the_limit_is_accepted(drone, settings):
    body = json.dumps(payload(11)).encode()
    settings.BUILDS_WEBHOOK_MAX_BYTES = 4096
    body += b" " * (4096 - len(body))

    assert post(drone, body).status_code == 201


# --- Signed requests (Drone plugins/webhook with signature_secret) ---


@pytest.fixture
def secret(settings) -> str:
    settings.BUILDS_WEBHOOK_SECRET = "drone-s3cret"
    return settings.BUILDS_WEBHOOK_SECRET


def test_a_signed_request_needs_no_token(anonymous, secret, open_release):
    body = json.dumps(payload(11)).encode()

    response = post(anonymous, body, HTTP_X_SIGNATURE_256=signature_for(body, secret))

    assert response.status_code == 201
    assert response.json()["new_tags"][0]["release_ids"] == [open_release.pk]


def test_a_signature_in_upper_case_hex_is_accepted(anonymous, secret, open_release):
    body = json.dumps(payload(11)).encode()
    digest = signature_for(body, secret).removeprefix("sha256=")

    response = post(anonymous, body, HTTP_X_SIGNATURE_256="sha256=" + digest.upper())

    assert response.status_code == 201


def test_a_signature_is_refused_when_no_secret_is_configured(anonymous, open_release):
    body = json.dumps(payload(11)).encode()

    response = post(anonymous, body, HTTP_X_SIGNATURE_256=signature_for(body, ""))

    assert response.status_code == 401
    assert not Build.objects.filter(number=11).exists()


# --- Malformed input: each answered 4xx with a code, and nothing written ---


def _tables() -> dict:
    return {
        "builds": Build.objects.count(),
        "images": BuildImage.objects.count(),
        "applications": Application.objects.count(),
        "batches": Batch.objects.count(),
        "releases": list(
            ReleaseApp.objects.order_by("pk").values_list("pk", "latest_image_tag", "image_tag")
        ),
        "deployments": Deployment.objects.count(),
    }


def _raw(text: str) -> bytes:
    return text.encode()


MALFORMED = {
    # Not JSON, or not an object
    "empty body": b"",
    "not json": b"build 11 succeeded",
    "truncated json": b'{"build_number": 11, "build_status": "succ',
    "json array": b'[{"build_number": 11}]',
    "json null": b"null",
    "json string": b'"success"',
    "json number": b"11",
    "not utf-8": b'\xff\xfe{"build_number": 11}',
    "nesting too deep": b"[" * 100_000 + b"]" * 100_000,
    "NaN build number": _raw(
        '{"build_number": NaN, "build_status": "success", "apps": [{"name": "api", "image_tag": "v2"}]}'
    ),
    # Missing fields
    "empty object": {},
    "no build_number": {k: v for k, v in payload().items() if k != "build_number"},
    "no build_status": {k: v for k, v in payload().items() if k != "build_status"},
    "no apps": {k: v for k, v in payload().items() if k != "apps"},
    "null build_status": {**payload(), "build_status": None},
    # Wrong types and ranges
    "build_number as string": {**payload(), "build_number": "11"},
    "build_number as float": {**payload(), "build_number": 11.5},
    "build_number as bool": {**payload(), "build_number": True},
    "build_number zero": payload(0),
    "build_number negative": payload(-3),
    "build_number beyond bigint": payload(2**63),
    "unknown status": payload(status="finished"),
    "status as number": {**payload(), "build_status": 1},
    "apps as string": {**payload(), "apps": "api"},
    "apps as object": {**payload(), "apps": {"name": "api", "image_tag": "v2"}},
    "app as string": {**payload(), "apps": ["api:v2"]},
    "app without tag": {**payload(), "apps": [{"name": "api"}]},
    "app without name": {**payload(), "apps": [{"image_tag": "v2"}]},
    "tag as number": {**payload(), "apps": [{"name": "api", "image_tag": 2}]},
    "too many apps": payload(apps={f"app-{i}": "v1" for i in range(1001)}),
    # Tags and names outside their grammar
    "tag starting with a dot": payload(apps={"api": ".v2"}),
    "tag starting with a dash": payload(apps={"api": "-v2"}),
    "tag with a space": payload(apps={"api": "v 2"}),
    "tag with a colon": payload(apps={"api": "api:v2"}),
    "tag too long": payload(apps={"api": "v" * 129}),
    "empty tag": payload(apps={"api": ""}),
    "app name with spaces": payload(apps={"my api": "v2"}),
    "app name too long": payload(apps={"a" * 64: "v2"}),
    # Optional fields
    "repo as number": payload(repo=123),
    "repo too long": payload(repo="o/" + "r" * 254),
    "commit with NUL": payload(commit="0a1b\u0000"),
    "branch with a lone surrogate": _raw(
        '{"build_number": 11, "build_status": "success", "branch": "\\ud800",'
        ' "apps": [{"name": "api", "image_tag": "v2"}]}'
    ),
    "link not a URL": payload(link="drone build 11"),
    "link not http": payload(link="ftp://drone.example.com/11"),
}


@pytest.mark.parametrize("body", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_notification_is_rejected_and_writes_nothing(drone, open_release, body):
    before = _tables()

    response = post(drone, body)

    assert response.status_code == 400, response.content
    assert response.json()["code"] == "invalid"
    assert set(response.json()) == {"code", "detail", "fields"}
    assert _tables() == before


def test_the_same_app_twice_is_400_duplicate_app_and_writes_nothing(drone, open_release):
    body = {
        **payload(),
        "apps": [{"name": "api", "image_tag": "v2"}, {"name": "api", "image_tag": "v3"}],
    }
    before = _tables()

    response = post(drone, body)

    assert response.status_code == 400
    assert response.json()["code"] == "duplicate_app"
    assert response.json()["fields"] == {"apps": ["apps[1].name: 'api' is listed twice."]}
    assert _tables() == before


def test_a_body_over_the_limit_is_413_and_writes_nothing(drone, open_release):
    body = json.dumps(payload(11, link="https://drone.example.com/" + "x" * (1024 * 1024)))
    before = _tables()

    response = post(drone, body.encode())

    assert response.status_code == 413
    assert response.json()["code"] == "too_large"
    assert _tables() == before


def test_a_declared_length_over_the_limit_is_413_before_reading(drone, open_release):
    before = _tables()

    response = post(
        drone,
        payload(11),
        CONTENT_LENGTH=str(django_settings.BUILDS_WEBHOOK_MAX_BYTES + 1),
    )

    assert (response.status_code, response.json()["code"]) == (413, "too_large")
    assert _tables() == before


@pytest.mark.parametrize(
    "signature",
    [
        "sha256=" + "0" * 64,
        "sha256=not-hex",
        "md5=0123456789abcdef",
        "",
        "sha256=",
        "signed-by-drone",
    ],
)
def test_a_wrong_signature_is_401_and_writes_nothing(anonymous, secret, open_release, signature):
    before = _tables()

    response = post(anonymous, payload(11), HTTP_X_SIGNATURE_256=signature)

    assert (response.status_code, response.json()["code"]) == (401, "authentication_failed")
    assert _tables() == before


def test_a_signature_of_another_body_is_401_even_with_a_valid_token(drone, secret, open_release):
    other = json.dumps(payload(12)).encode()
    before = _tables()

    response = post(drone, payload(11), HTTP_X_SIGNATURE_256=signature_for(other, secret))

    assert response.status_code == 401
    assert _tables() == before


# --- BUILDS_REGISTER_UNKNOWN_APPS ---


def test_unknown_apps_are_registered_by_default(drone, open_release):
    response = post(drone, payload(11, apps={"api": "v2", "worker": "k1"}))

    assert response.status_code == 201
    assert Application.objects.filter(name="worker").exists()


def test_with_registration_off_an_unknown_app_is_400_and_nothing_is_written(
    drone, open_release, settings
):
    settings.BUILDS_REGISTER_UNKNOWN_APPS = False
    before = _tables()

    response = post(drone, payload(11, apps={"api": "v2", "ghost": "g1"}))

    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "unknown_app"
    assert body["fields"] == {"apps": ["apps[1].name: no application named 'ghost'."]}
    assert _tables() == before
    assert not Application.objects.filter(name="ghost").exists()


def test_with_registration_off_known_apps_are_accepted(drone, open_release, settings):
    settings.BUILDS_REGISTER_UNKNOWN_APPS = False

    response = post(drone, payload(11, apps={"api": "v2", "web": "w2"}))

    assert response.status_code == 201


def test_notify_build_command_refuses_unknown_apps_when_registration_is_off(open_release, settings):
    from django.core.management import CommandError, call_command

    settings.BUILDS_REGISTER_UNKNOWN_APPS = False

    with pytest.raises(CommandError, match="unknown_app"):
        call_command("notify_build", "--number", "12", "--app", "ghost=g1")
    assert not Build.objects.filter(number=12).exists()


def test_a_one_app_notification_takes_eight_statements_whatever_the_history(drone, open_release):
    def statements(number: int) -> int:
        with CaptureQueriesContext(connection) as queries:
            assert post(drone, payload(number, apps={"api": f"v{number}"})).status_code == 201
        return len(queries)

    first = statements(11)
    for number in range(12, 42):
        notify(number, {"api": f"v{number}"})
    create_batch(name="Dec", apps=[AppChoice("api")], user=UserFactory())

    # The token with its user and permissions; the transaction (a savepoint pair here): the
    # build, its apps locked, its images, one statement detecting the new tags, and the live
    # pages' revisions of the batches, releases and apps it changed (one statement).
    assert first == statements(42) == 8
    assert ReleaseApp.objects.filter(latest_image_tag="v42").count() == 2


@pytest.mark.parametrize(
    ("apps", "fields"),
    [
        (
            [{"name": "api", "image_tag": "-v2"}],
            ["apps[0].image_tag: Not a valid OCI image tag."],
        ),
        (
            [{"name": "web", "image_tag": "w2"}, {"name": "api"}],
            ["apps[1].image_tag: This field is required."],
        ),
        (["api"], ["apps[0]: Invalid data. Expected a dictionary, but got str."]),
    ],
)
def test_a_bad_or_missing_tag_names_its_index_and_the_reason(drone, open_release, apps, fields):
    body = {**payload(11), "apps": apps}

    response = post(drone, body)

    assert response.status_code == 400
    assert response.json() == {
        "code": "invalid",
        "detail": "The build notification is not valid.",
        "fields": {"apps": fields},
    }


def test_every_part_of_a_refused_notification_is_in_chinese(drone, open_release):
    body = {**payload(11), "build_number": 0, "apps": [{"name": "api", "image_tag": "-v2"}]}

    response = post(drone, body, HTTP_ACCEPT_LANGUAGE="zh-Hans")

    assert response.status_code == 400
    assert response.json() == {
        "code": "invalid",
        "detail": "构建通知无效。",
        "fields": {
            "build_number": ["请确保该值大于或者等于 1。"],
            "apps": ["apps[0].image_tag: 不是有效的 OCI 镜像标签。"],
        },
    }


def test_a_conflicting_image_and_an_oversized_body_are_refused_in_chinese(drone, open_release):
    assert post(drone, payload(11, repo="org/shop")).status_code == 201

    conflict = post(
        drone, payload(11, apps={"api": "v3"}, repo="org/shop"), HTTP_ACCEPT_LANGUAGE="zh-Hans"
    )
    too_large = post(
        drone,
        payload(12),
        CONTENT_LENGTH=str(django_settings.BUILDS_WEBHOOK_MAX_BYTES + 1),
        HTTP_ACCEPT_LANGUAGE="zh-Hans",
    )

    assert conflict.json()["detail"] == "org/shop 的构建 11 已记录 api 为 v2。"
    assert conflict.json()["fields"] == {"apps": ["api：此构建记录的是 v2，而不是 v3。"]}  # noqa: RUF001
    assert too_large.json()["detail"] == "请求体超过 1048576 字节。"


def test_the_answer_written_out_equals_what_drfs_field_machinery_writes(open_release):
    """The webhook's answer is serialised by hand for speed; it must say what the declared
    fields would, new tags and all."""
    from rest_framework import serializers

    from builds.api.serializers import BuildNotifyResultSerializer

    first, again = notify(11, {"api": "v2", "web": "w2"}), notify(11, {"api": "v2", "web": "w2"})
    assert first.new_tags and again.duplicate

    for result in (first, again):
        serializer = BuildNotifyResultSerializer(result)
        assert serializer.data == serializers.Serializer.to_representation(serializer, result)
