"""Fill a PostgreSQL database with a release history at scale, in set-based SQL.

    python -m bench.seed_scale --scale 1.0 [--database-url URL]

At scale 1.0: 1,000 applications, 200,000 builds (and their images), 10,000 batches (5 % of them
open), 100,000 releases (10 per batch) and 1,000,000 deployments (10 per release: five
superseded generations per environment, the last of each current). Every row is made by one
`INSERT ... SELECT ... FROM generate_series` per table, on the server, never by the ORM row by
row. The data keeps every rule the product keeps: one current deployment per release and
environment, OCI tags, builds numbered from 1, a release's tag from a successful build of its
app, an open batch's latest tag from the app's highest successful build. Foreign keys are not
re-checked row by row while loading (session_replication_role = replica); `verify()` checks
them set-wise afterwards.

It refuses to touch a database whose name does not start with "rt_bench" (or "rt_<who>_bench",
an engineer's own copy), so it can never wipe the test or demo database.
"""

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/rt_bench"
BENCH_NAME = re.compile(r"^rt_(\w+_)?bench")
# Bumped when the seeded rows change shape: a database seeded by another version is seeded again.
SEED_VERSION = "2"


def database_name(url: str) -> str:
    """The database's name, refusing any that is not a bench database."""
    name = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
    if not BENCH_NAME.match(name):
        raise SystemExit(f"refusing to touch {name!r}: bench databases are named rt_bench*")
    return name


TABLES = [
    "deployments_deployment",
    "releases_releaseapp",
    "releases_batch",
    "builds_buildimage",
    "builds_build",
    "releases_application",
]


def sizes(scale: float) -> dict[str, int]:
    batches = max(2, round(10_000 * scale))
    return {
        "apps": max(10, round(1_000 * scale)) if scale < 1 else 1_000,
        "builds": max(20, round(200_000 * scale)),
        "batches": batches,
        "open_batches": max(1, batches // 20),
        "releases_per_batch": 10,
        "deployments_per_release": 10,
    }


def migrate(url: str) -> None:
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "bench.settings", "BENCH_DATABASE_URL": url},
        check=True,
    )


