"""Serializer fields that take JSON as it is typed: what the OpenAPI schema says, nothing looser.

DRF's own fields coerce ("11" and 11.0 pass as an integer, 5 as a string, "  a " is trimmed),
so a request the schema calls malformed would be accepted, and a client could never tell.
"""

from rest_framework import serializers

from utilities.validators import APP_NAME_PATTERN, IMAGE_TAG_PATTERN, PatternValidator

NOT_A_TAG = "Not a valid OCI image tag."
NOT_AN_APP_NAME = "Not a valid application name."


class StrictIntegerField(serializers.IntegerField):
    """A JSON number without a fraction: not "11", not 11.0, not true."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictCharField(serializers.CharField):
    """A JSON string, taken as sent (no trimming, no number turned into text)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        try:
            data.encode("utf-8")
        except UnicodeEncodeError:
            # A lone surrogate ("\ud800" in JSON) cannot be stored.
            raise serializers.ValidationError("Must be valid Unicode text.") from None
        return super().to_internal_value(data)


class ImageTagField(StrictCharField):
    """An image tag in a request body: the OCI tag grammar the database enforces."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 128)
        kwargs.setdefault("validators", [PatternValidator(IMAGE_TAG_PATTERN, NOT_A_TAG)])
        super().__init__(**kwargs)


class AppNameField(StrictCharField):
    """An application's name in a request body (a Kubernetes label value)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 63)
        kwargs.setdefault("validators", [PatternValidator(APP_NAME_PATTERN, NOT_AN_APP_NAME)])
        super().__init__(**kwargs)
