"""The OpenAPI contract: it validates, Swagger UI runs offline, and schemathesis finds nothing."""

import logging

import pytest
import schemathesis
from django.core.management import call_command
from rest_framework.authtoken.models import Token
from schemathesis import engine
from schemathesis.engine import Status, events
from schemathesis.openapi.checks import RejectedPositiveData

from releases.services import cancel_batch, create_batch, start_pre_deploy, switch_version
from releases.services.batches import AppChoice
from tests.factories import UserFactory
from tests.helpers import notify, nov_batch, run_stage

pytestmark = pytest.mark.django_db


def test_the_schema_validates_without_warnings(tmp_path):
    out = tmp_path / "schema.yaml"

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))

    text = out.read_text()
    for path in (
        "/api/v1/builds/notify:",
        "/api/v1/releases/{id}/switch-version:",
        "/api/v1/releases/{id}/status:",
        "/api/v1/batches/{id}/start-pre-deploy:",
        "/api/v1/batches/{id}/start-prod-deploy:",
        "/api/v1/batches/{id}/cancel:",
        "/api/v1/applications/:",
        "/api/v1/applications/{name}/:",
    ):
        assert path in text
    assert "Drone payload" in text


def test_swagger_ui_is_served_without_a_cdn(client):
    page = client.get("/api/docs/")

    assert page.status_code == 200
    html = page.content.decode()
    assert "swagger-ui" in html
    assert "cdn" not in html.lower() and "unpkg" not in html.lower()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in html


def test_the_schema_is_served(client):
    response = client.get("/api/schema/?format=json")

    assert response.status_code == 200
    assert response.json()["info"]["title"] == "Release Train API"


def test_every_operation_has_examples_and_documents_its_errors(client):
    schema = client.get("/api/schema/?format=json").json()

    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            name = f"{method.upper()} {path}"
            responses = operation["responses"]
            assert any(
                "examples" in media
                for code, response in responses.items()
                if code.startswith("2")
                for media in response["content"].values()
            ), f"{name}: no response example"
            if "requestBody" in operation:
                body = operation["requestBody"]["content"]["application/json"]
                assert "examples" in body, f"{name}: no request example"
            assert {"401", "403"} <= set(responses), f"{name}: auth errors undocumented"
            for code in set(responses) - {"200", "201"}:
                error = responses[code]["content"]["application/json"]["schema"]
                assert error == {"$ref": "#/components/schemas/Error"}, name


def _seed() -> str:
    """Data for the fuzzer to find (open, deploying and closed batches, a history, users since
    deleted), and a token of a superuser, who may do everything."""
    user = UserFactory(is_superuser=True)
    gone = UserFactory(permissions=["applications.switch_version", "applications.deploy_batch"])
    batch = nov_batch(gone, repo="org/shop")
    run_stage(start_pre_deploy(batch_id=batch.pk, user=gone))
    notify(2, {"api": "v2"}, repo="org/shop")
    switch_version(release_id=batch.releases.get(application__name="api").pk, user=gone)
    gone.delete()  # created_by and tag_updated_by become null
    create_batch(name="Dec", apps=[AppChoice("api")], user=user)
    cancel_batch(
        batch_id=create_batch(name="Old", apps=[AppChoice("web")], user=user).batch.pk, user=user
    )
    return Token.objects.create(user=user).key


# A 400 with one of these codes refuses a request the schema cannot call malformed: the rule
# depends on the data (a tag no build produced, an app never seen, one app listed twice, a batch
# that does not exist, a hold's fields or window against each other and the clock).
DOMAIN_400_CODES = {
    "unknown_tag",
    "unknown_app",
    "duplicate_app",
    "no_successful_build",
    "unknown_batch",
    "invalid_hold",
}


def _semantic_refusal(failure, response) -> bool:
    if not isinstance(failure, RejectedPositiveData) or response.status_code != 400:
        return False
    try:
        return response.json().get("code") in DOMAIN_400_CODES
    except ValueError:
        return False


def run_schemathesis(
    base_url: str, token: str, *, max_examples: int, max_steps: int
) -> tuple[list[str], set[str]]:
    """What `schemathesis run --checks all` does (examples, coverage, fuzzing and stateful
    phases, every check), through its Python API; returns the distinct failures and the
    phases that ran."""
    config = schemathesis.Config.from_dict(
        {
            "seed": 20261129,
            "cache": {"enabled": False},
            "workers": 1,
            "headers": {"Authorization": f"Bearer {token}"},
            "generation": {"max-examples": max_examples, "database": "none"},
            "phases": {"stateful": {"max-steps": max_steps}},
        }
    )
    schema = schemathesis.openapi.from_url(f"{base_url}/api/schema/?format=json", config=config)

    @schema.hook
    def filter_failure(context, failure, case, response) -> bool:
        return not _semantic_refusal(failure, response)

    failures: dict[tuple, str] = {}
    ran: set[str] = set()
    for event in engine.from_schema(schema).execute():
        if isinstance(event, events.PhaseFinished) and event.phase.is_enabled:
            ran.add(event.phase.name.value)
        if isinstance(event, events.ScenarioFinished):
            for checks in event.recorder.checks.values():
                for check in checks:
                    if check.status == Status.FAILURE and check.failure_info:
                        failure = check.failure_info.failure
                        key = (event.phase.value, failure.operation, check.name, failure.title)
                        failures.setdefault(
                            key, f"{failure.message}\n{check.failure_info.code_sample}"
                        )
        elif isinstance(event, events.NonFatalError | events.FatalError):
            failures[("error", getattr(event, "label", ""), "", "")] = repr(
                getattr(event, "value", None) or getattr(event, "exception", event)
            )
    return [f"{key}: {text}" for key, text in failures.items()], ran


@pytest.fixture
def quiet_request_logs():
    """A line per request is noise here (about a thousand of them)."""
    loggers = [logging.getLogger(name) for name in ("config.requests", "django.request")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    yield
    for logger, level in zip(loggers, levels, strict=True):
        logger.setLevel(level)


@pytest.mark.timeout(600)
def test_schemathesis_every_check_and_the_stateful_phase_find_nothing(
    live_server, quiet_request_logs
):
    """The whole contract, as an outside client sees it: a live server on seeded PostgreSQL,
    a superuser's token, every schemathesis check, examples, coverage, fuzzing and stateful
    phases, with bounded examples."""
    token = _seed()

    failures, ran = run_schemathesis(live_server.url, token, max_examples=12, max_steps=8)

    assert failures == [], "\n\n".join(failures)
    assert {"examples", "coverage", "fuzzing", "stateful"} <= ran
