from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DeploymentsConfig(AppConfig):
    name = "deployments"
    verbose_name = _("Deployments")

    def ready(self):
        from . import metrics  # noqa: F401  (registers the app's metric families)
