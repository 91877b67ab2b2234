"""Every API route, under /api/: version 1 of the API, its OpenAPI schema and Swagger UI."""

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from utilities.api.exceptions import api_not_found

urlpatterns = [
    path("v1/", include("releases.api.urls")),
    path("v1/", include("deployments.api.urls")),
    path("v1/", include("builds.api.urls")),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    # Last: a JSON 404 for anything else, rather than a redirect or an HTML page.
    re_path(r"", api_not_found),
]
