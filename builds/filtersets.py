import django_filters

from utilities.api.filters import AppNameFilter, PrintableTextFilter

from .choices import BuildStatus
from .models import Build


class BuildFilterSet(django_filters.FilterSet):
    repo = PrintableTextFilter(help_text="Repository, e.g. org/repo.")
    # A build has at most one image per application, so this join never duplicates a build.
    app = AppNameFilter(
        field_name="images__application__name", help_text="Builds that produced this app."
    )
    status = django_filters.MultipleChoiceFilter(choices=BuildStatus.choices)

    class Meta:
        model = Build
        fields = ["repo", "app", "status"]
