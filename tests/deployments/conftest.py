import contextlib
import json
import os
import signal
import sys
import threading
import time
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command

from deployments.executors import get_executor
from kube_fake import FakeKubernetes
from releases.reconciler import Reconciler
from releases.services import create_batch
from releases.services.batches import AppChoice
from tests.helpers import notify

DEMO_SCRIPT = Path(django_settings.BASE_DIR) / "scripts" / "demo_deploy.py"
# Only a wake-up (NOTIFY, a watched change) makes a running reconciler tick in a test's time.
NEVER = 600.0


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


@pytest.fixture
def batch(user):
    """A batch of two apps, api and web, waiting for pre."""
    notify(1, {"api": "v1", "web": "w1"})
    return create_batch(name="Nov", apps=[AppChoice("api"), AppChoice("web")], user=user).batch


def tick() -> str:
    """One reconciler tick through the real command; returns its summary line."""
    out = StringIO()
    call_command("run_reconciler", "--once", stdout=out)
    return out.getvalue().strip()


def wait_for(condition, *, seconds: float = 30.0, what: str = "the reconcilers") -> None:
    """Bounded waiting for reconcilers in other threads; fails, never asserts on time."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not get there")
        time.sleep(0.05)


@pytest.fixture
def reconcilers(cluster):
    """`start(n)` runs n reconcilers' real loop (`Reconciler.run`) in threads, each with its
    own database connection, once their informers have listed; all are stopped afterwards.
    Needs `django_db(transaction=True)`: they see only what commits."""
    stop = threading.Event()
    threads: list[threading.Thread] = []
    started: list[Reconciler] = []
    errors: list[BaseException] = []

    def start(n: int = 1, *, interval: float = NEVER) -> list[Reconciler]:
        for _ in range(n):
            reconciler = Reconciler(name=f"reconciler-{len(started)}", stop=stop)

            def run(reconciler=reconciler):
                try:
                    reconciler.run(interval=interval)
                except BaseException as exc:
                    errors.append(exc)

            thread = threading.Thread(target=run)
            thread.start()
            threads.append(thread)
            started.append(reconciler)
        wait_for(get_executor().synced, what="the informers")
        return started[-n:]

    yield start
    for reconciler in started:
        reconciler.request_stop()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(t.is_alive() for t in threads), "a reconciler did not stop"
    assert errors == []
