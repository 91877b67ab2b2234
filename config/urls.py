from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from . import health

urlpatterns = [
    # The admin is where people work; the root has nothing else to show.
    path("", RedirectView.as_view(pattern_name="admin:index"), name="home"),
    path("admin/", admin.site.urls),
    path("api/", include("config.api_urls")),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", health.metrics, name="metrics"),
]

# JSON under /api/, Django's pages elsewhere.
handler400 = "utilities.api.exceptions.bad_request"
handler403 = "utilities.api.exceptions.permission_denied"
handler404 = "utilities.api.exceptions.page_not_found"
handler500 = "utilities.api.exceptions.server_error"
