"""Run every benchmark side by side and write docs/performance.md.

    python -m bench.run [--scale 0.1] [--reseed] [--duration 5] [--rounds 3]

Two databases: rt_bench (seeded at --scale; 1.0 = 1M deployments) and rt_bench_empty (made
fresh each run). Both get the same probe fixture (bench.measure prepare), so the only
difference between them is the seeded history. Every comparison runs its two sides
alternately, round by round, and reports the median of the per-round ratios: on a shared
machine absolute times are noise, ratios much less so. Load is loopback only and bounded in
time (wrk -d) and in requests (the contention rounds).
"""

import argparse
import http.client
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg

from bench import seed_scale

ROOT = Path(__file__).resolve().parent.parent
SEEDED = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/rt_bench")
EMPTY = os.environ.get(
    "BENCH_EMPTY_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/rt_bench_empty"
)
PORT = int(os.environ.get("BENCH_PORT", "8765"))
WORKERS = 2
WRK_THREADS, WRK_CONNECTIONS = 2, 8
CONTENTION = 64
LOG = Path(os.environ.get("BENCH_LOG", "/tmp/rt-bench-gunicorn.log"))


def env_for(url: str, **extra) -> dict:
    # Logging as production has it: one JSON line per request and per event, at INFO.
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "BENCH_DATABASE_URL": url,
        "LOG_LEVEL": os.environ.get("LOG_LEVEL", "INFO"),
        "LOG_FORMAT": os.environ.get("LOG_FORMAT", "json"),
        **extra,
    }


def measure(phase: str, url: str, module: str = "bench.measure", **extra) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", module, phase],
        cwd=ROOT,
        env=env_for(url, **extra),
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def reset_empty(url: str) -> None:
    name = seed_scale.database_name(url)
    admin = psycopg.conninfo.make_conninfo(url, dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    seed_scale.migrate(url)


def ratio(a: float, b: float) -> float:
    return round(a / b, 3) if b else float("inf")


# --- gunicorn + wrk ---


class Gunicorn:
    """gunicorn of `tree` (this one, or another commit's unpacked files) on `port`."""

    def __init__(self, url: str, *, threads: int = 1, tree: Path = ROOT, port: int = PORT):
        self.url, self.threads, self.tree, self.port = url, threads, tree, port

    def __enter__(self):
        self.log = LOG.open("a")
        # As in the container image: metrics in multiprocess mode, in a fresh directory.
        self.metrics_dir = tempfile.mkdtemp(prefix="rt-bench-prometheus-")
        self.proc = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "gunicorn"),
                "--config",
                "config/gunicorn.py",
                "config.wsgi:application",
            ],
            cwd=self.tree,
            env=env_for(
                self.url,
                PYTHONPATH=str(self.tree),
                GUNICORN_BIND=f"127.0.0.1:{self.port}",
                WEB_CONCURRENCY=str(WORKERS),
                GUNICORN_THREADS=str(self.threads),
                PROMETHEUS_MULTIPROC_DIR=self.metrics_dir,
            ),
            stdout=self.log,
            stderr=self.log,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    return self
            except OSError:
                time.sleep(0.3)
        self.__exit__()
        raise RuntimeError(f"gunicorn did not start; see {LOG}")

    def __exit__(self, *exc):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()
        shutil.rmtree(self.metrics_dir, ignore_errors=True)


def wrk(path: str, duration: int, script: str, *args: str, port: int = PORT) -> dict:
    out = subprocess.run(
        [
            "wrk",
            f"-t{WRK_THREADS}",
            f"-c{WRK_CONNECTIONS}",
            f"-d{duration}s",
            "--timeout",
            "10s",
            "--latency",
            "-s",
            str(ROOT / "bench" / "wrk" / script),
            f"http://127.0.0.1:{port}{path}",
            "--",
            *args,
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=duration + 60,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)", out)
    return {
        "rps": rps,
        "non_2xx": int(bad.group(1)) if bad else 0,
        "socket_errors": errors.group(0) if errors else "",
        "p50_ms": _ms(p50.group(1), p50.group(2)) if p50 else None,
    }


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]


def next_probe_number(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT max(number) FROM builds_build WHERE repo = 'org/probe'"
        ).fetchone()
    return (row[0] or 0) + 1


