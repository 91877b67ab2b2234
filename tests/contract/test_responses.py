"""The API says what it accepts and answers what it says (issue 11, items 11 and 12)."""

import json

import pytest

from releases.services import create_batch
from releases.services.batches import AppChoice
from tests.factories import UserFactory
from tests.helpers import notify

pytestmark = pytest.mark.django_db


@pytest.fixture
def schema(client) -> dict:
    return client.get("/api/schema/?format=json").json()


@pytest.fixture
def release():
    notify(1, {"api": "v1"})
    batch = create_batch(name="Nov", apps=[AppChoice("api")], user=UserFactory()).batch
    return batch.releases.get()


def _operations(schema):
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            yield f"{method.upper()} {path}", operation


# --- The schema ---


def test_request_bodies_are_json_only(schema):
    for name, operation in _operations(schema):
        if "requestBody" in operation:
            assert list(operation["requestBody"]["content"]) == ["application/json"], name


def test_path_ids_are_integers(schema):
    for name, operation in _operations(schema):
        for parameter in operation.get("parameters", []):
            if parameter["in"] != "path":
                continue
            if parameter["name"] == "name":  # an application, by its name (SPEC §7): not an id
                assert parameter["schema"]["type"] == "string", name
                assert parameter["schema"]["pattern"], name
            else:
                assert parameter["schema"]["type"] == "integer", name


def test_every_list_documents_its_invalid_page_404(schema):
    for name, operation in _operations(schema):
        if name.startswith("GET") and name.endswith("s/"):
            assert "404" in operation["responses"], name


def test_users_that_can_be_deleted_are_nullable_and_links_need_not_be_urls(schema):
    components = schema["components"]["schemas"]

    assert components["Release"]["properties"]["tag_updated_by"]["nullable"] is True
    assert components["Batch"]["properties"]["created_by"]["nullable"] is True
    assert components["Deployment"]["properties"]["created_by"]["nullable"] is True
    assert "format" not in components["Build"]["properties"]["link"]


def test_the_webhook_body_in_the_schema_is_the_one_that_is_checked(schema):
    """One definition: the published constraints are those of the serializer that validates."""
    from builds.notifications import BuildNotificationSerializer
    from utilities.validators import APP_NAME_PATTERN, HTTP_URL_PATTERN

    components = schema["components"]["schemas"]
    body = components["BuildNotificationRequest"]
    app = components["NotifiedAppRequest"]["properties"]
    checked = BuildNotificationSerializer().fields

    assert body["properties"]["build_number"]["minimum"] == 1
    assert body["properties"]["apps"]["maxItems"] == checked["apps"].max_length
    assert app["name"]["pattern"] == APP_NAME_PATTERN
    assert app["image_tag"]["pattern"].startswith("^[A-Za-z0-9_]")
    assert body["properties"]["link"]["pattern"] == HTTP_URL_PATTERN
    for text in ("repo", "commit", "branch", "link"):
        assert body["properties"][text]["nullable"] is True
        assert "pattern" in body["properties"][text] and "oneOf" not in body["properties"][text]


# --- What the server does ---


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/releases/?has_new_tag=banana",
        "/api/v1/deployments/?current=banana",
        "/api/v1/releases/?has_new_tag=",
        "/api/v1/releases/?batch=",
        "/api/v1/deployments/?release=",
    ],
)
def test_a_filter_value_of_the_wrong_type_is_400(api, url):
    response = api.get(url)

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"


@pytest.mark.parametrize("value", ["true", "false", "1", "0", "True"])
def test_boolean_filters_take_the_usual_spellings(api, value):
    assert api.get(f"/api/v1/releases/?has_new_tag={value}").status_code == 200
    assert api.get(f"/api/v1/deployments/?current={value}").status_code == 200


def test_a_multipart_switch_is_415_and_changes_nothing(api, release):
    notify(2, {"api": "v2"})

    response = api.post(
        f"/api/v1/releases/{release.pk}/switch-version", {"image_tag": "v2"}, format="multipart"
    )

    assert (response.status_code, response.json()["code"]) == (415, "unsupported_media_type")
    release.refresh_from_db()
    assert release.image_tag == "v1"


def test_a_form_encoded_batch_is_415(api, release):
    response = api.generic(
        "POST",
        "/api/v1/batches/",
        "name=Dec&apps=api",
        content_type="application/x-www-form-urlencoded",
    )

    assert response.status_code == 415


@pytest.mark.parametrize(
    "body",
    [{"image_tag": 5}, {"image_tag": "v 2"}, {"expected_image_tag": ""}, {"image_tag": "v2\n"}],
    ids=["number", "not-a-tag", "empty", "trailing-newline"],
)
def test_a_switch_body_the_schema_calls_malformed_is_400_invalid(api, release, body):
    response = api.post(f"/api/v1/releases/{release.pk}/switch-version", body, format="json")

    assert (response.status_code, response.json()["code"]) == (400, "invalid")


@pytest.mark.parametrize(
    "body",
    [
        {"name": 5, "apps": [{"name": "api"}]},
        {"name": "   ", "apps": [{"name": "api"}]},
        {"name": "Dec", "apps": []},
        {"name": "Dec", "apps": [{"name": "api", "image_tag": 1}]},
    ],
    ids=["name-number", "name-blank", "no-apps", "tag-number"],
)
def test_a_batch_body_the_schema_calls_malformed_is_400_invalid(api, release, body):
    response = api.post("/api/v1/batches/", body, format="json")

    assert (response.status_code, response.json()["code"]) == (400, "invalid")


def test_the_same_app_twice_in_a_batch_is_duplicate_app(api, release):
    body = {"name": "Dec", "apps": [{"name": "api"}, {"name": "api"}]}

    response = api.post("/api/v1/batches/", body, format="json")

    assert (response.status_code, response.json()["code"]) == (400, "duplicate_app")


def test_optional_webhook_fields_may_be_null_and_numbers_must_be_numbers(client_with):
    drone = client_with("builds.notify_build")
    body = {"build_number": 11, "build_status": "success", "apps": [], "repo": None, "link": None}

    def post(data):
        return drone.generic(
            "POST", "/api/v1/builds/notify", json.dumps(data), content_type="application/json"
        )

    assert post(body).status_code == 201
    assert post({**body, "build_number": "12"}).status_code == 400
    assert post({**body, "build_number": 12.0}).status_code == 400


def test_a_signature_header_without_a_configured_secret_is_401_even_with_a_token(client_with):
    drone = client_with("builds.notify_build")
    body = json.dumps({"build_number": 11, "build_status": "success", "apps": []})

    response = drone.generic(
        "POST",
        "/api/v1/builds/notify",
        body,
        content_type="application/json",
        HTTP_X_SIGNATURE_256="sha256=00",
    )

    assert response.status_code == 401


# --- The checker the suite runs on every API response ---


def test_the_response_checker_refuses_an_undeclared_null_and_an_undocumented_status():
    from tests.contract.checks import contract

    release = {
        "id": 7,
        "batch": 3,
        "app": "api",
        "status": "pending",
        "image_tag": "v1",
        "build": None,
        "latest_image_tag": "",
        "latest_build": None,
        "latest_seen_at": None,
        "has_new_tag": False,
        "tag_updated_at": None,
        "tag_updated_by": None,
        "created_at": "2026-11-27T09:00:00Z",
    }

    assert contract().problems("GET", "/api/v1/releases/7/", 200, release) == []
    assert contract().problems("GET", "/api/v1/releases/7/", 200, {**release, "image_tag": None})
    assert contract().problems("GET", "/api/v1/releases/7/", 418, {})
