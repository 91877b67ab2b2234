from django.db import models
from django.utils.translation import gettext_lazy as _


class DeploymentStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    RUNNING = "running", _("Running")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")
    CANCELLED = "cancelled", _("Cancelled")


UNFINISHED_DEPLOYMENT_STATUSES = [DeploymentStatus.PENDING, DeploymentStatus.RUNNING]
