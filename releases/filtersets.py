import django_filters

from applications.choices import Environment
from applications.models import Application
from utilities.api.filters import IdFilter, StrictBooleanFilter

from .choices import BatchStatus, ReleaseStatus
from .models import Batch, ReleaseApp
from .overview import applications_behind


class BatchFilterSet(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=BatchStatus.choices)

    class Meta:
        model = Batch
        fields = ["status"]


class ReleaseFilterSet(django_filters.FilterSet):
    batch = IdFilter(field_name="batch_id", help_text="Batch id.")
    app = django_filters.CharFilter(field_name="application__name", help_text="Application name.")
    status = django_filters.MultipleChoiceFilter(choices=ReleaseStatus.choices)
    has_new_tag = StrictBooleanFilter(
        help_text="Only releases whose app has a newer tag than the chosen one (or only not)."
    )

    class Meta:
        model = ReleaseApp
        fields = ["batch", "app", "status", "has_new_tag"]


class ApplicationFilterSet(django_filters.FilterSet):
    """Filters of the applications overview; its queryset comes from `applications_overview`."""

    name = django_filters.CharFilter(help_text="Application name.")
    behind = django_filters.ChoiceFilter(
        choices=Environment.choices,
        method="filter_behind",
        help_text="Only apps whose pre (or prod) runs a tag other than their latest build's.",
    )

    class Meta:
        model = Application
        fields = ["name", "behind"]

    def filter_behind(self, queryset, name, value):
        return applications_behind(queryset, environment=value)
