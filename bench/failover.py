"""A reconciler killed mid-launch: how long its work waits, today's code next to the new tree.

    python -m bench.failover [--apps 100] [--baseline 7d51728] [--only after]

For each side — "before" (the tree at `--baseline`, unpacked with `git archive`) and "after"
(this working tree) — on a fresh database and a fresh fake Kubernetes API server (creates take
`--create-delay` s, so launches are in flight), with two `manage.py run_reconciler` processes
of that side's code under production settings and the product's defaults (bench/rollout.py's
set-up): a stage of `--apps` apps starts; as soon as one reconciler holds launches in flight,
it is SIGKILLed. A fake Job controller finishes every Job as soon as it exists. Measured from
the kill:

- the dead reconciler's claimed launches restart: seconds until every row it had claimed is
  running (its Job created by the survivor, or found there: a 409);
- the stage ends: seconds until the batch has left pre_deploying;
- integrity: Jobs, create requests repeated (a takeover's create of a Job the dead one had
  created is answered 409), deployments moved to running twice or whose outcome was written
  twice (the write log of bench/rollout.py).

Writes bench/results/failover.json and its section of docs/performance.md.
"""

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.rollout import (
    LOGS,
    ROOT,
    Database,
    _commit,
    _head,
    _postgres_version,
    driver,
    install_write_log,
    integrity,
    reset_database,
    start_reconcilers,
    stop_reconcilers,
    tree_at,
    tree_env,
    wait_for,
    write_section,
)
from kube_fake import FakeKubernetes

BASELINE = "7d51728"  # main before issue 20
BEGIN, END = "<!-- bench-failover:begin -->", "<!-- bench-failover:end -->"


def finish_jobs(fake: FakeKubernetes, stop: threading.Event) -> None:
    """The Job controller, impatient: every Job succeeds as soon as it exists."""
    while not stop.wait(0.1):
        for key in fake.running():
            fake.finish(*key)


def names_of(label: str, count: int) -> list[str]:
    names = []
    for i in range(count):
        for line in (LOGS / f"{label}-reconciler-{i}.log").read_text().splitlines():
            if '"reconciler_started"' in line:
                names.append(json.loads(line)["reconciler"])
    return names


def run_side(label: str, tree: Path, args) -> dict:
    print(f"[{label}] {tree}", file=sys.stderr, flush=True)
    url = reset_database(f"{args.database}_{label}")
    env = tree_env(tree, url)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=tree, env=env, check=True
    )
    batch = driver(tree, env, "seed", "--batch", f"stage:{args.apps}")["batches"]["stage"]
    install_write_log(url)

    fake = FakeKubernetes(create_delay=args.create_delay).start()
    kubeconfig = LOGS / f"failover-{label}-kubeconfig.json"
    LOGS.mkdir(parents=True, exist_ok=True)
    kubeconfig.write_text(json.dumps(fake.kubeconfig()))
    env = tree_env(tree, url, kubeconfig)
    db = Database(url)
    logs = f"failover-{label}"
    procs = start_reconcilers(tree, env, logs, 2)
    stop = threading.Event()
    controller = threading.Thread(target=finish_jobs, args=(fake, stop), daemon=True)
    try:
        if not wait_for(lambda: len(names_of(logs, 2)) == 2, 60, 0.1):
            raise SystemExit(f"[{label}] the reconcilers did not start; see {LOGS}")
        names = names_of(logs, 2)
        time.sleep(1)
        controller.start()
        # Started aside: the launches may be over before the driver's process has exited.
        starter = threading.Thread(target=driver, args=(tree, env, "start", str(batch)))
        starter.start()
        in_flight = (
            "SELECT claimed_by, array_agg(id) FROM deployments_deployment WHERE status = "
            "'pending' AND job_name <> '' AND claimed_by <> '' GROUP BY 1 ORDER BY 1 LIMIT 1"
        )
        if not wait_for(lambda: db.rows(in_flight), 60, 0.01):
            raise SystemExit(f"[{label}] no launch was ever in flight")
        victim, claimed = db.rows(in_flight)[0]
        procs[names.index(victim)].send_signal(signal.SIGKILL)
        killed = time.monotonic()
        procs[names.index(victim)].wait()
        starter.join()
        print(f"[{label}] killed {victim} holding {len(claimed)} launches", file=sys.stderr)

        restarted = wait_for(
            lambda: (
                db.value(
                    "SELECT count(*) FROM deployments_deployment WHERE id = ANY(%s) "
                    "AND status <> 'pending'",
                    claimed,
                )
                == len(claimed)
            ),
            args.bound,
            0.05,
        )
        restart_s = time.monotonic() - killed if restarted else None
        ended = wait_for(
            lambda: (
                db.value("SELECT status FROM releases_batch WHERE id = %s", batch)
                != "pre_deploying"
            ),
            args.bound - (time.monotonic() - killed),
            0.05,
        )
        stage_s = time.monotonic() - killed if ended else None
        result = {
            "claimed_in_flight": len(claimed),
            "restart_s": round(restart_s, 1) if restart_s is not None else None,
            "stage_end_s": round(stage_s, 1) if stage_s is not None else None,
            "batch_status": db.value("SELECT status FROM releases_batch WHERE id = %s", batch),
            **integrity(fake, db),
        }
        print(f"[{label}] {result}", file=sys.stderr)
        return result
    finally:
        stop.set()
        stop_reconcilers(procs)
        fake.stop()
        db.close()


