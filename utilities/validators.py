import re

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.utils.translation import gettext_lazy as _

# The OCI distribution spec's tag grammar; the database enforces the same pattern.
IMAGE_TAG_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"
# Application names become Kubernetes label values, so they follow that grammar (≤ 63 chars).
APP_NAME_PATTERN = r"^[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$"
# Text fields of API bodies: no control characters (C0, DEL, C1) and no line or paragraph
# separators, which would break log lines, and no byte-order mark. Written for both Python and ECMA-262 (the OpenAPI
# schema publishes the same pattern).
_CONTROL = "\\u0000-\\u001f\\u007f-\\u009f\\u2028\\u2029\\ufeff"
PRINTABLE_TEXT_PATTERN = rf"^[^{_CONTROL}]*$"
# Text with at least one visible character: a name.
NAME_TEXT_PATTERN = rf"^[^{_CONTROL}]*[^\s{_CONTROL}][^{_CONTROL}]*$"
# An http(s) URL with a host, or nothing (a Drone server is often "http://drone:8080").
HTTP_URL_PATTERN = rf"^(https?://[^\s/?#{_CONTROL}]+([/?#][^\s{_CONTROL}]*)?)?$"


class PatternValidator(RegexValidator):
    """The whole value must match `pattern`, read as ECMA-262 reads it in the OpenAPI schema
    (drf-spectacular publishes `regex.pattern`): `$` is the very end, never before a newline."""

    def __init__(self, pattern: str, message=None, code: str = "invalid"):
        super().__init__(pattern, message, code)
        self._fullmatch = re.compile(pattern).fullmatch  # not the lazy `regex`: a hot path

    def __call__(self, value) -> None:
        if not isinstance(value, str) or not self._fullmatch(value):
            raise ValidationError(self.message, code=self.code, params={"value": value})


validate_image_tag = RegexValidator(
    IMAGE_TAG_PATTERN,
    _("Not a valid image tag: 1-128 of A-Z a-z 0-9 _ . -, not starting with . or -."),
    code="invalid_tag",
)
validate_app_name = RegexValidator(
    APP_NAME_PATTERN,
    _("Not a valid application name: 1-63 of A-Z a-z 0-9 _ . -, starting and ending alphanumeric."),
    code="invalid_app_name",
)
