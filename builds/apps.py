from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BuildsConfig(AppConfig):
    name = "builds"
    verbose_name = _("Builds")

    def ready(self):
        from . import metrics  # noqa: F401  (registers the app's metric families)
