"""One benchmark phase inside Django (bench.settings), against BENCH_DATABASE_URL; prints JSON.

    DJANGO_SETTINGS_MODULE=bench.settings python -m bench.measure <phase>

Phases: prepare (the probe fixture, same in every database), flat (statement counts),
latency (in-process p50 of ingest and status), explain (plans of those statements).
`bench.run` calls them; they are separate processes so each database gets a clean process.
"""

import json
import os
import statistics
import sys
import time

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.contrib.auth.models import Permission  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from rest_framework.authtoken.models import Token  # noqa: E402

from builds.models import Build, BuildImage  # noqa: E402
from builds.notifications import AppImage, BuildNotification  # noqa: E402
from releases.models import Batch, ReleaseApp  # noqa: E402
from releases.selectors import release_status  # noqa: E402
from releases.services import create_batch, ingest_build_notification  # noqa: E402
from releases.services.batches import AppChoice  # noqa: E402

PROBE_APPS = [f"probe-{i:03d}" for i in range(200)]
OPEN_PROBE_BATCHES = 5
CONTENTION = 64
# Deployments of history behind the heavy probe release (the status must not care).
HEAVY_HISTORY = 10_000
PERMISSIONS = [
    "releases.view_batch",
    "releases.view_releaseapp",
    "deployments.view_deployment",
    "builds.view_build",
    "releases.add_batch",
    "applications.deploy_batch",
    "applications.switch_version",
    "builds.notify_build",
    "applications.view_application",
]
# Probe builds are numbered far above anything seeded, in their own repository.
PROBE_REPO = "org/probe"


def meta_get(key: str):
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE IF NOT EXISTS bench_meta (key text PRIMARY KEY, value text NOT NULL)"
        )
        cursor.execute("SELECT value FROM bench_meta WHERE key = %s", [key])
        row = cursor.fetchone()
    return json.loads(row[0]) if row else None


def meta_set(key: str, value) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO bench_meta VALUES (%s, %s) ON CONFLICT (key) DO UPDATE"
            " SET value = excluded.value",
            [key, json.dumps(value)],
        )


def next_number() -> int:
    last = (
        Build.objects.filter(repo=PROBE_REPO).order_by("-number").values_list("number", flat=True)
    )
    return (last.first() or 0) + 1


def notification(
    number: int, apps: list[str], tag: str | None = None, repo: str = PROBE_REPO
) -> BuildNotification:
    return BuildNotification(
        number=number,
        status="success",
        apps=tuple(AppImage(a, tag or f"p{number}") for a in apps),
        repo=repo,
    )


