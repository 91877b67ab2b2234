"""Fixtures every suite shares: users, API clients, the executor that records Job operations,
and the batch most tests start from."""

import contextlib
import json
import os
import signal
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.test.client import Client
from rest_framework.test import APIClient

from kube_fake import FakeKubernetes
from releases.models import Batch
from tests.contract.checks import check_response
from tests.factories import UserFactory
from tests.fakes import RecordingExecutor
from tests.helpers import ALL_PERMISSIONS, nov_batch, token_client
from tests.pages import compile_translations_if_stale, staff

DEMO_SCRIPT = Path(django_settings.BASE_DIR) / "scripts" / "demo_deploy.py"


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
    strict nullability and documented status codes (tests/contract/checks.py)."""
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


@pytest.fixture(scope="session", autouse=True)
def compiled_translations():
    compile_translations_if_stale()


# --- API clients ---


@pytest.fixture
def client_with():
    """`client_with("applications.switch_version", ...)`: a client of a user holding exactly these."""

    def make(*permissions: str) -> APIClient:
        return token_client(UserFactory(permissions=list(permissions)))

    return make


@pytest.fixture
def api(client_with) -> APIClient:
    """A client of a user who may do everything the API offers."""
    return client_with(*ALL_PERMISSIONS)


@pytest.fixture
def anonymous() -> APIClient:
    return APIClient()


# --- Staff users of the admin ---


@pytest.fixture
def viewer():
    """Sees everything, may neither switch nor roll out."""
    return staff("viewer")


@pytest.fixture
def switcher():
    return staff("switcher", "applications.switch_version")


@pytest.fixture
def deployer():
    return staff("deployer", "applications.deploy_batch")


@pytest.fixture
def engineer():
    return staff("engineer", "applications.switch_version", "applications.deploy_batch")


@pytest.fixture
def batch(user) -> Batch:
    """Batch "Nov" of alice's, waiting for pre: api at v1, web at w1."""
    return nov_batch(user)


# --- Executors that really run Jobs ---


@pytest.fixture
def cluster(settings, tmp_path, monkeypatch):
    """A fake Kubernetes API on loopback, reached through a kubeconfig like a real cluster."""
    server = FakeKubernetes().start()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "fake", "cluster": {"server": server.url}}],
                "users": [{"name": "tester", "user": {"token": "test-token"}}],
                "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "tester"}}],
                "current-context": "fake",
            }
        )
    )
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    settings.DEPLOY_EXECUTOR = "kubernetes"
    settings.DEPLOY_KUBECONFIG = str(kubeconfig)
    settings.DEPLOY_JOB_IMAGE = "registry.example.com/{app}:{image_tag}"
    settings.DEPLOY_JOB_COMMAND = ["/deploy", "--wait"]
    # Short, so an injected timeout (a 3 s delay) costs little, yet far above the
    # milliseconds the fake needs for an answer on a busy machine.
    settings.DEPLOY_KUBERNETES_TIMEOUT = 1.0
    yield server
    server.stop()


@pytest.fixture
def local_jobs(settings, tmp_path, monkeypatch):
    """The local executor running the demo script without its pauses; yields the state dir."""
    state = tmp_path / "local-jobs"
    settings.DEPLOY_EXECUTOR = "local"
    settings.DEPLOY_LOCAL_STATE_DIR = str(state)
    settings.DEPLOY_LOCAL_COMMAND = [sys.executable, str(DEMO_SCRIPT)]
    monkeypatch.setenv("DEMO_DEPLOY_SECONDS", "0")
    yield state
    # Leave no process behind, whatever the test did.
    for pid_file in state.glob("*/*/pid"):
        if not pid_file.with_name("exit_code").exists():
            with contextlib.suppress(ValueError, OSError):
                os.killpg(int(pid_file.read_text()), signal.SIGKILL)