def _seconds(value, bound: float) -> str:
    return f"> {bound:.0f} s" if value is None else f"{value:.1f} s"


def table(result: dict) -> str:
    sides = result["sides"]
    bound = result["args"]["bound"]
    labels = [label for label in ("before", "after") if label in sides]
    rows = [
        ("measure", "target", *labels),
        ("---", "---", *["---"] * len(labels)),
        (
            "the dead one's claimed launches restart (all running)",
            "≤ 15 s",
            *[_seconds(sides[s]["restart_s"], bound) for s in labels],
        ),
        (
            "the stage ends",
            "≤ 30 s",
            *[_seconds(sides[s]["stage_end_s"], bound) for s in labels],
        ),
        (
            "launches in flight at the kill",
            "",
            *[str(sides[s]["claimed_in_flight"]) for s in labels],
        ),
        (
            "Jobs / create requests repeated (409) / moved to running twice / outcomes twice",
            "N / any / 0 / 0",
            *[
                f"{sides[s]['jobs_created']} / {sides[s]['created_again']} / "
                f"{sides[s]['started_twice']} / {sides[s]['outcomes_twice']}"
                for s in labels
            ],
        ),
    ]
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)


def render_section(result: dict) -> str:
    args = result["args"]
    return f"""## Reconciler failover (issue 20)

SIGKILL one of two reconcilers mid-launch ({args["apps"]} apps), seconds after the kill.
"before" is `{result["baseline_commit"]}` (main before issue 20), "after" `{result["after_commit"]}`;
each side with two `run_reconciler` processes of its own code under production settings and
the product's defaults, a fresh database, the fake Kubernetes API on loopback (creates take
{args["create_delay"]} s) and a Job controller that finishes each Job as soon as it exists.

{table(result)}

Before, the dead reconciler's claimed rows waited out `DEPLOY_RECONCILER_LEASE_SECONDS`
(120 s); after, the survivor sees the dead one's liveness lock free (its sessions ended with the
process) between two of its own claims (it looks at most once a second) and starts a new tick
with the dead one's launches. The stage's end also waits for the survivor applying the
outcomes of all 100 Jobs alone, on this loaded machine. Run {result["started"]}; {result["machine"]}.
Reproduce: `make bench-failover` (`python -m bench.failover`).
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--apps", type=int, default=100, help="apps in the stage")
    parser.add_argument("--create-delay", type=float, default=1.0, help="seconds per create")
    parser.add_argument("--bound", type=float, default=200.0, help="longest wait after the kill")
    parser.add_argument("--baseline", default=BASELINE, help="commit of the 'before' side")
    parser.add_argument("--only", choices=("before", "after"), help="measure one side only")
    parser.add_argument("--database", default="rt_bench_failover", help="database name prefix")
    parser.add_argument("--json", default=str(ROOT / "bench" / "results" / "failover.json"))
    parser.add_argument("--docs", default=str(ROOT / "docs" / "performance.md"))
    parser.add_argument("--no-docs", action="store_true", help="do not touch --docs")
    args = parser.parse_args()

    result = {
        "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "args": vars(args),
        "baseline_commit": _commit(args.baseline),
        "after_commit": _head(),
        "sides": {},
    }
    with tempfile.TemporaryDirectory(prefix="rt-bench-failover-") as tmp:
        if args.only != "after":
            tree = tree_at(args.baseline, Path(tmp) / "before")
            result["sides"]["before"] = run_side("before", tree, args)
        if args.only != "before":
            result["sides"]["after"] = run_side("after", ROOT, args)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    result["machine"] = (
        f"{os.cpu_count()} CPUs shared with other work (load average at the end {load}), "
        f"PostgreSQL {_postgres_version()}, Python {platform.python_version()}"
    )
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2, default=str))
    print(table(result))
    if not args.no_docs:
        write_section(Path(args.docs), BEGIN, END, f"{BEGIN}\n{render_section(result)}\n{END}")
        print(f"\nwritten: {args.json}, {args.docs} (section 'Reconciler failover')")


if __name__ == "__main__":
    main()