def history_sql(release_id: int, count: int) -> None:
    """`count` deployments for one release (two current, the rest a superseded chain)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(max(id), 0) FROM deployments_deployment")
        base = cursor.fetchone()[0] + 10
        cursor.execute(
            """INSERT INTO deployments_deployment (id, release_app_id, application_id, environment,
                 image_tag, config, status, job_name, job_namespace, error, created_at, started_at,
                 finished_at, superseded_at, superseded_by_id, cleanup_pending, claimed_by,
                 attempts)
               SELECT %(base)s + i, %(r)s,
                      (SELECT application_id FROM releases_releaseapp WHERE id = %(r)s),
                      CASE WHEN i %% 2 = 0 THEN 'pre' ELSE 'prod' END,
                      'p1', '{}'::jsonb, 'succeeded', 'rt-probe-' || (%(base)s + i),
                      'release-train-pre', '', now() - (%(n)s - i) * interval '1 minute',
                      now(), now(),
                      CASE WHEN i < %(n)s - 2 THEN now() END,
                      CASE WHEN i < %(n)s - 2 THEN %(base)s + i + 2 END, false, '', 0
               FROM generate_series(0, %(n)s - 1) i""",
            {"base": base, "r": release_id, "n": count},
        )
        cursor.execute(
            "SELECT setval(pg_get_serial_sequence('deployments_deployment', 'id'),"
            " (SELECT max(id) FROM deployments_deployment))"
        )


def deployed_sql(batch_id: int, environment: str, status: str) -> None:
    """A current deployment in `environment` for every release of the batch, finished now."""
    with connection.cursor() as cursor:
        cursor.execute(
            """INSERT INTO deployments_deployment (release_app_id, application_id, environment,
                 image_tag, config, status, job_name, job_namespace, error, created_at,
                 started_at, finished_at, cleanup_pending, claimed_by, attempts)
               SELECT r.id, r.application_id, %(env)s::varchar, r.image_tag, '{}'::jsonb,
                      %(status)s, 'rt-probe-' || %(env)s::varchar || '-' || r.id,
                      'release-train-' || %(env)s::varchar, '',
                      now(), now(), now(), false, '', 0
               FROM releases_releaseapp r WHERE r.batch_id = %(batch)s""",
            {"batch": batch_id, "env": environment, "status": status},
        )


def prepare() -> dict:
    """The probe fixture: the same rows in the seeded and the empty database."""
    probe = meta_get("probe")
    if probe:
        return probe
    User = get_user_model()
    user, _ = User.objects.get_or_create(username="bench")
    user.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label__in=["releases", "builds", "deployments", "applications"],
            codename__in=[p.split(".")[1] for p in PERMISSIONS],
        )
    )
    token, _ = Token.objects.get_or_create(user=user)
    ingest_build_notification(notification=notification(1, PROBE_APPS, tag="p1"))
    ingest_build_notification(notification=notification(2, ["contend"], tag="c1"))
    ingest_build_notification(notification=notification(3, ["contend"], tag="c2"))
    batches = [
        create_batch(name=f"probe-{i}", apps=[AppChoice(a) for a in PROBE_APPS], user=user).batch.pk
        for i in range(OPEN_PROBE_BATCHES)
    ]
    release = lambda batch, app: ReleaseApp.objects.get(batch_id=batch, application__name=app).pk  # noqa: E731
    status_release, heavy_release, empty_release = (
        release(batches[0], "probe-000"),
        release(batches[1], "probe-000"),
        release(batches[2], "probe-000"),
    )
    history_sql(status_release, 10)
    history_sql(heavy_release, HEAVY_HISTORY)
    # What runs where, for the applications list: every probe app runs in pre and prod, and
    # has a newer failed prod attempt (as the seeded apps run in both and have open releases).
    deployed_sql(batches[3], "pre", "succeeded")
    deployed_sql(batches[3], "prod", "succeeded")
    deployed_sql(batches[4], "prod", "failed")
    distinct = [
        create_batch(name=f"contend-{i}", apps=[AppChoice("contend", "c1")], user=user)
        .batch.releases.get()
        .pk
        for i in range(CONTENTION)
    ]
    one = create_batch(name="contend-one", apps=[AppChoice("contend", "c1")], user=user)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    probe = {
        "token": token.key,
        "batches": batches,
        "status_release": status_release,
        "heavy_release": heavy_release,
        "empty_release": empty_release,
        "contend_distinct": distinct,
        "contend_one": one.batch.releases.get().pk,
        "contend_tags": ["c1", "c2"],
        "seeded_app": seeded_app(),
    }
    meta_set("probe", probe)
    return probe


def seeded_app():
    """An app of the seeded history that sits in open batches, if there is one."""
    row = (
        ReleaseApp.objects.filter(
            batch__status__in=["pre_waiting", "prod_waiting"], application__name__startswith="app-"
        )
        .values_list("application__name", flat=True)
        .first()
    )
    return row


def client(probe) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {probe['token']}")


def count(fn) -> tuple[int, list[str]]:
    with CaptureQueriesContext(connection) as ctx:
        fn()
    return len(ctx), [q["sql"] for q in ctx.captured_queries]


def flat() -> dict:
    probe = prepare()
    web = client(probe)
    out = {"ingest": {}, "status": {}, "applications": {}}
    for n_apps in (1, 10, 200):
        apps = PROBE_APPS[:n_apps]
        number = next_number()
        first, _ = count(
            lambda n=number, a=apps: ingest_build_notification(notification=notification(n, a))
        )
        again, _ = count(
            lambda n=number, a=apps: ingest_build_notification(notification=notification(n, a))
        )
        body = json.dumps(
            {
                "build_number": number + 1,
                "build_status": "success",
                "repo": PROBE_REPO,
                "apps": [{"name": a, "image_tag": f"p{number + 1}"} for a in apps],
            }
        )
        http, _ = count(
            lambda b=body: web.post("/api/v1/builds/notify", b, content_type="application/json")
        )
        out["ingest"][n_apps] = {
            "service_first_seen": first,
            "service_duplicate": again,
            "endpoint_first_seen": http,
            "releases_updated": len(apps) * OPEN_PROBE_BATCHES,
        }
    if probe.get("seeded_app"):
        # An app with the seeded history behind it: ~100 releases, 200 builds, a few open.
        app = probe["seeded_app"]
        # In the seeded repository: "latest" compares build numbers within what Drone numbers.
        number = (
            Build.objects.filter(repo="org/bench")
            .order_by("-number")
            .values_list("number", flat=True)
            .first()
            or 0
        ) + 1
        first, _ = count(
            lambda: ingest_build_notification(
                notification=notification(number, [app], repo="org/bench")
            )
        )
        out["ingest"]["seeded app"] = {
            "app": app,
            "service_first_seen": first,
            "releases_updated": ReleaseApp.objects.filter(
                application__name=app, latest_image_tag=f"p{number}"
            ).count(),
        }
    for label, release_id in (("0", probe["empty_release"]), ("10000", probe["heavy_release"])):
        selector, _ = count(lambda r=release_id: release_status(release_id=r, user=None))
        endpoint, _ = count(lambda r=release_id: web.get(f"/api/v1/releases/{r}/status"))
        out["status"][label] = {"selector": selector, "endpoint": endpoint}
    for query in ("", "?behind=prod"):
        queries, _ = count(lambda q=query: web.get(f"/api/v1/applications/{q}"))
        out["applications"][query or "first page"] = queries
    return out


def latency() -> dict:
    """p50 (ms) of the full request in-process: 1-app ingest, status (10 deployments) and the
    first page of the applications overview."""
    probe = prepare()
    web = client(probe)
    rounds = int(os.environ.get("BENCH_LATENCY_N", "150"))
    # Earlier phases added builds and releases; plans from stale statistics would measure the
    # planner's ignorance (autovacuum would have analyzed a production database by now).
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    ingest, status, applications = [], [], []
    number = next_number()
    for i in range(rounds):
        body = json.dumps(
            {
                "build_number": number + i,
                "build_status": "success",
                "repo": PROBE_REPO,
                "apps": [{"name": PROBE_APPS[i % len(PROBE_APPS)], "image_tag": f"p{number + i}"}],
            }
        )
        t = time.perf_counter()
        response = web.post("/api/v1/builds/notify", body, content_type="application/json")
        ingest.append((time.perf_counter() - t) * 1000)
        assert response.status_code == 201, response.content
        t = time.perf_counter()
        response = web.get(f"/api/v1/releases/{probe['status_release']}/status")
        status.append((time.perf_counter() - t) * 1000)
        assert response.status_code == 200, response.content
        t = time.perf_counter()
        response = web.get("/api/v1/applications/")
        applications.append((time.perf_counter() - t) * 1000)
        assert response.status_code == 200, response.content
    return {
        "ingest_p50_ms": statistics.median(ingest),
        "status_p50_ms": statistics.median(status),
        "applications_p50_ms": statistics.median(applications),
    }


def explain() -> dict:
    """EXPLAIN ANALYZE of every statement one ingest and one status read run (rolled back)."""
    probe = prepare()
    web = client(probe)
    number = next_number()
    body = json.dumps(
        {
            "build_number": number,
            "build_status": "success",
            "repo": PROBE_REPO,
            "apps": [{"name": "probe-000", "image_tag": f"p{number}"}],
        }
    )
    plans = {}
    for label, call in (
        (
            "ingest",
            lambda: web.post("/api/v1/builds/notify", body, content_type="application/json"),
        ),
        ("status", lambda: web.get(f"/api/v1/releases/{probe['heavy_release']}/status")),
        ("applications", lambda: web.get("/api/v1/applications/")),
    ):
        _, statements = count(call)
        rows = []
        for sql in statements:
            if not sql.lstrip().upper().startswith(("SELECT", "UPDATE", "INSERT", "DELETE")):
                continue
            try:
                with transaction.atomic(), connection.cursor() as cursor:
                    cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql)
                    plan = cursor.fetchone()[0][0]
                    transaction.set_rollback(True)
            except Exception as exc:  # e.g. a statement whose row now conflicts: skip it
                rows.append({"sql": _shown(sql, probe), "error": repr(exc)[:120]})
                continue
            rows.append(
                {
                    "sql": _shown(sql, probe),
                    "ms": plan["Execution Time"],
                    "seq_scans": sorted(set(_seq_scans(plan["Plan"]))),
                }
            )
        plans[label] = rows
    return plans


def _shown(sql: str, probe: dict) -> str:
    """The start of a statement for the report, never with the bench user's token in it."""
    return sql.replace(probe["token"], "[token]")[:160]


