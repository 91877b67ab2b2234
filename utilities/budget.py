"""Time budgets for side work a request does after its commit (deleting Jobs).

A budget belongs to the request, not to each workflow it runs: the admin's bulk switch runs
one switch per selected release, and all of them together may spend one budget. What is left
undone when it is spent is picked up by the reconciler.
"""

import contextvars
import time
from contextlib import contextmanager


class TimeBudget:
    def __init__(self, seconds: float):
        self.left = seconds

    @property
    def spent(self) -> bool:
        return self.left <= 0

    @contextmanager
    def spending(self):
        started = time.monotonic()
        try:
            yield
        finally:
            self.left -= time.monotonic() - started


_request_budgets: contextvars.ContextVar[dict[str, TimeBudget] | None] = contextvars.ContextVar(
    "request_budgets", default=None
)


@contextmanager
def request_scope():
    """Budgets asked for inside this block are shared by everything it does."""
    token = _request_budgets.set({})
    try:
        yield
    finally:
        _request_budgets.reset(token)


def request_budget(name: str, seconds: float) -> TimeBudget:
    """The current request's budget `name` (made on first use); outside a request, a new one."""
    budgets = _request_budgets.get()
    if budgets is None:
        return TimeBudget(seconds)
    return budgets.setdefault(name, TimeBudget(seconds))
