"""Every API route, under /api/: version 1 of the API, its OpenAPI schema and Swagger UI."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

urlpatterns = [
    path("v1/", include("releases.api.urls")),
    path("v1/", include("deployments.api.urls")),
    path("v1/", include("builds.api.urls")),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
]
