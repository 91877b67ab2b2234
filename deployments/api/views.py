from rest_framework import viewsets

from deployments.filtersets import DeploymentFilterSet
from deployments.models import Deployment
from utilities.api.schema import read_views_schema

from .examples import DEPLOYMENT
from .serializers import DeploymentSerializer


@read_views_schema(
    noun="deployment",
    plural="deployments",
    permission="deployments.view_deployment",
    serializer=DeploymentSerializer,
    example=DEPLOYMENT,
)
class DeploymentViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Deployment.objects.select_related("created_by")
    serializer_class = DeploymentSerializer
    filterset_class = DeploymentFilterSet
    lookup_value_regex = r"\d+"
