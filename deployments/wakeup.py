"""Waking reconcilers when new work commits: PostgreSQL `LISTEN/NOTIFY`.

A stage start or a cancel calls `reconcilers_wake()` inside its transaction; PostgreSQL holds a
notification back until the transaction commits and drops it if it rolls back, so reconcilers
are woken exactly when the work is visible to them. Each running reconciler keeps one
session-level connection that LISTENs (`listen`). A connection through PgBouncer in
transaction mode cannot LISTEN: `DEPLOY_RECONCILER_LISTEN_URL` then names a direct one.
Where the database has no LISTEN (SQLite, the demo), `listen` says so and the reconciler
checks for work on a short interval instead.
"""

import logging
import threading

import psycopg
from django.conf import settings
from django.db import connection

logger = logging.getLogger(__name__)

CHANNEL = "release_train_reconciler"
# How often the listening thread looks at `stop`, and the longest pause before it reconnects.
LISTEN_SLICE_SECONDS = 1.0
MAX_RECONNECT_SECONDS = 30.0


def reconcilers_wake() -> None:
    """Wake every listening reconciler once the current transaction commits (PostgreSQL
    delivers a NOTIFY at commit, once however often it was sent), or at once outside a
    transaction. Nothing on other databases."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, '')", [CHANNEL])


def listen(*, wake: threading.Event, stop: threading.Event) -> bool:
    """Set `wake` on every notification until `stop`, from a daemon thread with a connection of
    its own. False (and no thread) where the database cannot LISTEN."""
    url = settings.DEPLOY_RECONCILER_LISTEN_URL
    if not url and connection.vendor != "postgresql":
        return False
    params = {"conninfo": url} if url else connection.get_connection_params()
    thread = threading.Thread(
        target=_listen_until, args=(params, wake, stop), name="reconciler-listen", daemon=True
    )
    thread.start()
    return True


def _listen_until(params: dict, wake: threading.Event, stop: threading.Event) -> None:
    pause = 0.5
    while not stop.is_set():
        try:
            with psycopg.connect(**params, autocommit=True) as conn:
                conn.execute(f"LISTEN {CHANNEL}")
                # Work may have committed while no one was listening.
                wake.set()
                pause = 0.5
                while not stop.is_set():
                    for _ in conn.notifies(timeout=LISTEN_SLICE_SECONDS):
                        wake.set()
        except psycopg.Error as exc:
            logger.warning(
                "reconciler_listen_failed", extra={"error": repr(exc), "retry_in": pause}
            )
            stop.wait(pause)
            pause = min(pause * 2, MAX_RECONNECT_SECONDS)
