"""`make run` for real: the demo starts, and Ctrl-C (or a TERM from a process manager) ends it
cleanly: the web server and the reconciler stopped, the script's status 0, make reporting no
error ("make: *** [Makefile:21: run] Error 143" read like a failure)."""

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.ops.test_smoke import ROOT, _free_port

pytestmark = pytest.mark.timeout(240)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "term"])
def test_make_run_stops_cleanly(tmp_path, signum):
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE"))},
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "DEPLOY_LOCAL_STATE_DIR": str(tmp_path / "jobs"),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prom"),
        "PORT": str(_free_port()),
        "WEB_CONCURRENCY": "1",
    }
    out, err = tmp_path / "out", tmp_path / "err"
    with out.open("w") as stdout, err.open("w") as stderr:
        # Its own process group, as a terminal's foreground job: Ctrl-C reaches every process.
        demo = subprocess.Popen(
            ["make", "--no-print-directory", "run"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
        )
        try:
            _wait_for(out, "Press Ctrl-C to stop.", demo)
            os.killpg(demo.pid, signum)
            status = demo.wait(timeout=60)
        finally:
            if demo.poll() is None:
                os.killpg(demo.pid, signal.SIGKILL)
                demo.wait()

    # The recipe exited 0: make names no error. Make itself got the signal too and, as GNU make
    # always does, ends by it once its recipe is done; a shell shows nothing for that.
    assert "Error" not in err.read_text(), err.read_text()
    assert status in (0, -signum)
    assert "==> stopping" in out.read_text()


def _wait_for(path: Path, line: str, process) -> None:
    for _ in range(600):
        if line in path.read_text():
            return
        assert process.poll() is None, path.read_text()
        time.sleep(0.25)
    pytest.fail(f"the demo never printed {line!r}")
