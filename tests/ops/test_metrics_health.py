"""/metrics after a detection and a switch; the health probes."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db.migrations.executor import MigrationExecutor
from prometheus_client import REGISTRY

from releases.services import create_batch, switch_version
from releases.services.batches import AppChoice
from tests.factories import UserFactory
from tests.helpers import notify
from utilities.errors import DomainError

pytestmark = pytest.mark.django_db


def _value(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _scrape(client) -> str:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    return response.content.decode()


def test_metrics_count_a_detection_a_switch_and_a_rejection(client):
    before = {
        "notified": _value(
            "releasetrain_builds_notified_total", status="success", result="created"
        ),
        "detected": _value("releasetrain_new_tags_detected_total"),
        "changed": _value("releasetrain_version_switches_total", result="changed"),
        "rejected": _value("releasetrain_switch_rejections_total", code="permission_denied"),
    }
    notify(1, {"api": "v1"})
    batch = create_batch(name="b", apps=[AppChoice("api")], user=UserFactory()).batch
    notify(2, {"api": "v2"})
    release = batch.releases.get()
    with pytest.raises(DomainError):
        switch_version(release_id=release.pk, user=UserFactory())
    switch_version(
        release_id=release.pk, user=UserFactory(permissions=["applications.switch_version"])
    )

    text = _scrape(client)

    after = {
        "notified": _value(
            "releasetrain_builds_notified_total", status="success", result="created"
        ),
        "detected": _value("releasetrain_new_tags_detected_total"),
        "changed": _value("releasetrain_version_switches_total", result="changed"),
        "rejected": _value("releasetrain_switch_rejections_total", code="permission_denied"),
    }
    assert {k: after[k] - before[k] for k in before} == {
        "notified": 2,
        "detected": 1,
        "changed": 1,
        "rejected": 1,
    }
    for line in (
        'releasetrain_builds_notified_total{result="created",status="success"} '
        f"{after['notified']}",
        f"releasetrain_new_tags_detected_total {after['detected']}",
        f'releasetrain_version_switches_total{{result="changed"}} {after["changed"]}',
        f'releasetrain_switch_rejections_total{{code="permission_denied"}} {after["rejected"]}',
    ):
        assert line in text
    assert "# TYPE releasetrain_job_operations_total counter" in text


def test_healthz_answers_without_the_database(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_readyz_is_ok_with_every_migration_applied(client):
    response = client.get("/readyz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_readyz_is_unavailable_with_migrations_pending(client, monkeypatch):
    # As right after a deploy whose migration Job has not run yet.
    real_plan = MigrationExecutor.migration_plan

    def plan_with_one_pending(self, targets, clean_start=False):
        return [*real_plan(self, targets, clean_start), ("releases.9999_new", False)]

    monkeypatch.setattr(MigrationExecutor, "migration_plan", plan_with_one_pending)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "unapplied_migrations": 1}


def test_probes_only_answer_get(client):
    assert client.post("/healthz").status_code == 405


def test_gunicorn_treats_an_empty_multiprocess_dir_as_off():
    # prometheus_client would otherwise write its files into the working directory.
    code = (
        "import os, runpy; runpy.run_path('config/gunicorn.py'); "
        "from prometheus_client import values; "
        "print('PROMETHEUS_MULTIPROC_DIR' in os.environ, values.ValueClass.__name__)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": ""},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "MutexValue"]
