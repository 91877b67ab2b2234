from django.db import models
from django.utils.translation import gettext_lazy as _


class BatchStatus(models.TextChoices):
    PRE_WAITING = "pre_waiting", _("Waiting for pre")
    PRE_DEPLOYING = "pre_deploying", _("Deploying to pre")
    PROD_WAITING = "prod_waiting", _("Waiting for prod")
    PROD_DEPLOYING = "prod_deploying", _("Deploying to prod")
    COMPLETED = "completed", _("Completed")
    CANCELLED = "cancelled", _("Cancelled")


OPEN_BATCH_STATUSES = [
    s for s in BatchStatus if s not in (BatchStatus.COMPLETED, BatchStatus.CANCELLED)
]
WAITING_BATCH_STATUSES = [BatchStatus.PRE_WAITING, BatchStatus.PROD_WAITING]


class ReleaseStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    PRE_DEPLOYING = "pre_deploying", _("Deploying to pre")
    PRE_DEPLOYED = "pre_deployed", _("Deployed to pre")
    PRE_FAILED = "pre_failed", _("Pre failed")
    PROD_DEPLOYING = "prod_deploying", _("Deploying to prod")
    PROD_DEPLOYED = "prod_deployed", _("Deployed to prod")
    PROD_FAILED = "prod_failed", _("Prod failed")


class HistoryAction(models.TextChoices):
    """What a history entry records (`releases.history`)."""

    BATCH_CREATED = "batch_created", _("Batch created")
    VERSION_SWITCHED = "version_switched", _("Version switched")
    STAGE_STARTED = "stage_started", _("Stage started")
    BATCH_CANCELLED = "batch_cancelled", _("Batch cancelled")
    STAGE_FINISHED = "stage_finished", _("Stage finished")
    STAGE_FAILED = "stage_failed", _("Stage failed")
    BATCH_COMPLETED = "batch_completed", _("Batch completed")
    HOLD_PLACED = "hold_placed", _("Hold placed")
    HOLD_LIFTED = "hold_lifted", _("Hold lifted")
    OTHER = "other", _("Other")
