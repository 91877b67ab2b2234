import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from utilities.validators import (
    APP_NAME_PATTERN,
    PRINTABLE_TEXT_PATTERN,
    PatternValidator,
    validate_app_name,
)


class IdField(forms.IntegerField):
    """A whole number. Absent: no filter; present but empty (`?batch=`): an error, as the
    schema says an integer."""

    def to_python(self, value):
        if value == "":
            raise ValidationError(_("Must be a whole number."), code="invalid")
        return super().to_python(value)


@extend_schema_field(OpenApiTypes.INT)
class IdFilter(django_filters.NumberFilter):
    """An object id: a whole number, so `?batch=1.5` is a 400 rather than a silent no-match."""

    field_class = IdField


class StrictBooleanField(forms.Field):
    """`true`/`false` (or `1`/`0`, any case); anything else, empty included, is an error,
    not "no filter"."""

    VALUES = {"true": True, "1": True, "false": False, "0": False}

    def to_python(self, value):
        if value is None:
            return None
        try:
            return self.VALUES[str(value).strip().lower()]
        except KeyError:
            raise ValidationError(_("Must be true or false."), code="invalid") from None


class StrictBooleanFilter(django_filters.BooleanFilter):
    """`?has_new_tag=banana` is a 400, as `?batch=abc` is; django-filter's own would ignore it."""

    field_class = StrictBooleanField


class PatternField(forms.CharField):
    """Text matching the schema's `pattern`, taken as sent (no trimming). Absent: no filter;
    present but not matching (empty included): an error, as the schema says."""

    pattern = ""
    message = ""

    def __init__(self, **kwargs):
        kwargs["strip"] = False
        super().__init__(**kwargs)
        self.validators.append(PatternValidator(self.pattern, self.message))

    def to_python(self, value):
        if value == "":
            raise ValidationError(self.message, code="invalid")
        return super().to_python(value)


class AppNameField(PatternField):
    pattern = APP_NAME_PATTERN
    message = validate_app_name.message


@extend_schema_field({"type": "string", "pattern": APP_NAME_PATTERN})
class AppNameFilter(django_filters.CharFilter):
    """An application name, in the grammar names are registered in (`?name=%00` is a 400 the
    schema announces)."""

    field_class = AppNameField


class PrintableTextField(forms.CharField):
    """Text without control characters; empty is no filter."""

    def __init__(self, **kwargs):
        kwargs["strip"] = False
        super().__init__(**kwargs)
        self.validators.append(
            PatternValidator(PRINTABLE_TEXT_PATTERN, _("Must not contain control characters."))
        )


@extend_schema_field({"type": "string", "pattern": PRINTABLE_TEXT_PATTERN})
class PrintableTextFilter(django_filters.CharFilter):
    field_class = PrintableTextField


class StrictChoiceField(django_filters.fields.ChoiceField):
    """One of the choices. Absent: no filter; present but empty (`?behind=`): an error, as the
    schema's enum says."""

    def to_python(self, value):
        if value == "":
            raise ValidationError(
                self.error_messages["invalid_choice"], code="invalid_choice", params={"value": ""}
            )
        return super().to_python(value)


class StrictChoiceFilter(django_filters.ChoiceFilter):
    field_class = StrictChoiceField
