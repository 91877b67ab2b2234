"""The conditions for switching a version, shared by the switch itself and the status view.

Pure functions over facts the caller has read, so the answer the status endpoint and the admin
give ("can I switch?") is computed by the very code that enforces it, in the same words.
"""

import datetime
from dataclasses import dataclass

from django.utils.translation import gettext

from applications.permissions import (
    DEPLOY_BATCH,
    SWITCH_VERSION,
    may,
    missing_for,
    permission_needed,
)
from utilities.errors import ERRORS, DomainError

from .choices import OPEN_BATCH_STATUSES, WAITING_BATCH_STATUSES, BatchStatus

ADD_BATCH_PERMISSION = "releases.add_batch"


@dataclass(frozen=True)
class Blocker:
    code: str
    # Human words in the active language; the code's default message when not given.
    message: str = ""

    @property
    def detail(self) -> str:
        return self.message or str(ERRORS[self.code][1])

    def error(self) -> DomainError:
        return DomainError(self.code, self.detail, localized=True)


def batch_status_name(status: str) -> str:
    """A batch status as people read it in a sentence: "deploying to pre", not pre_deploying."""
    label = str(BatchStatus(status).label) if status in BatchStatus.values else status
    return label[:1].lower() + label[1:]


def permission_blocker(user, application) -> Blocker | None:
    """The switch's permission rule: switch_version, globally or for the release's application."""
    if not may(user, SWITCH_VERSION, application):
        return Blocker("permission_denied", permission_needed(SWITCH_VERSION, [application]))
    return None


def deploy_blocker(user, applications) -> Blocker | None:
    """A stage start or a cancel: deploy_batch globally, or for every application of the batch.

    `applications` may be a lazy queryset: a global holder never reads it."""
    if may(user, DEPLOY_BATCH):
        return None
    applications = list(applications)
    missing = missing_for(user, DEPLOY_BATCH, applications)
    # An empty batch is no team's: only the global grant may act on it.
    if missing or not applications:
        return Blocker("permission_denied", permission_needed(DEPLOY_BATCH, missing))
    return None


def batch_closed_blocker(batch_status: str) -> Blocker | None:
    """The "batch open" rule: a completed or cancelled batch never changes again."""
    if batch_status not in OPEN_BATCH_STATUSES:
        return Blocker(
            "batch_closed",
            gettext("The batch is %(status)s; it can no longer change.")
            % {"status": batch_status_name(batch_status)},
        )
    return None


def batch_waiting_blocker(batch_status: str) -> Blocker | None:
    """The "batch waiting" rule, for an open batch: no switch while a stage deploys."""
    if batch_status not in WAITING_BATCH_STATUSES:
        return Blocker(
            "batch_not_waiting",
            gettext("The batch is %(status)s; switch once its stage has finished.")
            % {"status": batch_status_name(batch_status)},
        )
    return None


def hold_detail(hold) -> str:
    """What a hold stops, who placed it, until when and why, in one sentence:
    "Prod is on hold until 2026-12-24 18:00 UTC: holiday freeze (alice)." Reads the hold's
    application, batch and created_by."""
    if hold.application_id is not None:
        subject = hold.application.name
    elif hold.batch_id is not None:
        subject = gettext("Batch %(name)s") % {"name": hold.batch.name}
    else:
        subject = "" if hold.environment else gettext("Everything")
    if hold.environment:
        environment = str(hold.get_environment_display())
        subject = (
            gettext("%(subject)s in %(environment)s")
            % {"subject": subject, "environment": environment.lower()}
            if subject
            else environment
        )
    words = {
        "subject": subject,
        "reason": hold.reason,
        "user": hold.created_by.username if hold.created_by else gettext("someone"),
    }
    if hold.ends_at is None:
        return gettext("%(subject)s is on hold until lifted: %(reason)s (%(user)s).") % words
    until = hold.ends_at.astimezone(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return gettext("%(subject)s is on hold until %(until)s: %(reason)s (%(user)s).") % {
        **words,
        "until": until,
    }


def hold_blocker(holds: list) -> Blocker | None:
    """Check 6a of the switch, and the stage start's refusal: the first of the holds in the way."""
    if holds:
        return Blocker("on_hold", hold_detail(holds[0]))
    return None


def deployment_blocker(deployment_in_progress: bool) -> Blocker | None:
    """The "nothing deploying" rule: no switch while one of the release's Jobs may run."""
    if deployment_in_progress:
        return Blocker("deployment_in_progress")
    return None


def switch_blockers(
    *,
    user,
    application,
    batch_status: str,
    deployment_in_progress: bool,
    holds: list | tuple = (),
) -> list[Blocker]:
    """Why a switch to the latest tag would be refused now, in the switch's own check order.

    A closed batch is the only thing worth saying about it: nothing else can unblock it.
    """
    if closed := batch_closed_blocker(batch_status):
        return [b for b in (permission_blocker(user, application), closed) if b is not None]
    found = [
        permission_blocker(user, application),
        batch_waiting_blocker(batch_status),
        hold_blocker(holds),
        deployment_blocker(deployment_in_progress),
    ]
    return [b for b in found if b is not None]
