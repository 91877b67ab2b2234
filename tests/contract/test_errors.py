"""Every error under /api/ is JSON in one shape, whatever raised it."""

import json

import pytest
from django.core.exceptions import RequestDataTooBig
from django.test import Client, RequestFactory
from django_fsm import ConcurrentTransition, TransitionNotAllowed

from utilities.api.exceptions import api_exception_handler, server_error

pytestmark = pytest.mark.django_db


def assert_error(response, status: int, code: str) -> None:
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    body = json.loads(response.content)
    assert set(body) == {"code", "detail", "fields"}
    assert (body["code"], bool(body["detail"])) == (code, True)


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/nothing-here/",
        "/api/v1/batches/999999/",
        "/api/v1/batches/abc/",
        "/api/v1/batches/99999999999999999999999/",
        "/api/v1/releases/-1/status",
        "/api/v2/batches/",
    ],
)
def test_unknown_paths_and_objects_are_404(api, url):
    assert_error(api.get(url), 404, "not_found")


def test_an_invalid_page_is_404(api):
    assert_error(api.get("/api/v1/builds/?page=99"), 404, "not_found")


def test_errors_stay_json_for_a_browser(api):
    response = api.get("/api/v1/batches/999999/", HTTP_ACCEPT="text/html")

    assert_error(response, 404, "not_found")


def test_an_unsupported_media_type_is_415(api):
    response = api.post("/api/v1/batches/", "name=Nov", content_type="text/plain")

    assert_error(response, 415, "unsupported_media_type")


def test_an_oversize_body_elsewhere_is_413(api):
    body = b'{"name": "' + b"x" * (1024 * 1024) + b'", "apps": []}'

    response = api.post("/api/v1/batches/", body, content_type="application/json")

    assert_error(response, 413, "too_large")


def test_an_unacceptable_accept_header_still_gets_json(api):
    response = api.get("/api/v1/batches/", HTTP_ACCEPT="application/xml")

    assert_error(response, 406, "not_acceptable")


def test_a_server_error_under_api_is_json(settings):
    # Django's own handler500, reached when a view raises something unexpected.
    response = server_error(RequestFactory().get("/api/v1/batches/"))

    assert_error(response, 500, "server_error")


def test_pages_outside_the_api_keep_djangos_error_pages():
    response = Client().get("/no-such-page/")

    assert response.status_code == 404
    assert not response["Content-Type"].startswith("application/json")


@pytest.mark.parametrize(
    ("exc", "status", "code"),
    [
        (TransitionNotAllowed("no"), 409, "invalid_transition"),
        (ConcurrentTransition("race"), 409, "concurrent_update"),
        (RequestDataTooBig("big"), 413, "too_large"),
    ],
)
def test_the_handler_maps_framework_errors(exc, status, code):
    assert_error(api_exception_handler(exc, {}), status, code)


@pytest.mark.parametrize("method", ["get", "post"])
def test_a_missing_slash_is_a_json_404_even_in_debug(api, settings, method):
    settings.DEBUG = True

    response = getattr(api, method)("/api/v1/batches")

    assert_error(response, 404, "not_found")
    assert "/api/v1/batches/" in response.json()["detail"]
