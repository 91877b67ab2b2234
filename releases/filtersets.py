import django_filters

from config.filters import IdFilter, StrictBooleanFilter

from .choices import BatchStatus, ReleaseStatus
from .models import Batch, ReleaseApp


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
