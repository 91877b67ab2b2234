"""Deployments as local processes: the embedded default for the demo (`make run`).

Each Job is a directory under DEPLOY_LOCAL_STATE_DIR/<namespace>/<job name> holding the pid,
the output and, once the command ended, its exit status. Files rather than memory, so the
result survives the reconciler that started the process.
"""

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from deployments.models import Deployment

from .base import Executor, JobState, JobStatus, PermanentJobError, RunningJob, job_env

RUNNER = Path(__file__).with_name("local_runner.py")
# What the deployment's command may see of the reconciler's environment (with the deployment's
# own variables and DEPLOY_LOCAL_ENV_PASSTHROUGH): an allow-list, so database, cloud and cluster
# credentials (PG*, AWS_*, KUBECONFIG, ...) never reach it.
BASE_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ")
TAIL_BYTES = 2000
CANCEL_GRACE_SECONDS = 5.0


class LocalExecutor(Executor):
    def __init__(self):
        # Processes this executor started, so it can reap them; others are found by pid.
        self._children: dict[Path, subprocess.Popen] = {}
        self._lock = threading.Lock()
        self._on_change: list[tuple[Callable[[], None], threading.Event]] = []

    def watch(self, *, on_change: Callable[[], None], stop: threading.Event) -> None:
        """Its own processes are waited for: their end wakes the reconciler at once. Those of
        another process (a reconciler that restarted) are found by `job_states` on the interval."""
        with self._lock:
            self._on_change.append((on_change, stop))

    def validate(self) -> None:
        super().validate()
        argv = settings.DEPLOY_LOCAL_COMMAND
        if not argv or not all(isinstance(a, str) for a in argv):
            raise ImproperlyConfigured("DEPLOY_LOCAL_COMMAND must be a non-empty command line.")
        if _resolve(argv[0]) is None:
            raise ImproperlyConfigured(
                f"DEPLOY_LOCAL_COMMAND: {argv[0]!r} is not an executable file or on PATH."
            )
        state = _state_dir()
        try:
            state.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ImproperlyConfigured(
                f"DEPLOY_LOCAL_STATE_DIR={str(state)!r} cannot be created: {exc}"
            ) from None
        if not os.access(state, os.W_OK):
            raise ImproperlyConfigured(f"DEPLOY_LOCAL_STATE_DIR={str(state)!r} is not writable.")

    def _job_dir(self, deployment: Deployment | RunningJob) -> Path:
        return _state_dir() / deployment.job_namespace / deployment.job_name

    def launch(self, deployment: Deployment) -> None:
        self._reap()
        cfg = deployment.config or {}
        argv = cfg.get("command") or settings.DEPLOY_LOCAL_COMMAND
        if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
            raise PermanentJobError("The local command must be a non-empty list of strings.")
        executable = _resolve(argv[0])
        if executable is None:
            raise PermanentJobError(f"{argv[0]!r} is not an executable file or on PATH.")

        passed = {*BASE_ENV, *settings.DEPLOY_LOCAL_ENV_PASSTHROUGH}
        env = {k: v for k, v in os.environ.items() if k in passed}
        env.update(job_env(deployment))

        job_dir = self._job_dir(deployment)
        job_dir.mkdir(parents=True, exist_ok=True)
        try:
            # The marker makes a second launch (a retry after a crash) a no-op, like a 409.
            fd = os.open(job_dir / "pid", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return
        try:
            process = subprocess.Popen(
                [sys.executable, str(RUNNER), str(job_dir), "--", executable, *argv[1:]],
                env=env,
                cwd=settings.BASE_DIR,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # its own process group, for cancel
            )
        except BaseException:
            # Whatever stopped the start, leave no marker that would make a retry a no-op.
            os.close(fd)
            os.unlink(job_dir / "pid")
            raise
        with os.fdopen(fd, "w") as f:
            f.write(str(process.pid))
        with self._lock:
            self._children[job_dir] = process
            watching = bool(self._on_change)
        if watching:
            threading.Thread(
                target=self._wait_for, args=(process,), name="local-job-wait", daemon=True
            ).start()

    def _wait_for(self, process: subprocess.Popen) -> None:
        process.wait()
        with self._lock:
            listeners = [f for f, stop in self._on_change if not stop.is_set()]
        for on_change in listeners:
            on_change()

    def poll(self, deployment: Deployment | RunningJob) -> JobStatus:
        self._reap()
        job_dir = self._job_dir(deployment)
        if (finished := _finished(job_dir)) is not None:
            return finished
        pid = _read_pid(job_dir)
        if pid is not None and self._alive(job_dir, pid):
            return JobStatus(JobState.RUNNING)
        # It may have ended between the two looks.
        if (finished := _finished(job_dir)) is not None:
            return finished
        return JobStatus(
            JobState.MISSING,
            f"Local job {deployment.job_namespace}/{deployment.job_name} is gone without an "
            "exit status (killed, or its state directory was removed).",
        )

    def cancel(self, deployment: Deployment) -> None:
        if not deployment.job_name:
            return
        job_dir = self._job_dir(deployment)
        pid = _read_pid(job_dir)
        if pid is None or (job_dir / "exit_code").exists() or not self._alive(job_dir, pid):
            return
        _signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + CANCEL_GRACE_SECONDS
        while self._alive(job_dir, pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if self._alive(job_dir, pid):
            _signal_group(pid, signal.SIGKILL)
        self._reap()

    def _alive(self, job_dir: Path, pid: int) -> bool:
        with self._lock:
            process = self._children.get(job_dir)
        if process is not None:
            return process.poll() is None
        return _pid_runs(pid, job_dir)

    def _reap(self) -> None:
        with self._lock:
            for job_dir, process in list(self._children.items()):
                if process.poll() is not None:
                    del self._children[job_dir]


def _state_dir() -> Path:
    # Absolute in every process (reconciler, web): the path is how a running process is
    # recognised as this Job's (see _pid_runs).
    return Path(settings.BASE_DIR) / settings.DEPLOY_LOCAL_STATE_DIR


def _resolve(program: str) -> str | None:
    if os.sep in program:
        path = Path(program)
        if not path.is_absolute():
            path = Path(settings.BASE_DIR) / path
        return str(path) if path.is_file() and os.access(path, os.X_OK) else None
    return shutil.which(program)


def _read_pid(job_dir: Path) -> int | None:
    try:
        return int((job_dir / "pid").read_text().strip())
    except (OSError, ValueError):
        return None


def _finished(job_dir: Path) -> JobStatus | None:
    try:
        code = int((job_dir / "exit_code").read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        finished_at = datetime.fromtimestamp((job_dir / "exit_code").stat().st_mtime, tz=UTC)
    except OSError:
        finished_at = None
    if code == 0:
        return JobStatus(JobState.SUCCEEDED, finished_at=finished_at)
    return JobStatus(
        JobState.FAILED,
        f"exit status {code}; output ends:\n{_tail(job_dir)}",
        finished_at=finished_at,
    )


def _tail(job_dir: Path) -> str:
    try:
        with open(job_dir / "output.log", "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - TAIL_BYTES))
            return f.read().decode("utf-8", "replace").strip()
    except OSError:
        return ""


def _pid_runs(pid: int, job_dir: Path) -> bool:
    """Whether `pid` is still our runner: alive, not a zombie, and (where /proc exists) running
    for this job directory, so a recycled pid is never taken for it."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    proc = Path(f"/proc/{pid}")
    if not proc.exists():
        return True
    try:
        state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        cmdline = (proc / "cmdline").read_bytes().split(b"\0")
    except (OSError, IndexError):
        return False
    return state != "Z" and str(job_dir).encode() in cmdline


def _signal_group(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signum)
