"""A request id in every log line of a request, and one line per request; a request's time
budget for side work."""

import logging
import re
import time
import uuid

from config.logging import request_id_var
from utilities.budget import request_scope

logger = logging.getLogger("config.requests")

REQUEST_ID_HEADER = "X-Request-ID"
# A caller's id is kept if it looks like an id; anything else (too long, odd bytes) is replaced,
# so a client cannot forge log lines through it.
_VALID_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# Probes and scrapes run every few seconds; they log at DEBUG.
_QUIET_PATHS = ("/healthz", "/readyz", "/metrics")


class RequestIdMiddleware:
    """Honours the caller's X-Request-ID (or makes one), logs with it, echoes it back."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        given = request.headers.get(REQUEST_ID_HEADER, "")
        request_id = given if _VALID_ID.fullmatch(given) else uuid.uuid4().hex
        request.request_id = request_id
        token = request_id_var.set(request_id)
        started = time.monotonic()
        try:
            response = self.get_response(request)
            response[REQUEST_ID_HEADER] = request_id
            level = logging.DEBUG if request.path in _QUIET_PATHS else logging.INFO
            if response.status_code >= 500:
                level = logging.ERROR
            if not logger.isEnabledFor(level):
                return response
            # The path only: query strings may carry secrets; headers are never logged.
            logger.log(
                level,
                "http_request",
                extra={
                    "method": request.method,
                    "path": request.path,
                    "status": response.status_code,
                    "duration_ms": round((time.monotonic() - started) * 1000, 1),
                    "user": _username(request),
                },
            )
            return response
        finally:
            request_id_var.reset(token)


def _username(request) -> str | None:
    # DRF authenticates inside the view and sets the user on its own Request, which it
    # copies back to the Django request; session users are set by AuthenticationMiddleware.
    user = getattr(request, "user", None)
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    return user.get_username()


class RequestBudgetMiddleware:
    """One time budget per request for the Job deletions it does after commit, however many
    workflows it runs (see utilities.budget)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        with request_scope():
            return self.get_response(request)
