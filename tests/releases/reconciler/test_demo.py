"""The demo's reconciler on SQLite, for real: no LISTEN there, so it looks for work on its short
poll (DEPLOY_RECONCILER_POLL_SECONDS) rather than its interval."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.timeout(180)

START_AND_WAIT = """
import time, django
django.setup()
from django.contrib.auth import get_user_model
from releases.models import Batch
from releases.services import start_pre_deploy
batch = Batch.objects.get()
start_pre_deploy(batch_id=batch.pk, user=get_user_model().objects.get(username="alice"))
deadline = time.monotonic() + 60
while Batch.objects.get(pk=batch.pk).status == "pre_deploying" and time.monotonic() < deadline:
    time.sleep(0.1)
print(Batch.objects.get(pk=batch.pk).status)
"""


def test_the_demo_reconciler_starts_a_stage_on_sqlite_without_waiting_its_interval(tmp_path):
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE"))},
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "DEPLOY_EXECUTOR": "local",
        "DEPLOY_LOCAL_STATE_DIR": str(tmp_path / "jobs"),
        "DEMO_DEPLOY_SECONDS": "0",
        "LOG_FORMAT": "text",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)

    def manage(*args):
        return subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True
        )

    manage("migrate", "--noinput", "-v", "0")
    manage("seed_demo")
    # An interval far beyond the test's bounds: only the SQLite poll can start the stage.
    reconciler = subprocess.Popen(
        [sys.executable, "manage.py", "run_reconciler", "--interval", "600"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        result = subprocess.run(
            [sys.executable, "-c", START_AND_WAIT],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        reconciler.send_signal(signal.SIGTERM)
        output, _ = reconciler.communicate(timeout=30)
    assert result.stdout.strip().splitlines()[-1] == "prod_waiting", result.stderr + output
    assert reconciler.returncode == 0, output
    assert "Traceback" not in output