def overhead(probe: dict, duration: int, rounds: int) -> dict:
    token = probe["token"]
    release = probe["status_release"]

    def notify():
        return wrk(
            "/api/v1/builds/notify", duration, "notify.lua", str(next_probe_number(SEEDED)), token
        )

    calls = {
        "status": lambda: wrk(f"/api/v1/releases/{release}/status", duration, "bearer.lua", token),
        "floor_select": lambda: wrk(f"/bench/floor/select/{release}", duration, "bearer.lua"),
        "drf_floor_select": lambda: wrk(
            f"/bench/floor/drf/select/{release}", duration, "bearer.lua", token
        ),
        "ingest": notify,
        "floor_insert": lambda: wrk("/bench/floor/insert", duration, "insert.lua", "1"),
        "drf_floor_insert": lambda: wrk(
            "/bench/floor/drf/insert", duration, "notify.lua", "1", token
        ),
    }
    runs: dict[str, list] = {name: [] for name in calls}
    with Gunicorn(SEEDED):
        wrk(f"/api/v1/releases/{release}/status", 2, "bearer.lua", token)  # warm-up
        for r in range(rounds):
            # Alternate which side of each comparison goes first.
            order = list(calls) if r % 2 == 0 else list(reversed(calls))
            for name in order:
                runs[name].append(calls[name]())
                print(f"    round {r + 1} {name}: {runs[name][-1]}", flush=True)

    def ratios(a: str, b: str) -> list[float]:
        return [ratio(x["rps"], y["rps"]) for x, y in zip(runs[a], runs[b], strict=True)]

    out = {"runs": runs}
    for key, (a, b) in {
        "status_vs_floor": ("status", "floor_select"),
        "ingest_vs_floor": ("ingest", "floor_insert"),
        "status_vs_drf_floor": ("status", "drf_floor_select"),
        "ingest_vs_drf_floor": ("ingest", "drf_floor_insert"),
    }.items():
        out[f"{key}_rounds"] = ratios(a, b)
        out[key] = statistics.median(out[f"{key}_rounds"])
    return out


# --- contention ---


