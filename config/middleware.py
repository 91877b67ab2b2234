"""Request logging and a request's time budget for side work.

django-structlog's RequestMiddleware binds the request id into every log line of the request
(structlog's contextvars) and writes one line when it ends. These receivers make the id ours —
a caller's X-Request-ID is kept only if it looks like an id, so nobody forges log lines through
it — echo it back, and shape that line: method and path (never the query string: it may carry
secrets), status, duration and user.
"""

import re
import time
import uuid

import structlog
from django.dispatch import receiver
from django_structlog import signals

from utilities.budget import request_scope

REQUEST_ID_HEADER = "X-Request-ID"
_VALID_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


@receiver(signals.bind_extra_request_metadata, dispatch_uid="releasetrain-request-id")
def _bind_request_id(request, logger, log_kwargs, **kwargs):
    given = request.headers.get(REQUEST_ID_HEADER, "")
    request.request_id = given if _VALID_ID.fullmatch(given) else uuid.uuid4().hex
    request.started = time.monotonic()
    structlog.contextvars.bind_contextvars(request_id=request.request_id)


@receiver(signals.bind_extra_request_finished_metadata, dispatch_uid="releasetrain-request-end")
def _request_line(request, logger, response, log_kwargs, **kwargs):
    response[REQUEST_ID_HEADER] = request.request_id
    log_kwargs.clear()
    log_kwargs.update(
        method=request.method,
        path=request.path,
        status=response.status_code,
        duration_ms=round((time.monotonic() - request.started) * 1000, 1),
        user=_username(request),
    )


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
