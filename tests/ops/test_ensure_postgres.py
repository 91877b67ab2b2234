"""scripts/ensure-postgres, for real: the throwaway cluster `make test` starts on a bare machine.

Each test runs the script as `make test` does, wrapping a command; the default address
(PGHOST/PGPORT) points where nothing listens, so the script has to start a cluster of its own.
"""

import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "ensure-postgres"
STARTED = re.compile(r"started PostgreSQL \S+ in (\S+) on 127\.0\.0\.1:(\d+)")

pytestmark = pytest.mark.timeout(120)

# The wrapped command: connect to the URL the script exported and say what the server answered.
CONNECT = """
import os, sys, time
import psycopg
with psycopg.connect(os.environ["DATABASE_URL"], dbname="postgres", connect_timeout=5) as c:
    print("select 1 ->", c.execute("select 1").fetchone()[0], flush=True)
if len(sys.argv) > 1 and sys.argv[1] == "hang":
    time.sleep(60)
sys.exit(int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 0)
"""

needs_server_binaries = pytest.mark.skipif(
    not glob.glob("/usr/lib/postgresql/*/bin/initdb") and not shutil.which("initdb"),
    reason="PostgreSQL's server binaries (initdb, pg_ctl) are not installed",
)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "PGHOST", "PGPORT")}
    return {**env, "PGHOST": "127.0.0.1", "PGPORT": str(_closed_port()), **extra}


def _run(*command: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(SCRIPT), "--", *command], env=env, capture_output=True, text=True, timeout=90
    )


def _started(stderr: str) -> tuple[Path, int]:
    found = STARTED.search(stderr)
    assert found, stderr
    return Path(found[1]), int(found[2])


def _assert_gone(folder: Path, port: int) -> None:
    """No process of that cluster left, its port closed, its folder removed."""
    running = []
    for cmdline in glob.glob("/proc/[0-9]*/cmdline"):
        try:
            if str(folder).encode() in Path(cmdline).read_bytes():
                running.append(cmdline)
        except OSError:
            pass  # the process ended while we looked
    assert not running
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0
    assert not folder.exists()


@needs_server_binaries
def test_starts_a_cluster_when_nothing_answers_and_removes_it_afterwards():
    done = _run(sys.executable, "-c", CONNECT, env=_env())

    assert done.returncode == 0, done.stderr
    assert "select 1 -> 1" in done.stdout
    folder, port = _started(done.stderr)
    assert "no PostgreSQL answers at 127.0.0.1:" in done.stderr
    _assert_gone(folder, port)


@needs_server_binaries
def test_a_failing_command_keeps_its_status_and_the_cluster_is_still_removed():
    done = _run(sys.executable, "-c", CONNECT, "3", env=_env())

    assert done.returncode == 3
    assert "select 1 -> 1" in done.stdout
    _assert_gone(*_started(done.stderr))


def _as_at_a_terminal() -> None:
    # A shell at a terminal starts commands with SIGINT at its default; a test run started in
    # the background may have it ignored, and bash cannot trap a signal ignored on entry.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _stop_leftover(stderr: str) -> None:
    """If the script was killed before it could clean up, stop its server and delete its folder."""
    found = STARTED.search(stderr)
    pid_file = Path(found[1]) / "data" / "postmaster.pid" if found else None
    if pid_file and pid_file.exists():
        pid = int(pid_file.read_text().split()[0])
        os.kill(pid, signal.SIGINT)  # the postmaster's fast shutdown
        for _ in range(300):
            if not Path(f"/proc/{pid}").exists():
                break
            time.sleep(0.1)
    if found:
        shutil.rmtree(found[1], ignore_errors=True)


@needs_server_binaries
def test_ctrl_c_stops_the_command_and_the_cluster():
    # Ctrl-C at a terminal signals the whole foreground process group: the script and its command.
    process = subprocess.Popen(
        [str(SCRIPT), "--", sys.executable, "-c", CONNECT, "hang"],
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=_as_at_a_terminal,
    )
    stderr = ""
    try:
        assert process.stdout.readline().strip() == "select 1 -> 1"
        os.killpg(process.pid, signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            _, stderr = process.communicate()
            _stop_leftover(stderr)

    assert process.returncode == 130
    _assert_gone(*_started(stderr))


def test_a_dead_database_url_is_named_and_the_command_never_runs():
    port = _closed_port()
    done = _run("echo", "ran", env=_env(DATABASE_URL=f"postgres://rt:secret@127.0.0.1:{port}/x"))

    assert done.returncode != 0
    assert f"DATABASE_URL=postgres://rt:***@127.0.0.1:{port}/x" in done.stderr
    assert "secret" not in done.stderr
    assert "ran" not in done.stdout
    assert "started" not in done.stderr


def test_a_server_at_the_default_address_is_used_as_it_is():
    db = settings.DATABASES["default"]
    if db["USER"] != "postgres" or db["PASSWORD"]:
        pytest.skip("the suite's server is not reachable as postgres without a password")
    host, port = db["HOST"] or "127.0.0.1", str(db["PORT"] or 5432)
    show = 'echo "$DATABASE_URL $BENCH_DATABASE_URL"'

    done = subprocess.run(
        [str(SCRIPT), "--url", "BENCH_DATABASE_URL=rt_bench", "sh", "-c", show],
        env=_env(PGHOST=host, PGPORT=port),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 0, done.stderr
    server = f"postgres://postgres@{host}:{port}"
    assert done.stdout.split() == [f"{server}/releasetrain", f"{server}/rt_bench"]
    assert "started" not in done.stderr
