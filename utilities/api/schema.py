"""Shared pieces of the OpenAPI description: the schema generator, the error body and the read
endpoints."""

import re

from drf_spectacular import openapi
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import serializers


class AutoSchema(openapi.AutoSchema):
    """drf-spectacular's, with corrections so the schema says exactly what is accepted."""

    def _resolve_path_parameters(self, variables):
        # Object ids are routed by `\d+`; say integer, so clients type them as ids.
        parameters = super()._resolve_path_parameters(variables)
        for parameter in parameters:
            if parameter["schema"].get("pattern") == r"^\d+$":
                parameter["schema"] = {"type": "integer", "minimum": 1}
        return parameters

    def _get_response_bodies(self, direction="response"):
        # Any operation answers 406 to an Accept header it cannot serve (always with JSON).
        responses = super()._get_response_bodies(direction)
        if direction == "response" and "406" not in responses:
            responses["406"] = self._get_response_for_code(
                OpenApiResponse(ErrorSerializer, description=_ERROR_TEXT[406]), "406"
            )
        return responses

    def _map_serializer_field(self, field, direction, bypass_extensions=False):
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        # A nested list's own limits (`many=True, allow_empty=False, max_length=...`).
        if isinstance(field, serializers.ListSerializer) and schema.get("type") == "array":
            if not field.allow_empty:
                schema["minItems"] = 1
            if field.max_length is not None:
                schema["maxItems"] = field.max_length
        return schema

    def _insert_field_validators(self, field, schema):
        super()._insert_field_validators(field, schema)
        # A field that may be blank gets `oneOf: [its pattern, maxLength 0]`; where the pattern
        # admits "" already, "" would match both branches and so be invalid: keep the pattern.
        one_of = schema.get("oneOf")
        if (
            one_of
            and len(one_of) == 2
            and one_of[1] == {"type": "string", "maxLength": 0}
            and re.fullmatch(one_of[0].get("pattern", "^$"), "")
        ):
            schema.update(schema.pop("oneOf")[0])


class ErrorSerializer(serializers.Serializer):
    """The error body everywhere under /api/ (see utilities.api.exceptions)."""

    code = serializers.CharField(help_text="Stable machine-readable code, e.g. batch_not_waiting.")
    detail = serializers.CharField(help_text="Human-readable explanation.")
    fields = serializers.DictField(
        help_text="Field name -> list of problems; empty when the error is not about fields."
    )


_ERROR_TEXT = {
    400: "`invalid`: the request breaks this schema (`fields` says where). Or a rule about "
    "the data that a schema cannot state: `unknown_app`, `unknown_tag`, `no_successful_build`, "
    "`duplicate_app` (one app listed twice).",
    401: "No credentials, or bad ones (`not_authenticated`, `authentication_failed`).",
    403: "Authenticated, but without the permission (`permission_denied`).",
    404: "No such object (`not_found`).",
    415: "The body is not JSON (`unsupported_media_type`): the API accepts only "
    "`application/json`.",
    406: "The Accept header names no type the API serves (`not_acceptable`); errors are "
    "JSON whatever it asks for.",
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
            responses={
                200: serializer(many=True),
                **error_responses(400, 401, 403),
                404: OpenApiResponse(
                    ErrorSerializer, description='No such page (`not_found`, "Invalid page.").'
                ),
            },
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
