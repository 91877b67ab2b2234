from django.db import models
from django.utils.translation import gettext_lazy as _


class Environment(models.TextChoices):
    PRE = "pre", _("Pre")
    PROD = "prod", _("Prod")
