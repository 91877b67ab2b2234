# ruff: noqa: RUF001, RUF002 -- the report is prose with multiplication and division signs
"""Live admin pages under gunicorn, main's code next to this tree, in one run.

    python -m bench.live_pages [--baseline main] [--sizes 20,200,1000] [--duration 5]
                               [--window 30] [--only after]

For each side — "before" (the tree at `--baseline`, unpacked with `git archive`, as
bench/rollout.py does) and "after" (this working tree) — on a fresh PostgreSQL database seeded
by bench/live_pages_driver.py with that side's own services (batches of `--sizes` releases, a
staff user with every permission, the first batch's apps deployed to pre at times spread over
the last hour), gunicorn with the product's config (config/gunicorn.py, 2 workers, the bench
settings: production-like, with the floor views) and wrk on loopback:

1. the floor: `bench/floor/select/<id>`, one indexed SELECT in a bare Django view;
2. the poll of each batch page answering 304 (its own ETag as If-None-Match): requests per
   second, and CPU per request of the two workers (from /proc), divided by the floor's;
3. one new tag on the middle batch (the webhook's service), then the poll: bytes sent;
4. the Applications list polled every 2 s for `--window` seconds as its poller does (each
   poll with the last answer's ETag), nothing changing: the share answering 304.

Open tabs per pod: requests per second of the 304 poll on the middle batch × 2 s per poll.
Writes bench/results/live_pages.json and the "Live pages" section of docs/performance.md.
Databases: rt_bench_live_before and rt_bench_live_after, dropped and made again each run.
"""

import argparse
import html
import http.client
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.rollout import reset_database, tree_at, write_section

ROOT = Path(__file__).resolve().parent.parent
PORT = int(os.environ.get("BENCH_PORT", "8766"))
WORKERS = 2
POLL_SECONDS = 2
WRK_THREADS, WRK_CONNECTIONS = 2, 8
SEQUENTIAL = 5
LOGS = Path(os.environ.get("BENCH_LIVE_LOGS", "/tmp/rt-bench-live"))
TICK = os.sysconf("SC_CLK_TCK")
BEGIN, END = "<!-- bench-live:begin -->", "<!-- bench-live:end -->"


def side_env(tree: Path, url: str) -> dict:
    """The bench settings (production-like, persistent connections, the floor views)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DEPLOY_", "DJANGO_", "PROMETHEUS_", "LOG_")) and k != "DATABASE_URL"
    }
    env.update(
        PYTHONPATH=str(tree),
        DJANGO_SETTINGS_MODULE="bench.settings",
        BENCH_DATABASE_URL=url,
        DATABASE_URL=url,
        LOG_FORMAT="json",
        LOG_LEVEL="INFO",
    )
    return env


def driver(tree: Path, env: dict, *args: str) -> dict:
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "live_pages_driver.py"), *args],
        cwd=tree,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


class Server:
    """gunicorn of one side's tree, as the container runs it."""

    def __init__(self, tree: Path, env: dict, label: str):
        self.tree, self.env, self.label = tree, env, label

    def __enter__(self):
        LOGS.mkdir(parents=True, exist_ok=True)
        self.log = (LOGS / f"gunicorn-{self.label}.log").open("w")
        self.metrics = tempfile.mkdtemp(prefix="rt-bench-live-prometheus-")
        self.proc = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "gunicorn"),
                "--config",
                "config/gunicorn.py",
                "config.wsgi:application",
            ],
            cwd=self.tree,
            env={
                **self.env,
                "GUNICORN_BIND": f"127.0.0.1:{PORT}",
                "WEB_CONCURRENCY": str(WORKERS),
                "GUNICORN_THREADS": "1",
                "PROMETHEUS_MULTIPROC_DIR": self.metrics,
            },
            stdout=self.log,
            stderr=self.log,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if request("/healthz")[0] == 200 and len(self.workers()) == WORKERS:
                    return self
            except OSError:
                pass
            time.sleep(0.3)
        self.__exit__()
        raise RuntimeError(f"gunicorn did not start; see {self.log.name}")

    def workers(self) -> list[int]:
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        return [int(p) for p in children.read_text().split()] if children.exists() else []

    def cpu_seconds(self) -> float:
        total = 0
        for pid in self.workers():
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / TICK

    def __exit__(self, *exc):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()
        shutil.rmtree(self.metrics, ignore_errors=True)


