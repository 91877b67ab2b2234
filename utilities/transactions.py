"""Retrying a workflow's transaction when PostgreSQL aborts it to break a deadlock or a
serialization conflict.

Such an abort says nothing about the request: the same transaction run again, a moment later,
normally succeeds. Every workflow's durable transaction is therefore retried a few times, with
growing, jittered pauses (so two victims of one conflict do not collide again in step); when the
tries run out the caller gets `busy` (503 with Retry-After), never a bare 500.
"""

import functools
import logging
import random
import time

from django.conf import settings
from django.db import OperationalError

from .errors import DomainError

logger = logging.getLogger(__name__)

# serialization_failure, deadlock_detected
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})


def is_conflict(exc: BaseException) -> bool:
    """Whether PostgreSQL aborted the transaction only because of another one."""
    return getattr(exc.__cause__, "sqlstate", None) in RETRYABLE_SQLSTATES


def retry_on_conflict(func):
    """Run `func` again when its transaction is aborted by a deadlock or serialization failure.

    `func` must open the outermost transaction itself (`atomic(durable=True)`) and do nothing
    before it that cannot be repeated: a retry runs it whole.
    """

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        attempts = settings.WORKFLOW_RETRY_ATTEMPTS
        for attempt in range(1, attempts + 1):
            try:
                return func(*args, **kwargs)
            except OperationalError as exc:
                if not is_conflict(exc):
                    raise
                sqlstate = exc.__cause__.sqlstate
                if attempt == attempts:
                    logger.warning(
                        "workflow_busy",
                        extra={
                            "workflow": func.__name__,
                            "attempts": attempt,
                            "sqlstate": sqlstate,
                        },
                    )
                    raise DomainError("busy") from exc
                delay = settings.WORKFLOW_RETRY_BASE_DELAY * 2 ** (attempt - 1)
                delay *= random.uniform(0.5, 1.5)
                logger.warning(
                    "workflow_retried",
                    extra={
                        "workflow": func.__name__,
                        "attempt": attempt,
                        "sqlstate": sqlstate,
                        "delay": round(delay, 3),
                    },
                )
                time.sleep(delay)
        raise AssertionError("unreachable")

    return wrapper
