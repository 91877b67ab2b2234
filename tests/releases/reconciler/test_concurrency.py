"""Several reconcilers against one PostgreSQL database, with real threads and transactions."""

import os
import signal
import socket
import subprocess
import sys
import threading
import urllib.request
from collections import Counter

import pytest
from django.conf import settings as django_settings
from django.db import connection

from deployments.models import Deployment
from releases.models import Batch
from releases.reconciler import Reconciler
from releases.services import create_batch, start_pre_deploy
from releases.services.batches import AppChoice
from tests.helpers import notify

pytestmark = pytest.mark.django_db(transaction=True)

APPS = [f"app{i}" for i in range(8)]


def _run_side_by_side(count: int, ticks: int) -> list[BaseException]:
    """`count` reconcilers, each in its own thread with its own connection, started together."""
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def run(n: int) -> None:
        try:
            reconciler = Reconciler(name=f"reconciler-{n}")
            barrier.wait(timeout=30)
            for _ in range(ticks):
                reconciler.tick()
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    return errors


def test_reconcilers_side_by_side_create_each_job_exactly_once(cluster, user):
    notify(1, {app: "v1" for app in APPS})
    batch = create_batch(name="Nov", apps=[AppChoice(a) for a in APPS], user=user).batch
    start_pre_deploy(batch_id=batch.pk, user=user)
    # Slow creates keep each launch in flight while the other reconcilers scan.
    cluster.create_delay = 0.05

    assert _run_side_by_side(count=3, ticks=2) == []

    assert Counter(cluster.created()) == Counter(
        {("release-train-pre", d.job_name) for d in Deployment.objects.all()}
    )
    # Not even a second attempt (a 409): a live reconciler's launch is left alone.
    assert cluster.count("create") == len(APPS)
    assert set(Deployment.objects.values_list("status", flat=True)) == {"running"}

    cluster.finish_all()
    assert _run_side_by_side(count=3, ticks=1) == []

    assert Batch.objects.get(pk=batch.pk).status == "prod_waiting"
    assert set(Deployment.objects.values_list("status", flat=True)) == {"succeeded"}
    assert not Deployment.objects.exclude(claimed_by="").exists()


def test_sigterm_stops_the_reconciler_cleanly(local_jobs):
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "DEPLOY_LOCAL_STATE_DIR": str(local_jobs),
        "LOG_FORMAT": "text",
        "DEPLOY_RECONCILER_METRICS_ADDR": "127.0.0.1",
        "DEPLOY_RECONCILER_METRICS_PORT": str(_free_port()),
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    process = subprocess.Popen(
        [sys.executable, "manage.py", "run_reconciler", "--interval", "0.05"],
        cwd=django_settings.BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines = []
        for line in process.stdout:  # ends when the process exits at the latest
            lines.append(line)
            if "reconciler_started" in line:
                port = env["DEPLOY_RECONCILER_METRICS_PORT"]
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as answer:
                    scraped = answer.read().decode()
                process.send_signal(signal.SIGTERM)
                break
        rest, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    output = "".join(lines) + rest
    assert process.returncode == 0, output
    assert "reconciler_stopped" in output
    assert "releasetrain_job_operations_total" in scraped


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.django_db
def test_the_command_refuses_to_start_with_unusable_settings(settings):
    from django.core.management import CommandError, call_command

    settings.DEPLOY_EXECUTOR = "kubernetes"
    settings.DEPLOY_JOB_IMAGE = ""

    with pytest.raises(CommandError, match="DEPLOY_JOB_IMAGE is required"):
        call_command("run_reconciler", "--once")