def _request(method: str, path: str, token: str, body: dict | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=60)
    started = time.perf_counter()
    conn.request(
        method,
        path,
        body=json.dumps(body) if body is not None else None,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    response = conn.getresponse()
    data = response.read()
    elapsed = (time.perf_counter() - started) * 1000
    conn.close()
    return response.status, data, elapsed


def _switch_round(release_ids: list[int], tags: list[str], token: str):
    """One switch request per entry of `release_ids`, all released at once by a barrier; each
    switches its release to whichever of the two tags it is not at."""
    current = {
        r: json.loads(_request("GET", f"/api/v1/releases/{r}/", token)[1])["image_tag"]
        for r in set(release_ids)
    }
    barrier = threading.Barrier(len(release_ids))
    outcomes: list = [None] * len(release_ids)

    def fire(i, release_id):
        target = tags[1] if current[release_id] == tags[0] else tags[0]
        barrier.wait(timeout=60)
        outcomes[i] = _request(
            "POST", f"/api/v1/releases/{release_id}/switch-version", token, {"image_tag": target}
        )

    threads = [threading.Thread(target=fire, args=(i, r)) for i, r in enumerate(release_ids)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return outcomes, time.perf_counter() - started


def contention(probe: dict, rounds: int) -> dict:
    token, tags = probe["token"], probe["contend_tags"]
    results = {}
    with Gunicorn(SEEDED, threads=CONTENTION // WORKERS):
        for mode, release_ids in (
            ("distinct", probe["contend_distinct"]),
            ("one", [probe["contend_one"]] * CONTENTION),
        ):
            latencies, errors, changed, throughput = [], [], 0, []
            for _ in range(rounds):
                outcomes, wall = _switch_round(release_ids, tags, token)
                throughput.append(CONTENTION / wall)
                for outcome in outcomes:
                    if outcome is None:
                        errors.append("no response within the timeout")
                        continue
                    status, data, elapsed = outcome
                    latencies.append(elapsed)
                    if status != 200:
                        errors.append(f"{status} {data[:200]!r}")
                    elif json.loads(data)["changed"]:
                        changed += 1
            latencies.sort()
            results[mode] = {
                "requests": len(latencies),
                "rounds": rounds,
                "throughput_rps": round(statistics.median(throughput), 1),
                "p50_ms": round(latencies[len(latencies) // 2], 1),
                "p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 1),
                "errors": len(errors),
                "error_samples": errors[:5],
                "changed": changed,
            }
            print(f"    contention {mode}: {results[mode]}", flush=True)
    return results


# --- the report ---


def main() -> None:
    parser = argparse.ArgumentParser(description="Release Train benchmarks")
    parser.add_argument("--scale", type=float, default=float(os.environ.get("BENCH_SCALE", 0.1)))
    parser.add_argument("--reseed", action="store_true")
    parser.add_argument("--duration", type=int, default=int(os.environ.get("BENCH_DURATION", 5)))
    parser.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_ROUNDS", 3)))
    parser.add_argument("--out", default=str(ROOT / "docs" / "performance.md"))
    parser.add_argument("--json", default=str(ROOT / "bench" / "results" / "latest.json"))
    args = parser.parse_args()
    # A stop (Ctrl-C, SIGTERM) unwinds normally, so gunicorn is never left running.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install wrk")

    report: dict = {
        "args": vars(args),
        "databases": {
            "seeded": seed_scale.database_name(SEEDED),
            "empty": seed_scale.database_name(EMPTY),
        },
        "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    }
    print(
        f"seeding {seed_scale.database_name(SEEDED)} at scale {args.scale} (if needed)", flush=True
    )
    if args.reseed or seed_scale.seeded_scale(SEEDED) != args.scale:
        report["seed"] = seed_scale.seed(SEEDED, args.scale)
    else:
        seed_scale.migrate(SEEDED)  # a reused database gets this version's schema
        report["seed"] = {"scale": args.scale, "reused": True}
    print("fresh empty database", flush=True)
    reset_empty(EMPTY)
    probe = measure("prepare", SEEDED)
    measure("prepare", EMPTY)
    report["counts"] = {"seeded": measure("counts", SEEDED), "empty": measure("counts", EMPTY)}

    print("flat cost", flush=True)
    report["flat"] = {"seeded": measure("flat", SEEDED), "empty": measure("flat", EMPTY)}

    print("p50 seeded vs empty", flush=True)
    latencies = {"seeded": [], "empty": []}
    for r in range(args.rounds):
        order = [("seeded", SEEDED), ("empty", EMPTY)]
        for name, url in order if r % 2 == 0 else order[::-1]:
            latencies[name].append(measure("latency", url))
    report["latency"] = {
        "rounds": latencies,
        "ingest_ratio": statistics.median(
            ratio(s["ingest_p50_ms"], e["ingest_p50_ms"])
            for s, e in zip(latencies["seeded"], latencies["empty"], strict=True)
        ),
        "status_ratio": statistics.median(
            ratio(s["status_p50_ms"], e["status_p50_ms"])
            for s, e in zip(latencies["seeded"], latencies["empty"], strict=True)
        ),
        "applications_ratio": statistics.median(
            ratio(s["applications_p50_ms"], e["applications_p50_ms"])
            for s, e in zip(latencies["seeded"], latencies["empty"], strict=True)
        ),
    }
    print("what the overview's indexes cost ingest and outcomes", flush=True)
    report["index_cost"] = measure("index_cost", SEEDED, BENCH_ROUNDS=str(args.rounds))
    report["explain"] = measure("explain", SEEDED)
    report["breakdown"] = measure("all", SEEDED, module="bench.breakdown")

    print("overhead vs floor under gunicorn", flush=True)
    log_start = LOG.stat().st_size if LOG.exists() else 0
    report["overhead"] = overhead(probe, args.duration, args.rounds)
    print("contention", flush=True)
    report["contention"] = contention(probe, args.rounds)
    with LOG.open("rb") as log:
        log.seek(log_start)
        lines = log.read().decode(errors="replace").splitlines()
    report["log_check"] = {
        "lines": len(lines),
        "token_hits": sum(probe["token"] in line for line in lines),
    }
    report["machine"] = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "postgres": _pg_version(),
        "load_average": os.getloadavg(),
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(report, indent=2, default=str))
    from bench.report import render

    Path(args.out).write_text(render(report))
    print(f"wrote {args.out} and {args.json}", flush=True)


def _pg_version() -> str:
    with psycopg.connect(SEEDED) as conn:
        return conn.execute("SHOW server_version").fetchone()[0]


if __name__ == "__main__":
    main()
