from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ReleasesConfig(AppConfig):
    name = "releases"
    verbose_name = _("Releases")

    def ready(self):
        from utilities.metrics import scrape_time_registry

        from . import metrics  # registers the app's metric families

        scrape_time_registry.register(metrics.ActiveHoldsCollector())
