"""`make bench`'s seeding and measuring code, run at a tiny scale against the test database, so
a schema change that breaks the bench's raw SQL fails here rather than on the next bench run."""

import pytest
from django.db import connection

from bench import measure, seed_scale

pytestmark = pytest.mark.django_db


@pytest.fixture
def tiny(monkeypatch):
    """The probe fixture at a few rows instead of thousands."""
    monkeypatch.setattr(measure, "PROBE_APPS", measure.PROBE_APPS[:3])
    monkeypatch.setattr(measure, "CONTENTION", 2)
    monkeypatch.setattr(measure, "HEAVY_HISTORY", 20)
    monkeypatch.setenv("BENCH_LATENCY_N", "2")
    monkeypatch.setenv("BENCH_INDEX_COST_N", "2")
    monkeypatch.setenv("BENCH_ROUNDS", "1")


def test_the_seeded_history_loads_and_keeps_its_own_rules():
    sizes = seed_scale.sizes(0.001)

    with connection.cursor() as cursor:
        timings = seed_scale.load(cursor, sizes)
        problems = seed_scale.verify(cursor)

    assert problems == {}
    releases = sizes["batches"] * sizes["releases_per_batch"]
    assert timings["deployments_deployment"][0] == releases * sizes["deployments_per_release"]
    assert timings["builds_build"][0] == sizes["builds"]


def test_every_measuring_phase_produces_numbers(tiny):
    with connection.cursor() as cursor:
        seed_scale.load(cursor, seed_scale.sizes(0.001))

    probe = measure.prepare()
    flat = measure.flat()
    latency = measure.latency()
    plans = measure.explain()
    counts = measure.counts()
    with connection.cursor() as cursor:
        # As a commit would: checks the deferred foreign keys of every row so far, so the
        # index changes below find no pending trigger events on the tables.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    index_cost = measure.index_cost()

    assert probe["token"] and probe["seeded_app"]
    assert flat["status"]["0"]["endpoint"] == flat["status"]["10000"]["endpoint"] > 0
    assert all(n["service_first_seen"] > 0 for n in flat["ingest"].values())
    assert flat["ingest"][1]["endpoint_first_seen"] > flat["ingest"][1]["service_first_seen"]
    assert all(value > 0 for value in latency.values())
    assert all("ms" in row for row in plans["status"])
    assert counts["deployments_deployment"] > 0
    assert index_cost["ingest_ratio"] > 0 and index_cost["outcome_ratio"] > 0
