import django_filters

from applications.choices import Environment
from applications.models import Application
from utilities.api.filters import (
    AppNameFilter,
    IdFilter,
    StrictBooleanFilter,
    StrictChoiceFilter,
)

from .choices import BatchStatus, ReleaseStatus
from .models import Batch, Hold, ReleaseApp
from .overview import applications_behind
from .selectors import releases_new_tag_filter


class BatchFilterSet(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=BatchStatus.choices)

    class Meta:
        model = Batch
        fields = ["status"]


class ReleaseFilterSet(django_filters.FilterSet):
    batch = IdFilter(field_name="batch_id", help_text="Batch id.")
    app = AppNameFilter(field_name="application__name", help_text="Application name.")
    status = django_filters.MultipleChoiceFilter(choices=ReleaseStatus.choices)
    has_new_tag = StrictBooleanFilter(
        method="filter_has_new_tag",
        help_text="Only releases of open batches whose app has a newer tag than the chosen "
        "one (false: all the others, closed batches included).",
    )

    class Meta:
        model = ReleaseApp
        fields = ["batch", "app", "status", "has_new_tag"]

    def filter_has_new_tag(self, queryset, name, value):
        return releases_new_tag_filter(queryset, has_new_tag=value)


class ApplicationFilterSet(django_filters.FilterSet):
    """Filters of the applications overview; its queryset comes from `applications_overview`."""

    name = AppNameFilter(help_text="Application name.")
    behind = StrictChoiceFilter(
        choices=Environment.choices,
        method="filter_behind",
        help_text="Only apps whose pre (or prod) runs a tag other than their latest build's.",
    )

    class Meta:
        model = Application
        fields = ["name", "behind"]

    def filter_behind(self, queryset, name, value):
        return applications_behind(queryset, environment=value)


class HoldFilterSet(django_filters.FilterSet):
    active = StrictBooleanFilter(
        method="filter_active", help_text="Only holds active now (or only those that are not)."
    )
    environment = StrictChoiceFilter(
        choices=Environment.choices, help_text="Only holds of this environment."
    )
    application = AppNameFilter(
        field_name="application__name", help_text="Only holds of this application (by name)."
    )
    batch = IdFilter(field_name="batch_id", help_text="Only holds of this batch (by id).")

    class Meta:
        model = Hold
        fields = ["active", "environment", "application", "batch"]

    def filter_active(self, queryset, name, value):
        active = Hold.objects.active().values("pk")
        return queryset.filter(pk__in=active) if value else queryset.exclude(pk__in=active)
