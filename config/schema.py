"""Shared pieces of the OpenAPI description: the error body and the read endpoints."""

from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import serializers


class ErrorSerializer(serializers.Serializer):
    """The error body everywhere under /api/ (see config.exceptions)."""

    code = serializers.CharField(help_text="Stable machine-readable code, e.g. batch_not_waiting.")
    detail = serializers.CharField(help_text="Human-readable explanation.")
    fields = serializers.DictField(
        help_text="Field name -> list of problems; empty when the error is not about fields."
    )


_ERROR_TEXT = {
    400: "Invalid input (`invalid`, or a domain code such as `unknown_tag`).",
    401: "No credentials, or bad ones (`not_authenticated`, `authentication_failed`).",
    403: "Authenticated, but without the permission (`permission_denied`).",
    404: "No such object (`not_found`).",
    409: "Not possible in the current state; the code says why.",
    413: "Body too large (`too_large`).",
    503: "The database kept aborting the transaction for concurrent changes, even after a few "
    "retries (`busy`, with `Retry-After`); nothing was written, send it again.",
}


def error_responses(*statuses: int) -> dict:
    """`extend_schema(responses=...)` entries for these error statuses."""
    return {
        status: OpenApiResponse(ErrorSerializer, description=_ERROR_TEXT[status])
        for status in statuses
    }


def read_views_schema(
    *,
    noun: str,
    plural: str,
    permission: str,
    serializer,
    example: dict,
    detail_serializer=None,
    detail_example: dict | None = None,
):
    """`list` and `retrieve` of a viewset: summaries, the permission, errors and an example."""
    needs = f"Needs `{permission}`."
    return extend_schema_view(
        list=extend_schema(
            summary=f"List {plural}",
            description=f"Paginated (`?page=`). {needs}",
            responses={200: serializer(many=True), **error_responses(400, 401, 403)},
            examples=[OpenApiExample(plural.capitalize(), value=example, response_only=True)],
        ),
        retrieve=extend_schema(
            summary=f"One {noun}",
            description=needs,
            responses={
                200: detail_serializer or serializer,
                **error_responses(401, 403, 404),
            },
            examples=[
                OpenApiExample(
                    noun.capitalize(), value=detail_example or example, response_only=True
                )
            ],
        ),
    )
