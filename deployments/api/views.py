from rest_framework import viewsets

from deployments.filtersets import DeploymentFilterSet
from deployments.models import Deployment

from .serializers import DeploymentSerializer


class DeploymentViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Deployment.objects.select_related("created_by")
    serializer_class = DeploymentSerializer
    filterset_class = DeploymentFilterSet
    lookup_value_regex = r"\d+"