def _seq_scans(node) -> list[str]:
    found = [node["Relation Name"]] if node.get("Node Type") == "Seq Scan" else []
    for child in node.get("Plans", []):
        found += _seq_scans(child)
    return found


def counts() -> dict:
    with connection.cursor() as cursor:
        out = {}
        for table in (
            "deployments_deployment",
            "builds_build",
            "releases_batch",
            "releases_releaseapp",
        ):
            cursor.execute(f"SELECT count(*) FROM {table}")
            out[table] = cursor.fetchone()[0]
    out["open_batches"] = Batch.objects.filter(status__in=["pre_waiting", "prod_waiting"]).count()
    return out


# What runs where (releases/overview.py) reads through these; writes pay to keep them.
OVERVIEW_INDEXES = {
    "deployment_app_recent_idx",
    "deployment_app_running_idx",
    "deployment_app_failed_idx",
    "build_image_app_latest_idx",
}


def _overview_indexes():
    from deployments.models import Deployment

    return [
        (model, index)
        for model in (Deployment, BuildImage)
        for index in model._meta.indexes
        if index.name in OVERVIEW_INDEXES
    ]


def _set_overview_indexes(present: bool) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE indexname = ANY(%s)", [list(OVERVIEW_INDEXES)]
        )
        existing = {row[0] for row in cursor.fetchall()}
    with connection.schema_editor() as editor:
        for model, index in _overview_indexes():
            if present and index.name not in existing:
                editor.add_index(model, index)
            elif not present and index.name in existing:
                editor.remove_index(model, index)


