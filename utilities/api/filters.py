import django_filters
from django import forms
from django.core.exceptions import ValidationError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field


class IdField(forms.IntegerField):
    """A whole number. Absent: no filter; present but empty (`?batch=`): an error, as the
    schema says an integer."""

    def to_python(self, value):
        if value == "":
            raise ValidationError("Must be a whole number.", code="invalid")
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
            raise ValidationError("Must be true or false.", code="invalid") from None


class StrictBooleanFilter(django_filters.BooleanFilter):
    """`?has_new_tag=banana` is a 400, as `?batch=abc` is; django-filter's own would ignore it."""

    field_class = StrictBooleanField
