from django.db import models
from django.utils.translation import gettext_lazy as _


class BuildStatus(models.TextChoices):
    """Drone's build statuses."""

    PENDING = "pending", _("Pending")
    BLOCKED = "blocked", _("Blocked")
    RUNNING = "running", _("Running")
    SUCCESS = "success", _("Success")
    FAILURE = "failure", _("Failure")
    ERROR = "error", _("Error")
    KILLED = "killed", _("Killed")
    SKIPPED = "skipped", _("Skipped")
    DECLINED = "declined", _("Declined")


# How far a build has progressed; a notification only ever moves a build forward. Every final
# status shares the top rank, so the first final status a build reaches is the one it keeps.
STATUS_RANK = {
    BuildStatus.PENDING: 0,
    BuildStatus.BLOCKED: 1,
    BuildStatus.RUNNING: 2,
    BuildStatus.SUCCESS: 3,
    BuildStatus.FAILURE: 3,
    BuildStatus.ERROR: 3,
    BuildStatus.KILLED: 3,
    BuildStatus.SKIPPED: 3,
    BuildStatus.DECLINED: 3,
}
