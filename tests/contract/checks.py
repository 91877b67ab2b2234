"""Check an API response against the OpenAPI schema, strictly: a `null` where the schema does not
say `nullable` fails, as does a status code the operation does not document.

`tests/conftest.py` runs every response of the suite's API clients through it; the generated
client's test does the same for what travels over HTTP.
"""

import json
import re
from datetime import datetime
from functools import cache
from urllib.parse import urlsplit

import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

API_PREFIX = "/api/v1/"

_FORMATS = jsonschema.FormatChecker(formats=())


@_FORMATS.checks("date-time", raises=ValueError)
def _is_datetime(value) -> bool:
    return not isinstance(value, str) or bool(datetime.fromisoformat(value).tzinfo)


@_FORMATS.checks("uri", raises=ValueError)
def _is_uri(value) -> bool:
    return not isinstance(value, str) or bool(urlsplit(value).scheme)


def _to_json_schema(node):
    """OpenAPI 3.0 → JSON Schema: `nullable: true` becomes "or null"; nothing else is null."""
    if isinstance(node, list):
        return [_to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _to_json_schema(value) for key, value in node.items()}
    if node.pop("nullable", False):
        return {"anyOf": [node, {"type": "null"}]}
    return node


class Contract:
    def __init__(self, schema: dict):
        components = _to_json_schema(schema.get("components", {}))
        resource = Resource(contents={"components": components}, specification=DRAFT202012)
        self._registry = Registry().with_resource("urn:schema", resource)
        self._operations = []
        for path, operations in schema["paths"].items():
            pattern = re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$")
            for method, operation in operations.items():
                self._operations.append((method.upper(), pattern, path, operation))

    def problems(self, method: str, path: str, status: int, body) -> list[str]:
        """What is wrong with this response; [] when it is what the schema promises."""
        found = next(
            (
                (template, operation)
                for op_method, pattern, template, operation in self._operations
                if op_method == method.upper() and pattern.match(path)
            ),
            None,
        )
        if found is None:
            return []  # not an operation of the schema (an unknown path answers the JSON 404)
        template, operation = found
        name = f"{method.upper()} {template} -> {status}"
        response = operation["responses"].get(str(status)) or operation["responses"].get("default")
        if response is None:
            return [f"{name}: status {status} is not documented"]
        media = (response.get("content") or {}).get("application/json")
        if media is None:
            return []
        schema = _refs_to_urn(_to_json_schema(media["schema"]))
        validator = jsonschema.Draft202012Validator(
            schema, registry=self._registry, format_checker=_FORMATS
        )
        return [
            f"{name}: {'/'.join(map(str, error.absolute_path))}: {error.message}"
            for error in validator.iter_errors(body)
        ]


def _refs_to_urn(node):
    if isinstance(node, list):
        return [_refs_to_urn(item) for item in node]
    if isinstance(node, dict):
        return {
            key: (
                value.replace("#/", "urn:schema#/", 1)
                if key == "$ref" and value.startswith("#/")
                else _refs_to_urn(value)
            )
            for key, value in node.items()
        }
    return node


@cache
def contract() -> Contract:
    from drf_spectacular.generators import SchemaGenerator

    return Contract(SchemaGenerator().get_schema(request=None, public=True))


def check_response(method: str, path: str, status: int, content_type: str, data: bytes):
    """Raise AssertionError if this API response breaks the schema."""
    if not path.startswith(API_PREFIX) or "json" not in (content_type or ""):
        return
    problems = contract().problems(method, path, status, json.loads(data) if data else None)
    assert not problems, "The response breaks the OpenAPI schema:\n" + "\n".join(problems)