def request(path: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
    try:
        conn.request("GET", path, headers=headers or {})
        answer = conn.getresponse()
        return answer.status, dict(answer.getheaders()), answer.read()
    finally:
        conn.close()


def poller(path: str, cookie: dict) -> tuple[str, str]:
    """The live URL and ETag of a page, as its poller has them."""
    status, _headers, body = request(path, cookie)
    if status != 200:
        raise RuntimeError(f"{path} answered {status}")
    page = body.decode()
    url = re.search(r'id="rt-live"[^>]*hx-get="([^"]+)"', page, flags=re.S).group(1)
    etag = re.search(r'data-etag="([^"]+)"', page).group(1)
    return html.unescape(url), html.unescape(etag)


def load(server: Server, path: str, duration: int, *args: str) -> dict:
    """wrk on `path` for `duration` s: requests per second, and the workers' CPU per request."""
    before = server.cpu_seconds()
    out = subprocess.run(
        [
            "wrk",
            f"-t{WRK_THREADS}",
            f"-c{WRK_CONNECTIONS}",
            f"-d{duration}s",
            "--timeout",
            "10s",
            "-s",
            str(ROOT / "bench" / "wrk" / "live.lua"),
            f"http://127.0.0.1:{PORT}{path}",
            "--",
            *args,
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=duration + 60,
    ).stdout
    cpu = server.cpu_seconds() - before
    done = int(re.search(r"(\d+) requests in", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if done < SEQUENTIAL:
        # Slower than wrk's window allows (a loaded machine, a slow page): CPU per request
        # from a few requests one after another instead.
        headers = {"Cookie": f"sessionid={args[0]}"} if args else {}
        if len(args) > 1:
            headers["If-None-Match"] = args[1]
        before = server.cpu_seconds()
        for _ in range(SEQUENTIAL):
            request(path, headers)
        cpu, done = server.cpu_seconds() - before, SEQUENTIAL
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "cpu_ms": round(1000 * cpu / done, 3) if done else None,
        "requests": done,
        "errors": int(bad.group(1)) if bad else 0,
    }


def run_side(label: str, tree: Path, args) -> dict:
    print(f"[{label}] seeding", flush=True)
    url = reset_database(f"rt_bench_live_{label}")
    env = side_env(tree, url)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v", "0"], cwd=tree, env=env, check=True
    )
    seeded = driver(tree, env, "seed", "--sizes", ",".join(map(str, args.sizes)))
    cookie = {"Cookie": f"sessionid={seeded['session']}"}
    result: dict = {"polls": {}}
    with Server(tree, env, label) as server:
        print(f"[{label}] floor", flush=True)
        result["floor"] = load(server, f"/bench/floor/select/{seeded['release_id']}", args.duration)
        for size in args.sizes:
            live_url, etag = poller(seeded["pages"][str(size)], cookie)
            status = request(live_url, {**cookie, "If-None-Match": etag})[0]
            print(f"[{label}] 304 poll, {size} releases (answers {status})", flush=True)
            result["polls"][str(size)] = {
                "status": status,
                **load(server, live_url, args.duration, seeded["session"], etag),
            }

        middle = str(args.sizes[1] if len(args.sizes) > 1 else args.sizes[0])
        live_url, etag = poller(seeded["pages"][middle], cookie)
        driver(tree, env, "tag", seeded["tag_app"], str(seeded["next_build"]))
        status, _headers, body = request(live_url, {**cookie, "If-None-Match": etag})
        result["tag_change"] = {"releases": int(middle), "status": status, "bytes": len(body)}

        print(f"[{label}] Applications list, {args.window} s of polls", flush=True)
        live_url, etag = poller(seeded["applications"], cookie)
        answers = []
        deadline = time.monotonic() + args.window
        while time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)
            status, headers, _body = request(live_url, {**cookie, "If-None-Match": etag})
            answers.append(status)
            etag = headers.get("ETag", etag)
        result["applications"] = {"polls": len(answers), "not_modified": answers.count(304)}
    return result


def figures(side: dict, sizes: list[int]) -> dict:
    floor = side["floor"]["cpu_ms"]
    polls = side["polls"]
    small, middle, large = (
        polls[str(sizes[0])],
        polls[str(sizes[1 if len(sizes) > 1 else 0])],
        polls[str(sizes[-1])],
    )
    apps = side["applications"]
    return {
        "floor_ratio": middle["cpu_ms"] / floor,
        "growth": large["cpu_ms"] / small["cpu_ms"],
        "tabs": middle["rps"] * POLL_SECONDS,
        # What two workers with a core each would serve, from the CPU a poll costs.
        "tabs_cpu": WORKERS * POLL_SECONDS * 1000 / middle["cpu_ms"],
        "bytes": side["tag_change"]["bytes"],
        "share_304": apps["not_modified"] / apps["polls"] if apps["polls"] else 0.0,
    }


def render_section(result: dict) -> str:
    sizes = result["sizes"]
    before, after = (
        figures(result["sides"][s], sizes) if s in result["sides"] else None
        for s in ("before", "after")
    )

    def each(key, fmt):
        return [fmt(f[key]) if f else "—" for f in (before, after)]

    small, middle, large = sizes[0], sizes[1 if len(sizes) > 1 else 0], sizes[-1]
    rows = [
        (
            f"304 poll, {middle}-release batch page, ÷ floor CPU",
            "≤ 10×",
            *each("floor_ratio", lambda v: f"{v:.1f}×"),
        ),
        (
            f"304 poll, {large:,} releases ÷ {small} releases (CPU)",
            "≤ 1.5×",
            *each("growth", lambda v: f"{v:.2f}×"),
        ),
        (
            f"open tabs per 2-worker pod, {middle}-release page (1 poll / 2 s)",
            "≥ 500",
            *each("tabs", lambda v: f"{v:,.0f}"),
        ),
        (
            "open tabs, the same from CPU (2 cores ÷ CPU per poll × 2 s)",
            "≥ 500",
            *each("tabs_cpu", lambda v: f"{v:,.0f}"),
        ),
        (
            f"bytes after one tag change, {middle}-release page",
            "≤ 8 KB",
            *each("bytes", lambda v: f"{v / 1024:,.1f} KB"),
        ),
        (
            "Applications list: polls answering 304 when nothing changed",
            "100 %",
            *each("share_304", lambda v: f"{100 * v:.0f} %"),
        ),
    ]
    detail = []
    for label in ("before", "after"):
        side = result["sides"].get(label)
        if not side:
            continue
        polls = ", ".join(
            f"{size}: {side['polls'][str(size)]['cpu_ms']:.2f} ms "
            f"({side['polls'][str(size)]['rps']:,.0f}/s)"
            for size in sizes
        )
        detail.append(
            f"- {label}: floor {side['floor']['cpu_ms']:.2f} ms CPU per request "
            f"({side['floor']['rps']:,.0f}/s); 304 polls, CPU per request (throughput): {polls}; "
            f"Applications list {side['applications']['not_modified']} of "
            f"{side['applications']['polls']} polls 304."
        )
    lines = [
        "## Live pages",
        "",
        f"`make bench-live` ({result['date']}, {result['host']}): main ({result['baseline']}) "
        "before issue 19 next to this tree, in one run: gunicorn with the product's config "
        f"({WORKERS} workers), wrk on loopback ({WRK_THREADS} threads, {WRK_CONNECTIONS} "
        f"connections, {result['duration']} s a measure), a staff user's session. CPU is the "
        "two workers' user + system time per request (from /proc), divided by the floor's (one "
        "indexed SELECT in a bare view) in the same run; open tabs are the 304 poll's "
        "throughput × 2 s. The machine is shared: throughput moves from run to run, the ratios "
        "less.",
        "",
        "| measure | target | before | after |",
        "| --- | --- | --- | --- |",
        *(f"| {' | '.join(row)} |" for row in rows),
        "",
        *detail,
        "",
        "A poll reads the revisions of its page's objects in one query (`live/revisions.py`) and "
        "answers 304 without rendering; a change renders the regions of the objects whose "
        "revision moved (for a batch page, its own regions and the rows stamped since). Relative "
        "times are written by the browser (`static/live-times.js`), so the Applications list no "
        "longer changes every minute. A 304 poll is 4 queries, each compiled once per "
        "process and prepared by PostgreSQL: the session, the user with all their permissions "
        "(`utilities/auth.py`), the page's revisions and the active holds.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", default="main", help="the commit measured as 'before'")
    parser.add_argument("--sizes", default="20,200,1000", help="releases of each batch page")
    parser.add_argument("--duration", type=int, default=5, help="seconds of each wrk measure")
    parser.add_argument("--window", type=int, default=30, help="seconds of Applications polls")
    parser.add_argument("--only", choices=["before", "after"])
    parser.add_argument("--docs", default=str(ROOT / "docs" / "performance.md"))
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "live_pages.json"))
    args = parser.parse_args()
    args.sizes = [int(s) for s in args.sizes.split(",")]
    baseline = subprocess.run(
        ["git", "rev-parse", "--short", args.baseline],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()

    result = {
        "date": time.strftime("%Y-%m-%d"),
        "host": f"{os.cpu_count()} CPUs, {platform.python_version()}",
        "baseline": baseline,
        "sizes": args.sizes,
        "duration": args.duration,
        "sides": {},
    }
    with tempfile.TemporaryDirectory(prefix="rt-bench-live-") as scratch:
        sides = {
            "before": lambda: tree_at(baseline, Path(scratch) / "before"),
            "after": lambda: ROOT,
        }
        for label, tree in sides.items():
            if args.only in (None, label):
                result["sides"][label] = run_side(label, tree(), args)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    section = render_section(result)
    write_section(Path(args.docs), BEGIN, END, f"{BEGIN}\n{section}\n{END}")
    print(section)


if __name__ == "__main__":
    main()