def _running_deployments(release_id: int, n: int) -> list[int]:
    """`n` running deployments of the release, superseded (so none is its current one)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """INSERT INTO deployments_deployment (release_app_id, application_id, environment,
                 image_tag, config, status, job_name, job_namespace, error, created_at,
                 started_at, superseded_at, cleanup_pending, claimed_by, attempts)
               SELECT r.id, r.application_id, CASE WHEN i %% 2 = 0 THEN 'pre' ELSE 'prod' END,
                      r.image_tag, '{}'::jsonb, 'running', 'rt-cost-' || i, 'release-train-pre',
                      '', now(), now(), now(), false, '', 0
               FROM releases_releaseapp r, generate_series(1, %(n)s) i WHERE r.id = %(r)s
               RETURNING id""",
            {"r": release_id, "n": n},
        )
        return [row[0] for row in cursor.fetchall()]


def index_cost() -> dict:
    """What the overview's indexes cost the writes that keep them: p50 of a 1-app ingest and
    of applying a deployment's outcome, with the indexes and with them dropped, in alternating
    rounds (re-created at the end), and the indexes' sizes."""
    from releases.services import apply_deployment_outcome

    probe = prepare()
    rounds = int(os.environ.get("BENCH_ROUNDS", "3"))
    n = int(os.environ.get("BENCH_INDEX_COST_N", "100"))
    user = get_user_model().objects.get(username="bench")
    release = (
        ReleaseApp.objects.filter(batch__name="index-cost").values_list("pk", flat=True).first()
        or create_batch(name="index-cost", apps=[AppChoice(PROBE_APPS[-1])], user=user)
        .batch.releases.get()
        .pk
    )

    def writes(count: int) -> tuple[list[float], list[float]]:
        number = next_number()
        ingest, outcome = [], []
        for i in range(count):
            t = time.perf_counter()
            ingest_build_notification(
                notification=notification(number + i, [PROBE_APPS[i % len(PROBE_APPS)]])
            )
            ingest.append((time.perf_counter() - t) * 1000)
        for i, deployment_id in enumerate(_running_deployments(release, count)):
            t = time.perf_counter()
            apply_deployment_outcome(
                deployment_id=deployment_id, outcome=("succeeded", "failed")[i % 2]
            )
            outcome.append((time.perf_counter() - t) * 1000)
        return ingest, outcome

    runs = {"with": [], "without": []}
    try:
        writes(20)  # warm-up: the first round must not pay for cold caches
        for r in range(rounds):
            for variant in ("with", "without") if r % 2 == 0 else ("without", "with"):
                _set_overview_indexes(variant == "with")
                writes(5)
                ingest, outcome = writes(n)
                runs[variant].append(
                    {
                        "ingest_p50_ms": statistics.median(ingest),
                        "outcome_p50_ms": statistics.median(outcome),
                    }
                )
    finally:
        _set_overview_indexes(True)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, pg_relation_size(indexname::regclass) FROM pg_indexes"
            " WHERE indexname = ANY(%s) ORDER BY indexname",
            [list(OVERVIEW_INDEXES)],
        )
        index_sizes = dict(cursor.fetchall())
    ratio = lambda key: statistics.median(  # noqa: E731
        w[key] / wo[key] for w, wo in zip(runs["with"], runs["without"], strict=True)
    )
    return {
        "runs": runs,
        "ingest_ratio": ratio("ingest_p50_ms"),
        "outcome_ratio": ratio("outcome_p50_ms"),
        "index_bytes": index_sizes,
        "n": n,
        "probe": bool(probe),
    }


PHASES = {
    "prepare": prepare,
    "flat": flat,
    "latency": latency,
    "explain": explain,
    "counts": counts,
    "index_cost": index_cost,
}

if __name__ == "__main__":
    print(json.dumps(PHASES[sys.argv[1]](), default=str))
