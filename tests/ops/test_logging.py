"""Structured log lines: what a switch and a refused switch write, request ids, no secrets."""

import io
import json
import logging

import pytest
from django.http import HttpResponse
from django.test import RequestFactory
from django_structlog.middlewares import RequestMiddleware

import config.middleware  # noqa: F401  (its receivers shape the request line)
from config.logging import formatter, logging_config
from releases.services import create_batch, switch_version
from releases.services.batches import AppChoice
from tests.factories import UserFactory
from tests.helpers import notify
from utilities.errors import DomainError

SWITCH_LOGGER = "releases.services.switch"


def JsonFormatter():
    return formatter("json")


def KeyValueFormatter():
    return formatter("text")


def _record(event: str = "evt", level=logging.INFO, **extra) -> logging.LogRecord:
    return logging.getLogger("t").makeRecord("t", level, "f.py", 1, event, (), None, extra=extra)


@pytest.fixture
def json_lines():
    """The JSON lines a handler writes while the test runs, formatted as they are emitted
    (a request's id is bound only while it is served)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter("json"))
    # Django's loggers do not propagate to the root: they get the handler too.
    loggers = [logging.getLogger(), logging.getLogger("django")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    for logger, level in zip(loggers, levels, strict=True):
        logger.removeHandler(handler)
        logger.setLevel(level)


@pytest.fixture
def release():
    notify(1, {"api": "v1"})
    batch = create_batch(name="b", apps=[AppChoice("api")], user=UserFactory()).batch
    notify(2, {"api": "v2"})
    return batch.releases.get()


@pytest.mark.django_db
def test_a_switch_logs_one_info_line_from_to_and_by_whom(release, caplog):
    alice = UserFactory(username="alice", permissions=["applications.switch_version"])
    caplog.set_level(logging.INFO, logger=SWITCH_LOGGER)

    switch_version(release_id=release.pk, user=alice)

    [record] = [r for r in caplog.records if r.name == SWITCH_LOGGER]
    assert (record.levelname, record.getMessage()) == ("INFO", "version_switched")
    line = KeyValueFormatter().format(record)
    assert f"version_switched release_id={release.pk} app=api from=v1 to=v2 user=alice" in line
    parsed = json.loads(JsonFormatter().format(record))
    assert parsed["event"] == "version_switched"
    assert (parsed["from"], parsed["to"], parsed["user"]) == ("v1", "v2", "alice")


@pytest.mark.django_db
def test_a_refused_switch_logs_a_warning_with_its_code(release, caplog):
    bob = UserFactory(username="bob")
    caplog.set_level(logging.INFO, logger=SWITCH_LOGGER)

    with pytest.raises(DomainError):
        switch_version(release_id=release.pk, user=bob)

    [record] = [r for r in caplog.records if r.name == SWITCH_LOGGER]
    assert (record.levelname, record.getMessage()) == ("WARNING", "switch_rejected")
    parsed = json.loads(JsonFormatter().format(record))
    assert (parsed["level"], parsed["code"], parsed["user"]) == (
        "WARNING",
        "permission_denied",
        "bob",
    )
    assert parsed["release_id"] == release.pk


def test_secrets_are_redacted_whatever_their_nesting():
    record = _record(
        token="abc",
        headers={"Authorization": "Bearer abc", "Accept": "json"},
        webhook_secret="s3",
        signature="sha256=ff",
        app="api",
    )

    for line in (JsonFormatter().format(record), KeyValueFormatter().format(record)):
        assert "abc" not in line and "s3" not in line and "sha256=ff" not in line
        assert "[redacted]" in line and "api" in line


def test_text_lines_quote_values_that_need_it():
    line = KeyValueFormatter().format(_record("x", detail="two words", n=3, none=None))

    assert 'detail="two words" n=3 none=null' in line


def test_logging_config_rejects_an_unknown_format():
    assert logging_config(log_format="json")["formatters"]["structured"]["log_format"] == "json"
    with pytest.raises(ValueError):
        logging_config(log_format="xml")


def _serve(request, inner_event: str = "inside"):
    def view(req):
        logging.getLogger("releases.test").info(inner_event, extra={"k": 1})
        return HttpResponse("ok")

    return RequestMiddleware(view)(request)


def test_request_id_is_honoured_in_every_line_and_echoed(json_lines):
    request = RequestFactory().get(
        "/api/v1/x?token=abc", HTTP_X_REQUEST_ID="req-42", HTTP_AUTHORIZATION="Bearer abc"
    )

    response = _serve(request)

    assert response["X-Request-ID"] == "req-42"
    lines = json_lines()
    assert len(lines) == 2
    for line in lines:
        assert line["request_id"] == "req-42"
        assert "abc" not in json.dumps(line)  # neither the header nor the query string
    access = lines[1]
    assert (access["event"], access["path"], access["status"]) == (
        "request_finished",
        "/api/v1/x",
        200,
    )


def test_a_missing_or_unsafe_request_id_is_replaced(json_lines):
    for given in (None, "bad id\nforged=1", "x" * 500):
        headers = {"HTTP_X_REQUEST_ID": given} if given else {}
        response = _serve(RequestFactory().get("/p", **headers))
        generated = response["X-Request-ID"]
        assert generated != given and len(generated) == 32
        assert json_lines()[-1]["request_id"] == generated


def test_outside_a_request_lines_carry_no_request_id():
    assert "request_id" not in json.loads(JsonFormatter().format(_record()))


@pytest.mark.django_db
def test_djangos_own_error_line_of_a_request_carries_its_id_too(client, json_lines):
    response = client.post(
        "/api/v1/releases/1/switch-version",
        {},
        content_type="application/json",
        HTTP_X_REQUEST_ID="req-7",
        HTTP_AUTHORIZATION="Bearer not-a-real-token",
    )

    assert response.status_code == 401 and response["X-Request-ID"] == "req-7"
    lines = json_lines()
    assert {line["logger"] for line in lines} >= {
        "django.request",
        "django_structlog.middlewares.request",
    }
    assert all(line["request_id"] == "req-7" for line in lines)
    assert "not-a-real-token" not in json.dumps(lines)


@pytest.mark.django_db
def test_a_switch_refused_by_the_api_for_permission_is_logged_and_counted(release, caplog):
    from prometheus_client import REGISTRY
    from rest_framework.test import APIClient

    bob = UserFactory(username="bob", permissions=["releases.view_releaseapp"])
    client = APIClient()
    client.force_authenticate(bob)
    metric = ("releasetrain_switch_rejections_total", {"code": "permission_denied"})
    before = REGISTRY.get_sample_value(*metric) or 0
    caplog.set_level(logging.INFO, logger=SWITCH_LOGGER)

    response = client.post(f"/api/v1/releases/{release.pk}/switch-version", {}, format="json")

    assert response.status_code == 403
    [record] = [r for r in caplog.records if r.name == SWITCH_LOGGER]
    assert (record.getMessage(), record.code, record.user) == (
        "switch_rejected",
        "permission_denied",
        "bob",
    )
    assert REGISTRY.get_sample_value(*metric) == before + 1


@pytest.mark.django_db
def test_probes_write_no_line_at_info_and_requests_write_one(client, json_lines):
    client.get("/healthz")
    client.get("/api/v1/builds/")

    lines = [line for line in json_lines() if line["logger"].startswith("django_structlog")]
    assert [(line["event"], line["path"]) for line in lines] == [
        ("request_finished", "/api/v1/builds/")
    ]
