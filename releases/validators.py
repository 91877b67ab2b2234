from django.core.validators import RegexValidator
from django.utils.translation import gettext_lazy as _

# The OCI distribution spec's tag grammar; the database enforces the same pattern.
IMAGE_TAG_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"
# Application names become Kubernetes label values, so they follow that grammar (≤ 63 chars).
APP_NAME_PATTERN = r"^[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$"

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
