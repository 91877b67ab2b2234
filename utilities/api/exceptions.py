"""One error format for the whole API: `{"code", "detail", "fields"}`, always JSON.

Domain errors carry their own code and status; DRF's exceptions keep theirs, except that every
malformed request is `invalid`. Django's error views are replaced for `/api/` paths too, so a
client of the API never receives an HTML error page.
"""

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import Http404, JsonResponse
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions
from rest_framework.views import exception_handler

from utilities.errors import ERRORS, REFUSALS, refusal

API_PREFIX = "/api/"


class PayloadTooLarge(exceptions.APIException):
    status_code = 413
    default_code = "too_large"
    default_detail = "The request body is too large."


def error_response(
    status: int, code: str, detail, fields: dict | None = None, headers: dict | None = None
) -> JsonResponse:
    # A plain JsonResponse: DRF would render errors as HTML for a browser's Accept header.
    return JsonResponse(
        {"code": code, "detail": str(detail), "fields": fields or {}},
        status=status,
        headers=headers,
    )


def api_exception_handler(exc, context):
    if isinstance(exc, REFUSALS):
        refused = refusal(exc)
        headers = None
        if refused.code == "busy":
            headers = {"Retry-After": str(settings.WORKFLOW_BUSY_RETRY_AFTER_SECONDS)}
        return error_response(refused.status, refused.code, refused.detail, refused.fields, headers)
    if isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()

    response = exception_handler(exc, context)  # sets WWW-Authenticate, Retry-After, rollback
    if response is None:
        return None  # a server error: Django logs it and handler500 answers
    headers = {k: v for k, v in response.items() if k in ("WWW-Authenticate", "Retry-After")}
    if isinstance(exc, exceptions.ValidationError):
        fields = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        return error_response(400, "invalid", ERRORS["invalid"][1], fields, headers)
    if isinstance(exc, exceptions.ParseError):
        return error_response(400, "invalid", exc.detail, headers=headers)
    return error_response(exc.status_code, exc.default_code, exc.detail, headers=headers)


def _is_api(request) -> bool:
    return request.path.startswith(API_PREFIX)


def bad_request(request, exception, template_name="400.html"):
    if _is_api(request):
        if isinstance(exception, RequestDataTooBig):
            return error_response(413, "too_large", PayloadTooLarge.default_detail)
        return error_response(400, "invalid", ERRORS["invalid"][1])
    return defaults.bad_request(request, exception, template_name)


def permission_denied(request, exception, template_name="403.html"):
    if _is_api(request):
        return error_response(403, "permission_denied", ERRORS["permission_denied"][1])
    return defaults.permission_denied(request, exception, template_name)


def page_not_found(request, exception, template_name="404.html"):
    if _is_api(request):
        return error_response(404, "not_found", ERRORS["not_found"][1])
    return defaults.page_not_found(request, exception, template_name)


@csrf_exempt
def api_not_found(request, *args, **kwargs):
    """Every unmatched path under /api/, even with DEBUG on (when handler404 is not used)."""
    return error_response(
        404,
        "not_found",
        "No such endpoint. Collections and objects end in a slash (/api/v1/batches/, "
        "/api/v1/batches/1/), actions do not (/api/v1/batches/1/cancel); see /api/docs/.",
    )


def server_error(request, template_name="500.html"):
    if _is_api(request):
        return error_response(500, "server_error", "The server failed; the error is logged.")
    return defaults.server_error(request, template_name)
