import django_filters

from applications.choices import Environment
from utilities.api.filters import IdFilter, StrictBooleanFilter

from .choices import DeploymentStatus
from .models import Deployment


class DeploymentFilterSet(django_filters.FilterSet):
    release = IdFilter(field_name="release_app_id", help_text="Release id.")
    environment = django_filters.ChoiceFilter(choices=Environment.choices)
    status = django_filters.MultipleChoiceFilter(choices=DeploymentStatus.choices)
    current = StrictBooleanFilter(
        field_name="superseded_at",
        lookup_expr="isnull",
        help_text="true: only deployments not superseded; false: only superseded ones.",
    )

    class Meta:
        model = Deployment
        fields = ["release", "environment", "status", "current"]
