"""The OpenAPI contract: it validates, Swagger UI runs offline, and fuzzing it finds no 5xx."""

from collections import Counter

import pytest
import schemathesis
from django.core.management import call_command
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode

from releases.services import create_batch, start_pre_deploy
from releases.services.batches import AppChoice
from tests.factories import UserFactory
from tests.helpers import notify, run_stage

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


@pytest.fixture
def live_schema(db):
    # As Django's test client does: closing "old" connections after each request would close
    # the one holding the test's transaction.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def superuser_auth(db) -> dict:
    """Some data for the fuzzer to find, and a token that may do everything."""
    user = UserFactory(is_superuser=True)
    notify(1, {"api": "v1", "web": "w1"})
    batch = create_batch(name="Nov", apps=[AppChoice("api"), AppChoice("web")], user=user).batch
    run_stage(start_pre_deploy(batch_id=batch.pk, user=user))
    notify(2, {"api": "v2"})
    create_batch(name="Dec", apps=[AppChoice("api")], user=user)
    return {"Authorization": f"Bearer {Token.objects.create(user=user).key}"}


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_fuzzing_the_api_finds_no_server_error(live_schema, superuser_auth, mode):
    """Valid and invalid requests against every operation, with a token that may do anything:
    whatever the answer, it is never a 5xx. Bounded: a few hundred requests in all."""
    operations = [result.ok() for result in live_schema.get_all_operations()]
    assert len(operations) >= 15
    statuses = Counter()

    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=12,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case):
            response = case.call_and_validate(headers=superuser_auth, checks=[not_a_server_error])
            statuses[response.status_code] += 1

        check()

    print(dict(statuses))
    # The token worked: requests got past authentication and reached the views.
    assert statuses[401] < sum(statuses.values()) / 2
