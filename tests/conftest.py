import pytest
from django.test.client import Client

from tests.contract import check_response
from tests.factories import UserFactory
from tests.fakes import RecordingExecutor


@pytest.fixture
def executor(settings) -> RecordingExecutor:
    """Route Job operations to an executor that records them, for tests of the workflows."""
    settings.DEPLOY_EXECUTOR = "tests.fakes.RecordingExecutor"
    RecordingExecutor.reset()
    return RecordingExecutor()


@pytest.fixture
def user():
    """alice, a release engineer: she may switch versions and roll batches out."""
    return UserFactory(
        username="alice", permissions=["applications.switch_version", "applications.deploy_batch"]
    )


@pytest.fixture(autouse=True)
def api_responses_follow_the_schema(monkeypatch):
    """Every API response a test client receives is checked against the OpenAPI schema, with
    strict nullability and documented status codes (tests/contract.py)."""
    request = Client.request

    def checked(self, **kwargs):
        response = request(self, **kwargs)
        check_response(
            kwargs.get("REQUEST_METHOD", "GET"),
            kwargs.get("PATH_INFO", ""),
            response.status_code,
            response.get("Content-Type", ""),
            getattr(response, "content", b"") if not response.streaming else b"",
        )
        return response

    monkeypatch.setattr(Client, "request", checked)