def ensure_database(url: str) -> None:
    name = database_name(url)
    admin = psycopg.conninfo.make_conninfo(url, dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


# Each statement gets the sizes as named parameters. Build n (1..builds) is build j = (n-1) / apps
# of application a = (n-1) % apps + 1; every tenth generation (j % 10 = 7) failed.
STATEMENTS = [
    """INSERT INTO releases_application (id, name, deploy_config, created_at)
       SELECT a, 'app-' || lpad(a::text, 5, '0'), '{}'::jsonb, now() - interval '400 days'
       FROM generate_series(1, %(apps)s) a""",
    """INSERT INTO builds_build (id, repo, number, status, commit, branch, link, received_at,
                                updated_at, succeeded_at)
       SELECT n, 'org/bench', n,
              CASE WHEN ((n - 1) / %(apps)s) %% 10 = 7 THEN 'failure' ELSE 'success' END,
              substr(md5(n::text), 1, 12), 'main', '',
              now() - (%(builds)s - n) * interval '1 minute',
              now() - (%(builds)s - n) * interval '1 minute',
              CASE WHEN ((n - 1) / %(apps)s) %% 10 = 7 THEN NULL
                   ELSE now() - (%(builds)s - n) * interval '1 minute' END
       FROM generate_series(1, %(builds)s) n""",
    """INSERT INTO builds_buildimage (id, build_id, build_number, application_id, image_tag,
                                     repo, succeeded_at)
       SELECT i.id, b.id, b.number, (i.id - 1) %% %(apps)s + 1, 'v1.' || ((i.id - 1) / %(apps)s),
              b.repo, b.succeeded_at
       FROM generate_series(1, %(builds)s) i(id) JOIN builds_build b ON b.id = i.id""",
    """INSERT INTO releases_batch (id, name, status, created_at, updated_at, created_by_id)
       SELECT b, 'batch-' || b,
              CASE WHEN b > %(batches)s - %(open_batches)s
                        THEN CASE WHEN b %% 2 = 0 THEN 'pre_waiting' ELSE 'prod_waiting' END
                   WHEN b %% 20 = 3 THEN 'cancelled'
                   ELSE 'completed' END,
              now() - (%(batches)s - b) * interval '1 hour',
              now() - (%(batches)s - b) * interval '1 hour', NULL
       FROM generate_series(1, %(batches)s) b""",
    # A release's generation j: historic batches take a generation that grows with time; open
    # ones the newest or one of the two before it (so some have a new tag). Failed generations
    # step back one. The latest generation of an app is its last one (never a failed one).
    """INSERT INTO releases_releaseapp (id, batch_id, application_id, image_tag, build_id, status,
                                       latest_image_tag, latest_build_id, latest_seen_at,
                                       tag_updated_at, tag_updated_by_id, created_at)
       SELECT r.id, r.b, r.a, 'v1.' || r.j, r.j * %(apps)s + r.a,
              CASE r.status WHEN 'completed' THEN 'prod_deployed'
                            WHEN 'prod_waiting' THEN 'pre_deployed'
                            WHEN 'cancelled' THEN 'pre_deployed'
                            ELSE 'pending' END,
              'v1.' || r.latest_j, r.latest_j * %(apps)s + r.a, r.created_at,
              NULL, NULL, r.created_at
       FROM (
         SELECT s.*, CASE WHEN s.raw_j %% 10 = 7 THEN s.raw_j - 1 ELSE s.raw_j END AS j,
                CASE WHEN s.status IN ('pre_waiting', 'prod_waiting') THEN s.top_j
                     ELSE CASE WHEN s.raw_j %% 10 = 7 THEN s.raw_j - 1 ELSE s.raw_j END
                END AS latest_j
         FROM (
           SELECT (bt.id - 1) * %(releases_per_batch)s + k + 1 AS id, bt.id AS b,
                  (bt.id * %(releases_per_batch)s + k) %% %(apps)s + 1 AS a,
                  bt.status, bt.created_at,
                  %(builds)s / %(apps)s - 1 AS top_j,
                  CASE WHEN bt.status IN ('pre_waiting', 'prod_waiting')
                       THEN %(builds)s / %(apps)s - 1 - (bt.id + k) %% 3
                       ELSE ((bt.id - 1)::bigint * (%(builds)s / %(apps)s - 1)) / %(batches)s
                  END AS raw_j
           FROM releases_batch bt, generate_series(0, %(releases_per_batch)s - 1) k
         ) s
       ) r""",
    # Deployment i of release r: pre when i is even, prod when odd; generations 0-7 superseded
    # by the same environment's next generation (i + 2), 8 and 9 current. The current pre
    # deployment of a pending release waits for its stage (pending, no Job yet).
    """INSERT INTO deployments_deployment (id, release_app_id, application_id, environment,
                                          image_tag, config,
                                          status, job_name, job_namespace, error, created_by_id,
                                          created_at, started_at, finished_at, superseded_at,
                                          superseded_by_id, cleanup_pending, claimed_by,
                                          claimed_until, attempts)
       SELECT d.id, d.r, d.a, d.env, d.image_tag, '{}'::jsonb, d.status,
              CASE WHEN d.status = 'pending' THEN '' ELSE 'rt-app-' || d.id END,
              CASE WHEN d.status = 'pending' THEN '' ELSE 'release-train-' || d.env END,
              '', NULL, d.created_at,
              CASE WHEN d.status = 'pending' THEN NULL ELSE d.created_at END,
              CASE WHEN d.status = 'pending' THEN NULL ELSE d.created_at + interval '2 minutes' END,
              CASE WHEN d.i < 8 THEN d.created_at + interval '1 hour' END,
              CASE WHEN d.i < 8 THEN d.id + 2 END,
              false, '', NULL, 0
       FROM (
         SELECT (ra.id - 1) * %(deployments_per_release)s + i + 1 AS id, ra.id AS r,
                ra.application_id AS a, i,
                CASE WHEN i %% 2 = 0 THEN 'pre' ELSE 'prod' END AS env,
                ra.image_tag, ra.created_at + i * interval '3 minutes' AS created_at,
                CASE WHEN i = 8 AND ra.status = 'pending' THEN 'pending'
                     WHEN i = 8 AND ra.status = 'pre_deployed' AND bt.status = 'cancelled'
                          THEN 'cancelled'
                     ELSE 'succeeded' END AS status
         FROM releases_releaseapp ra JOIN releases_batch bt ON bt.id = ra.batch_id,
              generate_series(0, %(deployments_per_release)s - 1) i
       ) d""",
]

VERIFY = {
    "deployments without their release": """SELECT count(*) FROM deployments_deployment d
        WHERE NOT EXISTS (SELECT 1 FROM releases_releaseapp r WHERE r.id = d.release_app_id)""",
    "superseded_by pointing nowhere": """SELECT count(*) FROM deployments_deployment d
        WHERE d.superseded_by_id IS NOT NULL AND NOT EXISTS
              (SELECT 1 FROM deployments_deployment n WHERE n.id = d.superseded_by_id)""",
    "releases without batch, app or build": """SELECT count(*) FROM releases_releaseapp r
        WHERE NOT EXISTS (SELECT 1 FROM releases_batch b WHERE b.id = r.batch_id)
           OR NOT EXISTS (SELECT 1 FROM releases_application a WHERE a.id = r.application_id)
           OR NOT EXISTS (SELECT 1 FROM builds_buildimage i WHERE i.build_id = r.build_id
                          AND i.application_id = r.application_id AND i.image_tag = r.image_tag)
           OR NOT EXISTS (SELECT 1 FROM builds_buildimage i WHERE i.build_id = r.latest_build_id
                          AND i.application_id = r.application_id
                          AND i.image_tag = r.latest_image_tag)""",
    "releases on a failed build": """SELECT count(*) FROM releases_releaseapp r
        JOIN builds_build b ON b.id = r.build_id WHERE b.status <> 'success'""",
    "deployments of another app than their release's": """SELECT count(*)
        FROM deployments_deployment d JOIN releases_releaseapp r ON r.id = d.release_app_id
        WHERE d.application_id <> r.application_id""",
    "images with another number than their build's": """SELECT count(*)
        FROM builds_buildimage i JOIN builds_build b ON b.id = i.build_id
        WHERE i.build_number <> b.number""",
}


def load(cursor, n: dict[str, int]) -> dict[str, tuple[int, float]]:
    """Every table's rows at the sizes `n`, into empty tables, through any DB-API cursor (the
    test suite passes Django's); returns each table's rows and seconds."""
    timings = {}
    for statement, table in zip(STATEMENTS, reversed(TABLES), strict=True):
        t = time.monotonic()
        cursor.execute(statement, n)
        timings[table] = (cursor.rowcount, round(time.monotonic() - t, 1))
        print(f"  {table}: {cursor.rowcount:,} rows in {timings[table][1]} s", flush=True)
    for table in TABLES:
        cursor.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
            f" (SELECT coalesce(max(id), 1) FROM {table}))"
        )
    return timings


