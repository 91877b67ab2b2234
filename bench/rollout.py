"""The rollout engine at scale, today's code next to the current tree, in one run.

    python -m bench.rollout [--small 200] [--large 1000] [--quiet 20] [--sample 100]
                            [--baseline c5811d9] [--only after]

For each side — "before" (the tree at `--baseline`, unpacked with `git archive` into a temporary
directory) and "after" (this working tree) — on a fresh PostgreSQL database and a fresh fake
Kubernetes API server on loopback (kube_fake/server.py, in this process), with two
`manage.py run_reconciler` processes of that side's code under production settings and the
product's defaults (DEPLOY_EXECUTOR=kubernetes, a kubeconfig pointing at the fake):

1. start-pre-deploy of a batch of `--small` apps, then of another of `--large` apps: seconds from
   the call to the last Job created at the fake;
2. with every Job running and nothing changing, `--quiet` seconds: API requests per second at the
   fake, and rows written in the database;
3. `--sample` Jobs finish one by one (one in ten fails): seconds from the Job finishing at the
   fake to its deployment becoming final, p50 / p95 / max (`--bound` caps the wait);
4. every other Job finishes, then: deployments launched twice (more than one create request
   per Job name at the fake, or more than one move to running), outcomes applied twice (a
   deployment row moved to or rewritten as final more than once).

Database writes and status changes are counted exactly by a row trigger on every table of the
bench database (an AFTER trigger appending to `bench_writes`, installed after seeding, the same
on both sides); timestamps are `clock_timestamp()` of the write. Everything runs on loopback.
Databases: `<--database>_before` and `<--database>_after` (default `rt_bench_rollout_*`, or
$BENCH_ROLLOUT_DATABASE), dropped and made again each run.
"""

import argparse
import io
import json
import math
import os
import platform
import random
import re
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import Counter
from pathlib import Path

import psycopg

from kube_fake import FakeKubernetes

ROOT = Path(__file__).resolve().parent.parent
BASELINE = "c5811d9"  # main before issue 10
DATABASE = os.environ.get("BENCH_ROLLOUT_DATABASE", "rt_bench_rollout")
# The server of DATABASE_URL (as scripts/ensure-postgres exports it), without its database.
SERVER = os.environ.get("BENCH_ROLLOUT_SERVER") or os.environ.get(
    "DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres"
).rsplit("/", 1)[0].removesuffix("/")
LOGS = Path(os.environ.get("BENCH_ROLLOUT_LOGS", "/tmp/rt-bench-rollout"))
FINAL = ("succeeded", "failed", "cancelled")
WRITE_LOG = """
CREATE TABLE bench_writes (
    id bigserial PRIMARY KEY,
    at double precision NOT NULL DEFAULT extract(epoch FROM clock_timestamp()),
    tbl text NOT NULL,
    op text NOT NULL,
    row_id text,
    old_status text,
    new_status text,
    old_finished text,
    new_finished text
);
CREATE FUNCTION bench_write_log() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE o jsonb; n jsonb;
BEGIN
    IF TG_OP <> 'INSERT' THEN o := to_jsonb(OLD); END IF;
    IF TG_OP <> 'DELETE' THEN n := to_jsonb(NEW); END IF;
    INSERT INTO bench_writes (tbl, op, row_id, old_status, new_status, old_finished, new_finished)
    VALUES (TG_TABLE_NAME, TG_OP, coalesce(n->>'id', o->>'id'), o->>'status', n->>'status',
            o->>'finished_at', n->>'finished_at');
    RETURN NULL;
END $$;
"""


# --- the two trees ---


