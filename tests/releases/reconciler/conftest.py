import threading
import time
from io import StringIO

import pytest
from django.core.management import call_command

from deployments.executors import get_executor
from releases.reconciler import Reconciler

# Only a wake-up (NOTIFY, a watched change) makes a running reconciler tick in a test's time.
NEVER = 600.0


def tick() -> str:
    """One reconciler tick through the real command; returns its summary line."""
    out = StringIO()
    call_command("run_reconciler", "--once", stdout=out)
    return out.getvalue().strip()


def wait_for(condition, *, seconds: float = 30.0, what: str = "the reconcilers") -> None:
    """Bounded waiting for reconcilers in other threads; fails, never asserts on time."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not get there")
        time.sleep(0.05)


@pytest.fixture
def reconcilers(cluster):
    """`start(n)` runs n reconcilers' real loop (`Reconciler.run`) in threads, each with its
    own database connection, once their informers have listed; all are stopped afterwards.
    Needs `django_db(transaction=True)`: they see only what commits."""
    stop = threading.Event()
    threads: list[threading.Thread] = []
    started: list[Reconciler] = []
    errors: list[BaseException] = []

    def start(n: int = 1, *, interval: float = NEVER) -> list[Reconciler]:
        for _ in range(n):
            reconciler = Reconciler(name=f"reconciler-{len(started)}", stop=stop)

            def run(reconciler=reconciler):
                try:
                    reconciler.run(interval=interval)
                except BaseException as exc:
                    errors.append(exc)

            thread = threading.Thread(target=run)
            thread.start()
            threads.append(thread)
            started.append(reconciler)
        wait_for(get_executor().synced, what="the informers")
        return started[-n:]

    yield start
    for reconciler in started:
        reconciler.request_stop()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(t.is_alive() for t in threads), "a reconciler did not stop"
    assert errors == []
