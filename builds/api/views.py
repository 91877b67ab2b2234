from django.db.models import Prefetch
from rest_framework import viewsets

from builds.filtersets import BuildFilterSet
from builds.models import Build, BuildImage
from utilities.api.schema import read_views_schema

from .examples import BUILD
from .serializers import BuildSerializer


@read_views_schema(
    noun="build",
    plural="builds",
    permission="builds.view_build",
    serializer=BuildSerializer,
    example=BUILD,
)
class BuildViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Build.objects.prefetch_related(
        Prefetch("images", queryset=BuildImage.objects.select_related("application"))
    )
    serializer_class = BuildSerializer
    filterset_class = BuildFilterSet
    lookup_value_regex = r"\d+"
