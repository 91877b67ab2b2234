"""Memory of one reconciler following many Jobs, a baseline commit's code next to this tree.

    python -m bench.informer_memory [--jobs 10000] [--baseline main] [--settle 5]

For each side ("before": `--baseline` unpacked with `git archive`; "after": this tree), on a
fresh empty database, one `manage.py run_reconciler` of that side's code under production
settings (as `bench.rollout` runs it) against a fake Kubernetes API on loopback
(kube_fake, in this process): once with no Job at all (idle), once with `--jobs` finished Jobs
of ours in its pre namespace, each the size of a Job the executor creates. RSS is read from
/proc once both informers have listed and are watching, after `--settle` seconds, and after
one more full list (a resync). Writes bench/results/informer.json and the section "Reconciler
memory" of docs/performance.md.
"""
# ruff: noqa: RUF001 -- the report is prose with multiplication and division signs

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.rollout import (
    LOGS,
    reset_database,
    start_reconcilers,
    stop_reconcilers,
    tree_at,
    tree_env,
    wait_for,
    write_section,
)
from bench.run import ROOT
from kube_fake import FakeKubernetes

BEGIN, END = "<!-- bench-informer:begin -->", "<!-- bench-informer:end -->"
TARGET = 1.3
NAMESPACES = {"DEPLOY_NAMESPACE_PRE": "bench-pre", "DEPLOY_NAMESPACE_PROD": "bench-prod"}


def job(i: int) -> dict:
    """A finished Job shaped like the executor's (labels, env, the pod template)."""
    name = f"rt-app-{i:05d}-pre-{i:06d}"
    labels = {
        "app.kubernetes.io/managed-by": "release-train",
        "release-train/deployment": str(i),
        "release-train/application": f"app-{i:05d}",
        "release-train/environment": "pre",
    }
    env = [{"name": k, "value": f"{k.lower()}-{i}"} for k in ("APP", "TAG", "ENV", "BATCH", "URL")]
    container = {
        "name": "deploy",
        "image": f"registry.example.com/app-{i:05d}:v1.{i}",
        "command": ["/deploy", "--wait"],
        "env": env,
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "backoffLimit": 0,
            "ttlSecondsAfterFinished": 86400,
            "template": {
                "metadata": {"labels": labels},
                "spec": {"restartPolicy": "Never", "containers": [container]},
            },
        },
    }


def fake_with(jobs: int) -> FakeKubernetes:
    fake = FakeKubernetes().start()
    fake.log_requests = False
    namespace = NAMESPACES["DEPLOY_NAMESPACE_PRE"]
    for i in range(jobs):
        fake.handle("POST", f"/apis/batch/v1/namespaces/{namespace}/jobs", {}, job(i))
    fake.finish_all()
    return fake


def rss_kib(pid: int) -> dict[str, int]:
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return {key: int(fields[key].split()[0]) for key in ("VmRSS", "VmHWM")}


def measure(label: str, tree: Path, jobs: int, settle: float, database: str) -> dict:
    url = reset_database(database)
    env = tree_env(tree, url)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=tree, env=env, check=True
    )
    fake = fake_with(jobs)
    kubeconfig = LOGS / f"informer-{label}-kubeconfig.json"
    LOGS.mkdir(parents=True, exist_ok=True)
    kubeconfig.write_text(json.dumps(fake.kubeconfig()))
    env = {**tree_env(tree, url, kubeconfig), **NAMESPACES}
    [proc] = start_reconcilers(tree, env, f"informer-{label}", 1)
    try:
        if not wait_for(lambda: fake.open_watches() >= 2, 120, 0.1):
            raise SystemExit(f"[{label}] the reconciler never watched; see {LOGS}")
        time.sleep(settle)
        synced = rss_kib(proc.pid)
        lists = fake.count("list")
        fake.expire_history()  # the next watch gets 410: the informers list again
        fake.cut_watches()
        wait_for(lambda: fake.count("list") >= lists + 2 and fake.open_watches() >= 2, 120, 0.1)
        time.sleep(settle)
        relisted = rss_kib(proc.pid)
        return {
            "jobs": jobs,
            "synced_kib": synced,
            "relisted_kib": relisted,
            "list_requests": fake.count("list"),
        }
    finally:
        stop_reconcilers([proc])
        fake.stop()


def docs_block(result: dict) -> str:
    rows = []
    for side in ("before", "after"):
        idle, busy = result[side]["idle"], result[side]["following"]
        rows.append(
            f"| {side} | {idle['relisted_kib']['VmRSS'] / 1024:.0f} | "
            f"{busy['synced_kib']['VmRSS'] / 1024:.0f} | "
            f"{busy['relisted_kib']['VmRSS'] / 1024:.0f} | "
            f"{busy['relisted_kib']['VmHWM'] / 1024:.0f} | {result[side]['ratio']:.2f}× | "
            f"{busy['list_requests']} |"
        )
    return "\n".join(
        [
            BEGIN,
            "## Reconciler memory (issue 19)",
            "",
            f"`python -m bench.informer_memory` ({result['started']}): one `run_reconciler` of "
            f"`{result['baseline']}` (before) and of `{result['after_commit']}` (after), production "
            "settings, against the fake Kubernetes API on loopback: idle (no Job), then "
            f"following {result['jobs']:,} finished Jobs of ours (each shaped like the "
            "executor's). RSS after both informers listed and watch, and again after a forced "
            f"relist (410 on the watch); the ratio is the peak (VmHWM) while following ÷ the idle "
            f"RSS (target ≤ {TARGET}×). Page size (after): "
            f"{result['page_size']} Jobs per list request.",
            "",
            "| side | idle MiB | following, listed MiB | after a relist MiB | peak MiB "
            "| peak ÷ idle | list requests |",
            "| --- | --- | --- | --- | --- | --- | --- |",
            *rows,
            END,
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--baseline", default="main")
    parser.add_argument("--settle", type=float, default=5.0)
    parser.add_argument(
        "--database", default=os.environ.get("BENCH_INFORMER_DATABASE", "rt_bench_informer")
    )
    parser.add_argument("--json", default=str(ROOT / "bench" / "results" / "informer.json"))
    parser.add_argument("--docs", default=str(ROOT / "docs" / "performance.md"))
    args = parser.parse_args()
    from bench.api import _commit, _head

    result = {
        "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "baseline": _commit(args.baseline),
        "after_commit": _head(),
        "jobs": args.jobs,
        "page_size": int(os.environ.get("DEPLOY_KUBERNETES_LIST_PAGE_SIZE", 500)),
    }
    with tempfile.TemporaryDirectory(prefix="rt-bench-informer-") as tmp:
        trees = {"before": tree_at(args.baseline, Path(tmp) / "before"), "after": ROOT}
        for side, tree in trees.items():
            result[side] = {
                "idle": measure(f"{side}-idle", tree, 0, args.settle, args.database),
                "following": measure(side, tree, args.jobs, args.settle, args.database),
            }
            idle = result[side]["idle"]["relisted_kib"]["VmRSS"]
            result[side]["ratio"] = round(
                result[side]["following"]["relisted_kib"]["VmHWM"] / idle, 3
            )
            print(f"[{side}] {result[side]}", flush=True)
    Path(args.json).write_text(json.dumps(result, indent=2))
    block = docs_block(result)
    write_section(Path(args.docs), BEGIN, END, block)
    print(block)


if __name__ == "__main__":
    main()
