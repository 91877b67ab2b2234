"""Waking reconcilers when new work commits: PostgreSQL `LISTEN/NOTIFY`.

A stage start or a cancel calls `reconcilers_wake()` inside its transaction; PostgreSQL holds a
notification back until the transaction commits and drops it if it rolls back, so reconcilers
are woken exactly when the work is visible to them. Each running reconciler keeps one
session-level connection that LISTENs (`listen`). A connection through PgBouncer in
transaction mode cannot LISTEN: `DEPLOY_RECONCILER_LISTEN_URL` then names a direct one.
Where the database has no LISTEN (SQLite, the demo), `listen` says so and the reconciler
checks for work on a short interval instead.

The same connection tells the other reconcilers that this one is alive: it holds a session
advisory lock on a key derived from the reconciler's name (its claims' `claimed_by`). The lock
goes when the process dies or loses the database, at once, without waiting for a lease, so
another reconciler that finds a claim whose owner's lock is free (`reconcilers_alive`, read
from `pg_locks`) takes it over at once. A reconciler that ticks without `listen` (`--once`,
tests) holds the lock on its own connection (`liveness_hold`).
"""

import hashlib
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
# The first key of every reconciler's advisory lock (the two-key form), so that no other use
# of advisory locks in the database can be mistaken for a reconciler.
LIVENESS_LOCK_CLASS = 0x52545243  # "RTRC"


def liveness_key(name: str) -> int:
    """The second key of reconciler `name`'s advisory lock: 31 bits of a hash of the name
    (non-negative, as `pg_locks.objid` shows it). Two live names sharing one would only make a
    dead one look alive: its claims then wait out their lease."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big") & 0x7FFFFFFF


def liveness_hold(cursor, name: str) -> bool:
    """Take reconciler `name`'s advisory lock on the cursor's session; False if another
    session holds it. Taking it again on the same session is harmless."""
    cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [LIVENESS_LOCK_CLASS, liveness_key(name)])
    return bool(cursor.fetchone()[0])


def reconcilers_alive(names: set[str]) -> set[str]:
    """Of these reconcilers, those whose advisory lock some session holds: alive. All of them
    where the database has no such locks (SQLite): there, only a lease running out frees a
    claim."""
    if connection.vendor != "postgresql" or not names:
        return set(names)
    keys = {liveness_key(name): name for name in names}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT objid::bigint FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND classid = %s::bigint::oid AND objsubid = 2 AND objid = ANY(%s::bigint[]::oid[])",
            [LIVENESS_LOCK_CLASS, list(keys)],
        )
        return {keys[row[0]] for row in cursor.fetchall()}


def reconcilers_wake() -> None:
    """Wake every listening reconciler once the current transaction commits (PostgreSQL
    delivers a NOTIFY at commit, once however often it was sent), or at once outside a
    transaction. Nothing on other databases."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, '')", [CHANNEL])


def listen(*, wake: threading.Event, stop: threading.Event, name: str) -> bool:
    """Set `wake` on every notification until `stop`, from a daemon thread with a connection of
    its own, which holds reconciler `name`'s liveness lock. False (and no thread) where the
    database cannot LISTEN."""
    url = settings.DEPLOY_RECONCILER_LISTEN_URL
    if not url and connection.vendor != "postgresql":
        return False
    params = {"conninfo": url} if url else connection.get_connection_params()
    thread = threading.Thread(
        target=_listen_until, args=(params, wake, stop, name), name="reconciler-listen", daemon=True
    )
    thread.start()
    return True


def _listen_until(params: dict, wake: threading.Event, stop: threading.Event, name: str) -> None:
    pause = 0.5
    while not stop.is_set():
        try:
            with psycopg.connect(**params, autocommit=True) as conn:
                conn.execute(f"LISTEN {CHANNEL}")
                with conn.cursor() as cursor:
                    if not liveness_hold(cursor, name):
                        logger.warning("reconciler_liveness_lock_busy", extra={"reconciler": name})
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