def tree_at(commit: str, into: Path) -> Path:
    """The files of `commit`, unpacked (the repository itself is left alone)."""
    archive = subprocess.run(
        ["git", "archive", "--format=tar", commit], cwd=ROOT, check=True, capture_output=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def tree_env(tree: Path, url: str, kubeconfig: Path | None = None) -> dict:
    """Production settings with the product's defaults: only what a deployment must set."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DEPLOY_", "DJANGO_", "KUBE", "PROMETHEUS_", "LOG_"))
        and k != "DATABASE_URL"
    }
    env.update(
        PYTHONPATH=str(tree),
        DJANGO_SETTINGS_MODULE="config.settings.production",
        DJANGO_SECRET_KEY="bench-rollout-not-a-secret",
        DATABASE_URL=url,
        DEPLOY_EXECUTOR="kubernetes",
        DEPLOY_JOB_IMAGE="registry.example.com/{app}:{image_tag}",
        LOG_FORMAT="json",
    )
    if kubeconfig:
        env["DEPLOY_KUBECONFIG"] = str(kubeconfig)
    return env


def driver(tree: Path, env: dict, *args: str) -> dict:
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "rollout_driver.py"), *args],
        cwd=tree,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- the database ---


def reset_database(name: str) -> str:
    if not re.fullmatch(r"rt_[a-z0-9_]+", name):
        raise SystemExit(f"refusing database {name!r}: bench databases are named rt_<something>")
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{SERVER}/{name}"


def install_write_log(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(WRITE_LOG)
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                "AND tablename <> 'bench_writes'"
            )
        ]
        for table in tables:
            conn.execute(
                f'CREATE TRIGGER bench_write_log AFTER INSERT OR UPDATE OR DELETE ON "{table}" '
                "FOR EACH ROW EXECUTE FUNCTION bench_write_log()"
            )


class Database:
    def __init__(self, url: str):
        self.conn = psycopg.connect(url, autocommit=True)

    def value(self, sql: str, *params):
        return self.conn.execute(sql, params).fetchone()[0]

    def rows(self, sql: str, *params) -> list:
        return self.conn.execute(sql, params).fetchall()

    def statuses(self) -> Counter:
        return Counter(
            dict(self.rows("SELECT status, count(*) FROM deployments_deployment GROUP BY 1"))
        )

    def close(self) -> None:
        self.conn.close()


# --- reconcilers ---


def start_reconcilers(tree: Path, env: dict, label: str, count: int) -> list[subprocess.Popen]:
    LOGS.mkdir(parents=True, exist_ok=True)
    procs = []
    for i in range(count):
        log = (LOGS / f"{label}-reconciler-{i}.log").open("w")
        procs.append(
            subprocess.Popen(
                [sys.executable, "manage.py", "run_reconciler"],
                cwd=tree,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
    return procs


def stop_reconcilers(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_for(condition, seconds: float, step: float = 0.02) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(step)
    return True


# --- one side ---


def run_side(label: str, tree: Path, args) -> dict:
    print(f"[{label}] {tree}", file=sys.stderr, flush=True)
    url = reset_database(f"{args.database}_{label}")
    env = tree_env(tree, url)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=tree, env=env, check=True
    )
    batches = driver(
        tree, env, "seed", "--batch", f"small:{args.small}", "--batch", f"large:{args.large}"
    )["batches"]
    install_write_log(url)

    fake = FakeKubernetes().start()
    kubeconfig = LOGS / f"{label}-kubeconfig.json"
    LOGS.mkdir(parents=True, exist_ok=True)
    kubeconfig.write_text(json.dumps(fake.kubeconfig()))
    env = tree_env(tree, url, kubeconfig)
    db = Database(url)
    procs = start_reconcilers(tree, env, label, args.reconcilers)
    result: dict = {"database": url.rsplit("/", 1)[1]}
    try:
        logs = [LOGS / f"{label}-reconciler-{i}.log" for i in range(args.reconcilers)]
        started = wait_for(
            lambda: all("reconciler_started" in log.read_text() for log in logs), 60, 0.1
        )
        if not started or any(p.poll() is not None for p in procs):
            raise SystemExit(f"[{label}] the reconcilers did not start; see {LOGS}")
        time.sleep(1)

        expected = 0
        for name, size in (("small", args.small), ("large", args.large)):
            expected += size
            result[f"launch_{name}"] = launch(
                fake, tree, env, batches[name], size, args.launch_bound
            )
            began = time.time()
            left = args.launch_bound - (time.time() - result[f"launch_{name}"]["began"])
            running = wait_for(lambda n=expected: db.statuses()["running"] >= n, left, 0.1)
            result[f"launch_{name}"]["all_running_s"] = (
                round(time.time() - result[f"launch_{name}"]["began"], 2) if running else None
            )
            print(f"[{label}] launch {name}: {result[f'launch_{name}']}", file=sys.stderr)
            if not running:
                print(
                    f"[{label}] not all running after {time.time() - began:.0f} s", file=sys.stderr
                )

        time.sleep(args.settle)
        result["quiet"] = quiet(fake, db, args.quiet, running=db.statuses()["running"])
        result["noise"] = noise(fake, db, args.noise)
        print(f"[{label}] quiet: {result['quiet']}", file=sys.stderr)
        result["finish"] = finish_sample(fake, db, args)
        print(f"[{label}] finish: {result['finish']}", file=sys.stderr)
        result["drain"] = drain(fake, db, args.launch_bound)
        result["integrity"] = integrity(fake, db)
        result["requests"] = dict(fake.snapshot())
        print(f"[{label}] drain {result['drain']} integrity {result['integrity']}", file=sys.stderr)
    finally:
        stop_reconcilers(procs)
        fake.stop()
        db.close()
    return result


def launch(fake: FakeKubernetes, tree: Path, env: dict, batch_id: int, size: int, bound: float):
    before = fake.count("create", 201)
    call = driver(tree, env, "start", str(batch_id))
    began = call["began"]
    done = wait_for(
        lambda: fake.count("create", 201) - before >= size, bound - (time.time() - began), 0.02
    )
    with fake._lock:
        made = [r.at for r in fake.requests if r.op == "create" and r.status == 201][before:]
    return {
        "began": began,
        "call_s": round(call["committed"] - began, 3),
        "jobs": len(made),
        "seconds": round(max(made) - began, 2) if done and made else None,
    }


def quiet(fake: FakeKubernetes, db: Database, seconds: float, running: int) -> dict:
    first, began = fake.snapshot(), time.time()
    time.sleep(seconds)
    last, ended = fake.snapshot(), time.time()
    elapsed = ended - began
    requests = {op: last[op] - first[op] for op in last if last[op] - first[op]}
    writes = dict(
        db.rows(
            "SELECT tbl || ' ' || op, count(*) FROM bench_writes WHERE at >= %s AND at < %s "
            "GROUP BY 1",
            began,
            ended,
        )
    )
    return {
        "seconds": round(elapsed, 1),
        "running": running,
        "requests": requests,
        "requests_per_s": round(requests.get("total", 0) / elapsed, 2),
        "writes": writes,
        "rows_written": sum(writes.values()),
        "rows_written_per_s": round(sum(writes.values()) / elapsed, 2),
    }


def noise(fake: FakeKubernetes, db: Database, seconds: float) -> dict:
    """Every running Job reports its pod started (a MODIFIED event): no outcome, so no write."""
    began = time.time()
    jobs = fake.running()
    for namespace, name in jobs:
        fake.activate(namespace, name)
    time.sleep(seconds)
    written = db.value("SELECT count(*) FROM bench_writes WHERE at >= %s", began)
    return {"events": len(jobs), "rows_written": written}


def finish_sample(fake: FakeKubernetes, db: Database, args) -> dict:
    jobs = random.Random(args.seed).sample(fake.running(), min(args.sample, len(fake.running())))
    ids = dict(
        db.rows(
            "SELECT job_name, id::text FROM deployments_deployment WHERE job_name = ANY(%s)",
            [name for _, name in jobs],
        )
    )
    ended = {}
    for i, (namespace, name) in enumerate(jobs):
        fake.finish(namespace, name, succeeded=i % 10 != 9, message="exit 1")
        ended[ids[name]] = time.time()
        time.sleep(args.finish_interval)

    def finals() -> dict:
        return dict(
            db.rows(
                "SELECT row_id, min(at) FROM bench_writes WHERE tbl = 'deployments_deployment' "
                "AND new_status = ANY(%s) AND old_status IS DISTINCT FROM new_status "
                "AND row_id = ANY(%s) GROUP BY 1",
                list(FINAL),
                list(ended),
            )
        )

    wait_for(lambda: len(finals()) == len(ended), args.bound, 0.1)
    final = finals()
    latencies = sorted(final[i] - ended[i] if i in final else math.inf for i in ended)
    return {
        "jobs": len(jobs),
        "not_final": sum(1 for x in latencies if x == math.inf),
        "bound_s": args.bound,
        "p50_s": _quantile(latencies, 0.50),
        "p95_s": _quantile(latencies, 0.95),
        "max_s": _quantile(latencies, 1.0),
        "mean_s": round(statistics.fmean(x for x in latencies if x != math.inf), 3)
        if final
        else None,
    }


def drain(fake: FakeKubernetes, db: Database, bound: float) -> dict:
    fake.finish_all()
    began = time.time()
    done = wait_for(lambda: db.statuses()["running"] + db.statuses()["pending"] == 0, bound, 0.1)
    return {"seconds": round(time.time() - began, 1) if done else None, **db.statuses()}


def integrity(fake: FakeKubernetes, db: Database) -> dict:
    with fake._lock:
        creates = Counter(r.name for r in fake.requests if r.op == "create")
    runs = db.rows(
        "SELECT row_id, count(*) FROM bench_writes WHERE tbl = 'deployments_deployment' "
        "AND new_status = 'running' AND old_status IS DISTINCT FROM 'running' GROUP BY 1 "
        "HAVING count(*) > 1"
    )
    outcomes = db.rows(
        "SELECT row_id, count(*) FROM bench_writes WHERE tbl = 'deployments_deployment' "
        "AND op = 'UPDATE' AND new_status = ANY(%s) AND (old_status IS DISTINCT FROM new_status "
        "OR old_finished IS DISTINCT FROM new_finished) GROUP BY 1 HAVING count(*) > 1",
        list(FINAL),
    )
    created_again = sum(1 for n in creates.values() if n > 1)
    return {
        "jobs_created": sum(1 for n in creates.values() if n),
        "launched_twice": created_again + len(runs),
        # The two halves of it: a second create request (answered 409 by the API server), and
        # a deployment moved to running twice.
        "created_again": created_again,
        "started_twice": len(runs),
        "outcomes_twice": len(outcomes),
    }


def _quantile(values: list[float], q: float):
    """Nearest-rank quantile; None (shown as "> bound") when it falls on an unfinished one."""
    if not values:
        return None
    value = values[max(0, math.ceil(q * len(values)) - 1)]
    return None if value == math.inf else round(value, 2)


# --- the report ---


def _seconds(value, bound=None) -> str:
    if value is None:
        return f"> {bound:g}" if bound else "—"
    return f"{value:.2f}"


def rows(result: dict) -> list[tuple[str, str, str, str]]:
    args = result["args"]
    sides = [result["sides"].get(side) for side in ("before", "after")]

    def each(render) -> list[str]:
        return [render(side) if side else "—" for side in sides]

    def latency(side):
        f = side["finish"]
        text = f"{_seconds(f['p95_s'], f['bound_s'])} / {_seconds(f['max_s'], f['bound_s'])}"
        return text + (f" ({f['not_final']} of {f['jobs']} not final)" if f["not_final"] else "")

    running = max((s["quiet"]["running"] for s in sides if s), default=0)
    return [
        (
            f"start-pre-deploy of a {args['small']:,}-app batch → all Jobs exist (s)",
            "≤ 3",
            *each(lambda s: _seconds(s["launch_small"]["seconds"], args["launch_bound"])),
        ),
        (
            f"start-pre-deploy of a {args['large']:,}-app batch → all Jobs exist (s)",
            "≤ 10",
            *each(lambda s: _seconds(s["launch_large"]["seconds"], args["launch_bound"])),
        ),
        (
            f"a Job finishes → its deployment is final, p95 / max (s), {args['sample']} Jobs",
            "≤ 2 / ≤ 5",
            *each(latency),
        ),
        (
            f"Kubernetes API requests per second, {running:,} Jobs running, nothing changes",
            "≤ 1",
            *each(lambda s: f"{s['quiet']['requests_per_s']:g}"),
        ),
        (
            f"database rows written while nothing changes ({args['quiet']:g} s)",
            "0",
            *each(lambda s: f"{s['quiet']['rows_written']:,}"),
        ),
        (
            "deployments launched twice / outcomes applied twice",
            "0 / 0",
            *each(
                lambda s: f"{s['integrity']['launched_twice']} / {s['integrity']['outcomes_twice']}"
            ),
        ),
        (
            f"(reference) the start_pre_deploy call alone, {args['small']:,} / {args['large']:,} apps (s)",
            "—",
            *each(
                lambda s: f"{s['launch_small']['call_s']:.2f} / {s['launch_large']['call_s']:.2f}"
            ),
        ),
        (
            f"(reference) the call's commit → all Jobs exist, {args['small']:,} / "
            f"{args['large']:,} apps (s)",
            "—",
            *each(lambda s: f"{_after_call(s['launch_small'])} / {_after_call(s['launch_large'])}"),
        ),
        (
            f"(reference) rows written within {args.get('noise', args['settle']):g} s after "
            "every running Job "
            "reports its pod started (a MODIFIED event each)",
            "0",
            *each(lambda s: f"{s['noise']['rows_written']:,}" if "noise" in s else "—"),
        ),
        (
            "(reference) a Job finishes → final, p50 (s)",
            "—",
            *each(lambda s: _seconds(s["finish"]["p50_s"], s["finish"]["bound_s"])),
        ),
        (
            f"(reference) start-pre-deploy of {args['large']:,} apps → all deployments running (s)",
            "—",
            *each(lambda s: _seconds(s["launch_large"]["all_running_s"], args["launch_bound"])),
        ),
        (
            "(reference) every other Job finishes → all deployments final (s)",
            "—",
            *each(lambda s: _seconds(s["drain"]["seconds"], args["launch_bound"])),
        ),
    ]


def _after_call(launch: dict) -> str:
    if launch["seconds"] is None:
        return "—"
    return f"{launch['seconds'] - launch['call_s']:.2f}"


def table(result: dict) -> str:
    lines = ["| measure | target | before | after |", "| --- | --- | --- | --- |"]
    lines += [f"| {' | '.join(row)} |" for row in rows(result)]
    return "\n".join(lines)


def render_section(result: dict) -> str:
    """The "Rollout engine" section of docs/performance.md."""
    args = result["args"]
    command = "make bench-rollout" + (
        f" BENCH_ROLLOUT_ARGS='{result['extra_args']}'" if result.get("extra_args") else ""
    )
    requests = []
    for side in ("before", "after"):
        if quiet_ := result["sides"].get(side, {}).get("quiet"):
            verbs = ", ".join(
                f"{k} {v}" for k, v in sorted(quiet_["requests"].items()) if k != "total"
            )
            writes = ", ".join(f"{k} {v}" for k, v in sorted(quiet_["writes"].items()))
            whole = ", ".join(
                f"{k} {v:,}"
                for k, v in sorted(
                    result["sides"][side]["requests"].items(),
                    key=lambda kv: (kv[0] == "total", kv[0]),
                )
            )
            requests.append(
                f"- {side}, the quiet {quiet_['seconds']:g} s: requests {verbs or 'none'}; "
                f"rows written {writes or 'none'}. Requests over the whole run: {whole}."
            )
    return "\n".join(
        [
            "## Rollout engine",
            "",
            f"From one run of `{command}` (`python -m bench.rollout`), {result['started']}; "
            f"raw numbers in `bench/results/rollout.json`. *Before* is the code at "
            f"`{args['baseline']}` (main before issue 10), *after* is "
            + (
                f"the commit `{result['after_commit']}`"
                if args.get("after")
                else f"the tree the run was started in ({result['after_commit']})"
            )
            + "; both measured the same way in the same run.",
            "",
            table(result),
            "",
            *requests,
            "",
            "Method. Each side gets a fresh PostgreSQL database, migrated by its own code and "
            f"seeded with {args['small'] + args['large']:,} apps in two batches "
            f"({args['small']:,} and {args['large']:,}), a fresh fake Kubernetes API server on "
            "loopback (`kube_fake/server.py`: create, read, list with selectors, "
            "watch with resource versions, counters per verb) and "
            f"{args.get('reconcilers', 2)} `manage.py run_reconciler` "
            "processes of its own code under production settings with the product's defaults "
            "(`DEPLOY_EXECUTOR=kubernetes`, a kubeconfig pointing at the fake; nothing else set). "
            "The harness starts the small batch's pre stage, then the large one's, and times "
            "each from the `start_pre_deploy` call to the last Job created at the fake; with "
            f"every Job running ({running_note(result)}) it counts API requests and database "
            f"rows written for {args['quiet']:g} s, then has every running Job report its "
            "pod started (one MODIFIED event each, nothing the product records) and counts "
            f"the rows written in the next {args.get('noise', args['settle']):g} s; then {args['sample']} Jobs "
            "chosen at random "
            f"finish one every {args['finish_interval']:g} s (one in ten fails) and each is "
            "timed from its finish at the fake to its deployment's status turning final in "
            f'the database (waiting at most {args["bound"]:g} s; "> {args["bound"]:g}" means '
            "some were still not final then); finally every Job finishes and the run checks "
            "that no Job name got more than one create request and no deployment moved to "
            "running or to a final status more than once. Writes and status changes are "
            "counted by an `AFTER` row trigger on every table, logging to `bench_writes` with "
            "`clock_timestamp()`, installed after seeding on both sides alike.",
            "",
            "Reading it. The code before issue 10 ticks every `DEPLOY_RECONCILER_INTERVAL` "
            "(5 s); each tick launches up to `DEPLOY_RECONCILER_BATCH` (100) pending "
            "deployments one after another, then polls up to 100 running ones, lowest ids "
            "first, with one GET and two claim writes each. So a large batch launches at "
            "most 100 Jobs per tick per reconciler, at rest it keeps reading and writing, and with "
            "more than 200 Jobs running the ones with higher ids are never polled while the "
            "lower ones run: their finishes show as not final within the wait; it never sees "
            "the pod-started events, so that row shows only whatever its polling wrote in the "
            "window. A quiet window "
            "can miss requests that recur on a longer period (a watch renewed, a periodic "
            "relist); the whole-run counts above show every request. The machine is shared, "
            "so absolute seconds move with its load (given below); both sides ran in the same "
            "conditions, one after the other.",
            "",
            f"Machine: {result['machine']}.",
        ]
    )


def running_note(result: dict) -> str:
    counts = {s["quiet"]["running"] for s in result["sides"].values()}
    return " / ".join(f"{n:,}" for n in sorted(counts))


BEGIN, END = "<!-- bench-rollout:begin -->", "<!-- bench-rollout:end -->"


def docs_block(result: dict) -> str:
    return f"{BEGIN}\n{render_section(result)}\n{END}"


def write_docs(result: dict, path: Path) -> None:
    write_section(path, BEGIN, END, docs_block(result))


def write_section(path: Path, begin: str, end: str, block: str) -> None:
    """Replace a benchmark's section, `block` (which starts with `begin` and ends with `end`),
    in docs/performance.md; insert it if absent."""
    text = path.read_text() if path.exists() else "# Performance\n"
    if begin in text and end in text:
        text = text[: text.index(begin)] + block + text[text.index(end) + len(end) :]
    else:
        # Where `make bench` puts it too (bench/report.py): before the hand-written analysis.
        at = next(
            (
                i
                for m in ("\n## Analysis of the missed goals", "\n## Reproduce")
                if (i := text.find(m)) >= 0
            ),
            -1,
        )
        text = (
            text.rstrip() + "\n\n" + block + "\n"
            if at < 0
            else text[:at] + "\n" + block + "\n" + text[at:]
        )
    path.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=200, help="apps in the first batch")
    parser.add_argument("--large", type=int, default=1000, help="apps in the second batch")
    parser.add_argument("--quiet", type=float, default=20.0, help="seconds of rest measured")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds before the rest")
    parser.add_argument(
        "--noise", type=float, default=6.0, help="seconds counted after the pod-started events"
    )
    parser.add_argument("--sample", type=int, default=100, help="Jobs finished one by one")
    parser.add_argument("--finish-interval", type=float, default=0.05, help="seconds between")
    parser.add_argument("--bound", type=float, default=30.0, help="longest wait for finishes (s)")
    parser.add_argument(
        "--launch-bound", type=float, default=150.0, help="longest wait for a launch or drain (s)"
    )
    parser.add_argument("--seed", type=int, default=10)
    parser.add_argument("--reconcilers", type=int, default=2, help="run_reconciler processes")
    parser.add_argument("--baseline", default=BASELINE, help="commit of the 'before' side")
    parser.add_argument(
        "--after", default="", help="commit of the 'after' side (default: this working tree)"
    )
    parser.add_argument("--only", choices=("before", "after"), help="measure one side only")
    parser.add_argument("--database", default=DATABASE, help="database name prefix")
    parser.add_argument("--json", default=str(ROOT / "bench" / "results" / "rollout.json"))
    parser.add_argument("--docs", default=str(ROOT / "docs" / "performance.md"))
    parser.add_argument("--no-docs", action="store_true", help="do not touch --docs")
    args = parser.parse_args()

    result = {
        "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "args": vars(args),
        "extra_args": _non_default(parser, args),
        "after_commit": _commit(args.after) if args.after else _head(),
        "sides": {},
    }
    with tempfile.TemporaryDirectory(prefix="rt-bench-rollout-") as tmp:
        if args.only != "after":
            tree = tree_at(args.baseline, Path(tmp) / "before")
            result["sides"]["before"] = run_side("before", tree, args)
        if args.only != "before":
            tree = tree_at(args.after, Path(tmp) / "after") if args.after else ROOT
            result["sides"]["after"] = run_side("after", tree, args)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    postgres = _postgres_version()
    result["machine"] = (
        f"{os.cpu_count()} CPUs shared with other work (load average at the end {load}), "
        f"PostgreSQL {postgres}, Python {platform.python_version()}"
    )
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2, default=str))
    print(table(result))
    if not args.no_docs:
        write_docs(result, Path(args.docs))
        print(f"\nwritten: {args.json}, {args.docs} (section 'Rollout engine')")


def _non_default(parser: argparse.ArgumentParser, args) -> str:
    """The options of this run that differ from the defaults, as they would be typed."""
    defaults = vars(parser.parse_args([]))
    return " ".join(
        f"--{key.replace('_', '-')}" + ("" if value is True else f" {value}")
        for key, value in vars(args).items()
        if value != defaults[key] and key not in ("json", "docs", "database", "no_docs")
    )


def _commit(ref: str) -> str:
    return subprocess.run(
        ["git", "rev-parse", "--short", ref], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()


def _head() -> str:
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return f"{head}{' with uncommitted changes' if dirty else ''}"


def _postgres_version() -> str:
    with psycopg.connect(f"{SERVER}/postgres") as conn:
        return conn.execute("SHOW server_version").fetchone()[0]


if __name__ == "__main__":
    main()
