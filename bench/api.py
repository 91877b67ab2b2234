"""The API against its floors, a baseline commit's code next to this tree, in one run.

    python -m bench.api [--baseline main] [--scale 0.1] [--duration 5] [--rounds 3]

Both sides serve the same seeded database (BENCH_DATABASE_URL, seeded by `bench.seed_scale`
and given the probe fixture by `bench.measure prepare` when needed) from their own gunicorn
(the product's config, 2 sync workers, `bench.settings`): the baseline's files unpacked with
`git archive`, as `bench.rollout` does. Each round runs, on each side in turn (the order
alternating), wrk against the status endpoint, the one-SELECT floor, a 1-app ingest and the
one-INSERT floor; a side's ratio is its endpoint's throughput over its own floor's in that
round, and the result is the median round. Writes bench/results/api.json and the section
"API against its floor" of docs/performance.md.
"""
# ruff: noqa: RUF001 -- the report is prose with multiplication and division signs

import argparse
import json
import os
import platform
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from bench import seed_scale
from bench.rollout import tree_at, write_section
from bench.run import PORT, ROOT, SEEDED, Gunicorn, measure, next_probe_number, ratio, wrk

BEGIN, END = "<!-- bench-api:begin -->", "<!-- bench-api:end -->"
TARGET = 0.25
SIDES = ("before", "after")


def run(args) -> dict:
    if seed_scale.seeded_scale(SEEDED) != args.scale:
        seed_scale.seed(SEEDED, args.scale)
    else:
        seed_scale.migrate(SEEDED)
    probe = measure("prepare", SEEDED)
    token, release = probe["token"], probe["status_release"]
    calls = {
        "status": lambda port: wrk(
            f"/api/v1/releases/{release}/status", args.duration, "bearer.lua", token, port=port
        ),
        "floor_select": lambda port: wrk(
            f"/bench/floor/select/{release}", args.duration, "bearer.lua", port=port
        ),
        "ingest": lambda port: wrk(
            "/api/v1/builds/notify",
            args.duration,
            "notify.lua",
            str(next_probe_number(SEEDED)),
            token,
            port=port,
        ),
        "floor_insert": lambda port: wrk(
            "/bench/floor/insert", args.duration, "insert.lua", "1", port=port
        ),
    }
    runs = {side: {name: [] for name in calls} for side in SIDES}
    with tempfile.TemporaryDirectory(prefix="rt-bench-api-") as tmp:
        trees = {"before": tree_at(args.baseline, Path(tmp) / "before"), "after": ROOT}
        ports = {"before": PORT + 1, "after": PORT}
        with (
            Gunicorn(SEEDED, tree=trees["before"], port=ports["before"]),
            Gunicorn(SEEDED, tree=trees["after"], port=ports["after"]),
        ):
            for side in SIDES:  # warm-up
                calls["status"](ports[side])
            for r in range(args.rounds):
                for side in SIDES if r % 2 == 0 else SIDES[::-1]:
                    for name, call in calls.items():
                        runs[side][name].append(call(ports[side]))
                        print(f"  round {r + 1} {side} {name}: {runs[side][name][-1]}", flush=True)
    result = {
        "started": args.started,
        "baseline": _commit(args.baseline),
        "after": _head(),
        "args": {k: v for k, v in vars(args).items() if k != "started"},
        "runs": runs,
        "queries": measure("flat", SEEDED),
        "machine": f"{os.cpu_count()} CPUs shared with other work (load average at the end "
        f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}), Python {platform.python_version()}",
    }
    for side in SIDES:
        for key, (a, b) in {
            "status": ("status", "floor_select"),
            "ingest": ("ingest", "floor_insert"),
        }.items():
            rounds = [
                ratio(x["rps"], y["rps"]) for x, y in zip(runs[side][a], runs[side][b], strict=True)
            ]
            result[f"{side}_{key}_rounds"] = rounds
            result[f"{side}_{key}"] = statistics.median(rounds)
    return result


def docs_block(result: dict) -> str:
    runs, q = result["runs"], result["queries"]

    def rps(side: str, name: str) -> str:
        return f"{statistics.median(r['rps'] for r in runs[side][name]):.0f}"

    bad = sum(r["non_2xx"] for side in runs.values() for rs in side.values() for r in rs)
    lines = [
        BEGIN,
        "## API against its floor (issue 19)",
        "",
        f"`python -m bench.api` ({result['started']}): `{result['baseline']}` (before) next to "
        f"`{result['after']}` (after), each from its own gunicorn (2 sync workers, the "
        "product's config, `bench.settings`) on the same seeded database "
        f"(scale {result['args']['scale']}), `wrk -t2 -c8 -d{result['args']['duration']}s` "
        f"over loopback, {result['args']['rounds']} rounds alternating the sides; a ratio is "
        "the endpoint's throughput over its own side's floor view in the same round (median "
        f"round). {result['machine']}.",
        "",
        "| measure | target | before | after |",
        "| --- | --- | --- | --- |",
        f"| status ÷ one-SELECT floor | ≥ {TARGET}× | {result['before_status']:.3f}× | "
        f"{result['after_status']:.3f}× |",
        f"| 1-app ingest ÷ one-INSERT floor | ≥ {TARGET}× | {result['before_ingest']:.3f}× | "
        f"{result['after_ingest']:.3f}× |",
        f"| status req/s (floor SELECT) | — | {rps('before', 'status')} "
        f"({rps('before', 'floor_select')}) | {rps('after', 'status')} "
        f"({rps('after', 'floor_select')}) |",
        f"| 1-app ingest req/s (floor INSERT) | — | {rps('before', 'ingest')} "
        f"({rps('before', 'floor_insert')}) | {rps('after', 'ingest')} "
        f"({rps('after', 'floor_insert')}) |",
        "",
        "Per round (before / after): status "
        + ", ".join(
            f"{b:.3f} / {a:.3f}"
            for b, a in zip(
                result["before_status_rounds"], result["after_status_rounds"], strict=True
            )
        )
        + "; ingest "
        + ", ".join(
            f"{b:.3f} / {a:.3f}"
            for b, a in zip(
                result["before_ingest_rounds"], result["after_ingest_rounds"], strict=True
            )
        )
        + f". Non-2xx responses: {bad}.",
        "",
        "Queries (after, counted in-process): the status endpoint "
        f"{q['status']['0']['endpoint']} with no deployment of history and "
        f"{q['status']['10000']['endpoint']} with 10,000 (token, user and permissions in one; "
        "the release; its newest and current deployments); a 1-app ingest "
        f"{q['ingest']['1']['endpoint_first_seen']} statements through the endpoint, the token "
        "and BEGIN/COMMIT included.",
        END,
    ]
    return "\n".join(lines)


def _commit(ref: str) -> str:
    return subprocess.run(
        ["git", "rev-parse", "--short", ref], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()


def _head() -> str:
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return _commit("HEAD") + (" with uncommitted changes" if dirty else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", default="main", help="commit of the 'before' side")
    parser.add_argument("--scale", type=float, default=float(os.environ.get("BENCH_SCALE", 0.1)))
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", default=str(ROOT / "bench" / "results" / "api.json"))
    parser.add_argument("--docs", default=str(ROOT / "docs" / "performance.md"))
    args = parser.parse_args()
    args.started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    result = run(args)
    Path(args.json).write_text(json.dumps(result, indent=2, default=str))
    block = docs_block(result)
    write_section(Path(args.docs), BEGIN, END, block)
    print(block)


if __name__ == "__main__":
    main()
