"""Render docs/performance.md from the JSON a bench run wrote (bench/results/latest.json)."""
# ruff: noqa: RUF001 -- the report is prose with multiplication and division signs

import importlib
import json
import sys
from pathlib import Path


def _met(ok: bool) -> str:
    return "met" if ok else "**missed**"


def render(r: dict) -> str:
    args, seed, counts = r["args"], r["seed"], r["counts"]["seeded"]
    flat_s, flat_e = r["flat"]["seeded"], r["flat"]["empty"]
    ingest = flat_s["ingest"]
    service_counts = [ingest[k]["service_first_seen"] for k in ("1", "10", "200")]
    endpoint_counts = [ingest[k]["endpoint_first_seen"] for k in ("1", "10", "200")]
    status = flat_s["status"]
    status_counts = [status["0"]["endpoint"], status["10000"]["endpoint"]]
    lat, ov, co = r["latency"], r["overhead"], r["contention"]
    command = (
        f"make bench BENCH_SCALE={args['scale']} BENCH_DURATION={args['duration']} "
        f"BENCH_ROUNDS={args['rounds']}" + (" BENCH_ARGS=--reseed" if args.get("reseed") else "")
    )
    lines = [
        "# Performance",
        "",
        "Every figure below comes from one run of `make bench` (`python -m bench.run`); the raw",
        "numbers are in `bench/results/latest.json`. Each comparison measures both sides in the",
        "same run, alternately, and reports the median of the per-round ratios: the machine is",
        "shared, so absolute times are noise and only ratios are meaningful.",
        "",
        f"- Run: {r['started']}, `{command}`",
        f"- Machine: {r['machine']['cpus']} CPUs shared with other work (load average at the end "
        f"{', '.join(f'{x:.1f}' for x in r['machine']['load_average'])}), PostgreSQL "
        f"{r['machine']['postgres']}, Python {r['machine']['python']}",
        f"- Seeded database `{r.get('databases', {}).get('seeded', 'rt_bench')}` at scale "
        f"{args['scale']}: "
        f"{counts['deployments_deployment']:,} deployments, {counts['builds_build']:,} builds, "
        f"{counts['releases_batch']:,} batches ({counts['open_batches']:,} open), "
        f"{counts['releases_releaseapp']:,} releases"
        + (
            f"; seeded in {seed['seconds']} s ("
            + ", ".join(f"{t}: {n:,} rows in {s} s" for t, (n, s) in seed["timings"].items() if n)
            + ")"
            if "seconds" in seed
            else " (reused from an earlier run at the same scale)"
        ),
        f"- Empty database `{r.get('databases', {}).get('empty', 'rt_bench_empty')}`: migrated "
        "fresh, holding only the probe fixture that both databases share (200 probe apps in 5 "
        "open batches, a release with 10 deployments, one with 0 and one with 10,000, every "
        "probe app running in pre and prod with a newer failed prod attempt, 65 releases for "
        "the contention runs).",
        "",
        "## Goals",
        "",
        "| goal | target | measured | result |",
        "| --- | --- | --- | --- |",
        f"| statements per notification, 1 / 10 / 200 apps (the ingest transaction) | equal, ≤ 12 "
        f"| {' / '.join(map(str, service_counts))} | "
        f"{_met(len(set(service_counts)) == 1 and max(service_counts) <= 12)} |",
        f"| the same through the endpoint (adds token and permission look-ups) | — | "
        f"{' / '.join(map(str, endpoint_counts))} | flat |",
        f"| queries of the status endpoint, 0 / 10,000 deployments of history | equal, ≤ 6 | "
        f"{' / '.join(map(str, status_counts))} (selector alone: "
        f"{status['0']['selector']} / {status['10000']['selector']}) | "
        f"{_met(len(set(status_counts)) == 1 and max(status_counts) <= 6)} |",
        f"| p50 of 1-app ingest, seeded ÷ empty | ≤ 1.2× | {lat['ingest_ratio']:.2f}× | "
        f"{_met(lat['ingest_ratio'] <= 1.2)} |",
        f"| p50 of status, seeded ÷ empty | ≤ 1.2× | {lat['status_ratio']:.2f}× | "
        f"{_met(lat['status_ratio'] <= 1.2)} |",
        *(
            [
                f"| p50 of the applications list (first page of 50), seeded ÷ empty | ≤ 1.2× | "
                f"{lat['applications_ratio']:.2f}× | {_met(lat['applications_ratio'] <= 1.2)} |",
                f"| queries of the applications list, seeded / empty | equal | "
                f"{flat_s['applications']['first page']} / {flat_e['applications']['first page']}"
                f" (`?behind=prod`: {flat_s['applications']['?behind=prod']} / "
                f"{flat_e['applications']['?behind=prod']}) | "
                f"{_met(flat_s['applications'] == flat_e['applications'])} |",
            ]
            if "applications_ratio" in lat
            else []
        ),
        # SPEC §15 ("The API is light"), as issue 19 restated the goals.
        f"| status endpoint ÷ bare view with one indexed SELECT (throughput) | ≥ 0.25× | "
        f"{ov['status_vs_floor']:.2f}× | {_met(ov['status_vs_floor'] >= 0.25)} |",
        f"| 1-app ingest ÷ bare view with one INSERT (throughput) | ≥ 0.25× | "
        f"{ov['ingest_vs_floor']:.2f}× | {_met(ov['ingest_vs_floor'] >= 0.25)} |",
        f"| (reference) status ÷ DRF view with the API's token auth and one SELECT | — | "
        f"{ov['status_vs_drf_floor']:.2f}× | — |",
        f"| (reference) 1-app ingest ÷ DRF view with the API's token auth and one INSERT | — | "
        f"{ov['ingest_vs_drf_floor']:.2f}× | — |",
        f"| 64 concurrent switches, distinct releases: errors | 0 | {co['distinct']['errors']} | "
        f"{_met(co['distinct']['errors'] == 0)} |",
        f"| 64 concurrent switches, one release: errors | 0 | {co['one']['errors']} | "
        f"{_met(co['one']['errors'] == 0)} |",
        "",
        "## Flat cost",
        "",
        "Statements counted with `django.test.utils.CaptureQueriesContext`, including `BEGIN`,",
        "`COMMIT` and savepoints. Each notification is a first-seen successful build whose apps",
        "sit in 5 open batches, so detection updates 5 releases per app.",
        "",
        "| apps | releases updated | service, first seen | service, duplicate | endpoint, first seen "
        "| same on the empty database |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for k in ("1", "10", "200"):
        s, e = ingest[k], flat_e["ingest"][k]
        lines.append(
            f"| {k} | {s['releases_updated']} | {s['service_first_seen']} | "
            f"{s['service_duplicate']} | {s['endpoint_first_seen']} | "
            f"{e['service_first_seen']} / {e['service_duplicate']} / {e['endpoint_first_seen']} |"
        )
    if "seeded app" in ingest:
        s = ingest["seeded app"]
        lines.append(
            f"| 1 seeded app (`{s['app']}`, ~100 releases and 200 builds of history) | "
            f"{s['releases_updated']} | {s['service_first_seen']} | — | — | — |"
        )
    lines += [
        "",
        "| history of the release | status selector | status endpoint | on the empty database |",
        "| --- | --- | --- | --- |",
    ]
    for k, label in (("0", "0 deployments"), ("10000", "10,000 deployments")):
        s, e = status[k], flat_e["status"][k]
        lines.append(
            f"| {label} | {s['selector']} | {s['endpoint']} | {e['selector']} / {e['endpoint']} |"
        )
    lines += [
        "",
        "## Seeded vs empty (in-process, full Django stack, no network)",
        "",
        "p50 in ms of a 1-app notification (first seen, success), of the status of a release "
        "with 10 deployments and of the first page (50 apps) of the applications list, per round. "
        "The applications on that page run in pre and prod in both databases (seeded apps: their "
        "history; probe apps: one success per environment and a newer failed prod attempt) and "
        "sit in 5 open batches each, so both pages carry the same amount of content:",
        "",
        "| round | ingest seeded | ingest empty | status seeded | status empty "
        "| applications seeded | applications empty |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for i, (s, e) in enumerate(zip(lat["rounds"]["seeded"], lat["rounds"]["empty"], strict=True)):
        lines.append(
            f"| {i + 1} | {s['ingest_p50_ms']:.1f} | {e['ingest_p50_ms']:.1f} | "
            f"{s['status_p50_ms']:.1f} | {e['status_p50_ms']:.1f} | "
            f"{s.get('applications_p50_ms', 0):.1f} | {e.get('applications_p50_ms', 0):.1f} |"
        )
    lines += [
        "",
        "Plans on the seeded database (`EXPLAIN ANALYZE` of every statement of one ingest, of "
        "the status of the 10,000-deployment release and of the applications list; slowest "
        "first):",
        "",
        "| request | statement | ms | sequential scans |",
        "| --- | --- | --- | --- |",
    ]
    for label, rows in r["explain"].items():
        ok = [row for row in rows if "ms" in row]
        for row in sorted(ok, key=lambda x: -x["ms"])[:5]:
            sql = row["sql"].replace("|", "\\|")[:90]
            scans = ", ".join(row["seq_scans"]) or "none"
            lines.append(f"| {label} | `{sql}…` | {row['ms']:.3f} | {scans} |")
    if "index_cost" in r:
        ic = r["index_cost"]
        lines += [
            "",
            "## What the overview's indexes cost the writes",
            "",
            "The applications overview reads through four indexes (`deployment_app_recent_idx`, "
            "`deployment_app_running_idx`, `deployment_app_failed_idx`, "
            "`build_image_app_latest_idx`; migrations `builds 0003`, `deployments 0003`). Writes pay to keep them: "
            "each new build image adds one entry, each new deployment one, and each outcome "
            "(succeeded, failed) one in a partial index. Measured on the seeded database: p50 "
            f"in ms of {ic['n']} 1-app ingests (the service, one transaction each) and of "
            f"{ic['n']} outcomes applied (`apply_deployment_outcome`), with the indexes and with "
            "them dropped, in alternating rounds (they are re-created at the end). The number of "
            "statements does not change; only the index maintenance inside them does.",
            "",
            "| round | ingest with | ingest without | outcome with | outcome without |",
            "| --- | --- | --- | --- | --- |",
        ]
        for i, (w, wo) in enumerate(zip(ic["runs"]["with"], ic["runs"]["without"], strict=True)):
            lines.append(
                f"| {i + 1} | {w['ingest_p50_ms']:.2f} | {wo['ingest_p50_ms']:.2f} | "
                f"{w['outcome_p50_ms']:.2f} | {wo['outcome_p50_ms']:.2f} |"
            )
        lines += [
            "",
            f"Median of the per-round ratios, with ÷ without: ingest {ic['ingest_ratio']:.2f}×, "
            f"outcome {ic['outcome_ratio']:.2f}×. Index sizes at this scale: "
            + ", ".join(f"`{k}` {v / 1024 / 1024:.1f} MiB" for k, v in ic["index_bytes"].items())
            + ".",
        ]
    lines += [
        "",
        "## Overhead vs floor under gunicorn",
        "",
        f"gunicorn with the product's config (`config/gunicorn.py`), {2} sync workers, settings "
        "`bench.settings` (DEBUG off, JSON logs at INFO as in production, metrics in multiprocess "
        "mode as in the container) on the seeded database; load from "
        f"`wrk -t2 -c8 -d{args['duration']}s` over loopback. The floor views "
        "(`bench/floor.py`) are bare Django views behind the same middleware: one indexed "
        "SELECT by primary key, one INSERT of the posted JSON; the DRF floors do the same behind "
        "the API's own token authentication and one permission check. The ingest run posts a new "
        "build number every request (first seen, success, one of 200 apps in 5 open batches).",
        "",
        "| round | status req/s | floor SELECT | ratio | DRF floor SELECT | ratio "
        "| ingest req/s | floor INSERT | ratio | DRF floor INSERT | ratio |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    runs = ov["runs"]
    for i in range(len(runs["status"])):
        lines.append(
            f"| {i + 1} | {runs['status'][i]['rps']:.0f} | {runs['floor_select'][i]['rps']:.0f} | "
            f"{ov['status_vs_floor_rounds'][i]:.2f} | {runs['drf_floor_select'][i]['rps']:.0f} | "
            f"{ov['status_vs_drf_floor_rounds'][i]:.2f} | {runs['ingest'][i]['rps']:.0f} | "
            f"{runs['floor_insert'][i]['rps']:.0f} | {ov['ingest_vs_floor_rounds'][i]:.2f} | "
            f"{runs['drf_floor_insert'][i]['rps']:.0f} | {ov['ingest_vs_drf_floor_rounds'][i]:.2f} |"
        )
    bad = sum(run["non_2xx"] for rs in runs.values() for run in rs)
    logs = r.get("log_check")
    lines += [
        "",
        f"Non-2xx responses across all load runs: {bad}."
        + (
            f" The gunicorn log of the load and contention runs ({logs['lines']:,} lines) "
            f"contains the bearer token {logs['token_hits']} times."
            if logs
            else ""
        ),
        "",
        "## Contention",
        "",
        f"64 switch requests released at once by a barrier, {co['distinct']['rounds']} rounds per "
        "case, against gunicorn with 2 workers × 32 threads (so all 64 are in flight together). "
        "Each round switches to the tag the release is not at.",
        "",
        "| case | requests | throughput (req/s, median round) | p50 ms | p99 ms | errors "
        "| changed |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for mode, label in (("distinct", "64 distinct releases"), ("one", "one release")):
        c = co[mode]
        lines.append(
            f"| {label} | {c['requests']} | {c['throughput_rps']} | {c['p50_ms']} | "
            f"{c['p99_ms']} | {c['errors']} | {c['changed']} |"
        )
    lines += [
        "",
        "For one release every round has exactly one change and 63 answers of "
        '`"changed": false` (the row lock serialises them; the later ones find the effect '
        "already holds).",
        "",
    ]
    if "breakdown" in r:
        lines += [
            "## Where the time goes (in-process, seeded database)",
            "",
            "Median ms of each piece called on its own, many times, in one process (no HTTP, "
            "no gunicorn), next to the floor views measured the same way:",
            "",
            "| piece | median ms |",
            "| --- | --- |",
        ]
        lines += [f"| {k} | {v:.2f} |" for k, v in r["breakdown"].items()]
        lines.append("")
    # `make bench-rollout` keeps its own section; `make bench` carries it over unchanged.
    rollout = Path(__file__).parent / "results" / "rollout.json"
    if rollout.exists():
        from bench.rollout import docs_block

        lines += [docs_block(json.loads(rollout.read_text())), ""]
    # So do `python -m bench.api` and `python -m bench.informer_memory` (issue 19).
    for name, module in (("api", "bench.api"), ("informer", "bench.informer_memory")):
        saved = Path(__file__).parent / "results" / f"{name}.json"
        if saved.exists():
            block = importlib.import_module(module).docs_block(json.loads(saved.read_text()))
            lines += [block, ""]
    notes = Path(__file__).with_name("NOTES.md")
    if notes.exists():
        lines += [notes.read_text().rstrip(), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    path = sys.argv[1] if len(sys.argv) > 1 else "bench/results/latest.json"
    print(render(json.loads(Path(path).read_text())))