def verify(cursor) -> dict[str, int]:
    """The rules of VERIFY the loaded rows break, with how many rows break each."""
    problems = {}
    for rule, sql in VERIFY.items():
        cursor.execute(sql)
        problems[rule] = cursor.fetchone()[0]
    return {rule: count for rule, count in problems.items() if count}


def seed(url: str, scale: float) -> dict:
    ensure_database(url)
    migrate(url)
    n = sizes(scale)
    timings = {}
    started = time.monotonic()
    with psycopg.connect(url) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute("SET maintenance_work_mem = '256MB'")
        conn.execute(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")
        timings.update(load(conn.cursor(), n))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS bench_floor_row"
            " (id bigserial PRIMARY KEY, payload jsonb NOT NULL,"
            " created_at timestamptz NOT NULL DEFAULT now())"
        )
        conn.execute("TRUNCATE bench_floor_row")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS bench_meta (key text PRIMARY KEY, value text NOT NULL)"
        )
        # Everything recorded about the previous contents (the probe fixture) is gone with them.
        conn.execute("TRUNCATE bench_meta")
        conn.execute("INSERT INTO bench_meta VALUES ('scale', %s)", [str(scale)])
        conn.execute("INSERT INTO bench_meta VALUES ('seed_version', %s)", [SEED_VERSION])
    with psycopg.connect(url, autocommit=True) as conn:
        t = time.monotonic()
        conn.execute("VACUUM ANALYZE")
        timings["vacuum analyze"] = (0, round(time.monotonic() - t, 1))
        bad = verify(conn.cursor())
    if bad:
        raise SystemExit(f"seeded data breaks its own rules: {bad}")
    total = round(time.monotonic() - started, 1)
    print(f"  seeded scale {scale} in {total} s (verified)", flush=True)
    return {"scale": scale, "sizes": n, "timings": timings, "seconds": total}


def seeded_scale(url: str) -> float | None:
    try:
        with psycopg.connect(url) as conn:
            meta = dict(conn.execute("SELECT key, value FROM bench_meta").fetchall())
            if meta.get("seed_version") != SEED_VERSION:
                return None
            return float(meta["scale"]) if "scale" in meta else None
    except psycopg.Error:
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    args = parser.parse_args()
    seed(args.database_url, args.scale)


if __name__ == "__main__":
    main()
