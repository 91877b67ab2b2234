"""Placing and lifting holds: what stops the line, and what lets it go again."""

import datetime
import logging
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext

from applications.choices import Environment
from applications.models import Application
from deployments.wakeup import reconcilers_wake
from utilities.errors import DomainError
from utilities.transactions import retry_on_conflict

from .. import locks, rules
from ..choices import OPEN_BATCH_STATUSES
from ..history import history_hold, note_clean
from ..models import Batch, Hold
from ..selectors import holds_list

logger = logging.getLogger(__name__)

ADD_HOLD_PERMISSION = "applications.add_hold"
LIFT_HOLD_PERMISSION = "applications.lift_hold"
TEXT_LIMIT = 500


@dataclass(frozen=True)
class HoldResult:
    changed: bool
    hold: Hold


def _permission_check(user, permission: str, application: Application | None) -> None:
    """A hold on one application needs the permission for it (or globally); any other hold
    needs it globally."""
    # Global grant, or (with an object backend) a grant for this application.
    if user is not None and (
        user.has_perm(permission)
        or (application is not None and user.has_perm(permission, application))
    ):
        return
    name = permission.split(".")[1]
    if application is None:
        detail = gettext("You need the %(permission)s permission.") % {"permission": name}
    else:
        detail = gettext("You need the %(permission)s permission for %(app)s.") % {
            "permission": name,
            "app": application.name,
        }
    raise DomainError("permission_denied", detail, localized=True)


@retry_on_conflict
def hold_place(
    *,
    user,
    reason: str,
    environment: str = "",
    application: str | None = None,
    batch_id: int | None = None,
    starts_at: datetime.datetime | None = None,
    ends_at: datetime.datetime | None = None,
) -> HoldResult:
    """Place a hold; from `starts_at` (default now) until `ends_at` (default: until lifted) it
    stops every deployment it covers. The same hold placed again by the same user while it
    holds (a retried request) is found, `changed=False`.

    Takes the named batch's lock, then the holds lock exclusively (see `locks`): a stage start
    either saw this hold or committed before it, and the reconcilers are woken at commit.
    """
    now = timezone.now()
    reason = (reason or "").strip()
    errors = {}
    if not reason or len(reason) > TEXT_LIMIT:
        errors["reason"] = [f"A reason of 1 to {TEXT_LIMIT} characters is required."]
    if environment not in ("", *Environment.values):
        errors["environment"] = ["One of pre, prod, or none for every environment."]
    if application and batch_id is not None:
        errors["batch"] = ["A hold names an application or a batch, not both."]
    start = starts_at or now
    if ends_at is not None and ends_at <= start:
        errors["ends_at"] = ["Must be after starts_at."]
    elif ends_at is not None and ends_at <= now:
        errors["ends_at"] = ["Must be in the future: this hold would never stop anything."]
    if errors:
        # Rules across fields and the clock, which a schema cannot state: their own code.
        raise DomainError("invalid_hold", "The hold is not valid.", fields=errors)

    app = None
    if application:
        app = Application.objects.filter(name=application).first()
        if app is None:
            raise DomainError(
                "unknown_app",
                f"No application named {application}.",
                fields={"application": [f"Unknown application: {application}"]},
            )
    _permission_check(user, ADD_HOLD_PERMISSION, app)

    with transaction.atomic(durable=True):
        if batch_id is not None:
            try:
                batch = locks.batch_lock(batch_id=batch_id)
            except DomainError:
                raise DomainError(
                    "unknown_batch",
                    f"Batch {batch_id} does not exist.",
                    fields={"batch": [f"No batch {batch_id}."]},
                ) from None
            if batch.status not in OPEN_BATCH_STATUSES:
                raise rules.batch_closed_blocker(batch.status).error()
        locks.holds_lock(shared=False)
        same = (
            Hold.objects.filter(
                lifted_at__isnull=True,
                reason=reason,
                environment=environment,
                application=app,
                batch_id=batch_id,
                created_by=user,
                ends_at=ends_at,
            )
            .exclude(ends_at__lte=now)
            .filter(**({"starts_at": starts_at} if starts_at else {"starts_at__lte": now}))
            .order_by("pk")
            .first()
        )
        if same is not None:
            return HoldResult(changed=False, hold=holds_list().get(pk=same.pk))
        hold = Hold.objects.create(
            reason=reason,
            environment=environment,
            application=app,
            batch_id=batch_id,
            created_by=user,
            created_at=now,
            starts_at=start,
            ends_at=ends_at,
        )
        history_hold(
            user=user, hold=hold, lifted=False, batches=_stopped_batches(hold), scope=_scope(hold)
        )
        # Reconcilers stop launching what it covers now, or schedule its start.
        reconcilers_wake()
    logger.info("hold_placed", extra=_log_fields(hold, user))
    return HoldResult(changed=True, hold=holds_list().get(pk=hold.pk))


@retry_on_conflict
def hold_lift(*, hold_id: int, user, note: str = "") -> HoldResult:
    """Lift a hold (a planned one too); one that was lifted or has ended is left alone,
    `changed=False`. Wakes the reconcilers at commit: what it held back launches."""
    note = note_clean(note)
    with transaction.atomic(durable=True):
        hold = locks.hold_lock(hold_id=hold_id)
        if hold is None:
            raise DomainError("not_found", f"Hold {hold_id} does not exist.")
        _permission_check(user, LIFT_HOLD_PERMISSION, hold.application)
        now = timezone.now()
        if hold.lifted_at is not None or (hold.ends_at is not None and hold.ends_at <= now):
            return HoldResult(changed=False, hold=holds_list().get(pk=hold.pk))
        hold.lifted_at = now
        hold.lifted_by = user
        hold.lift_note = note
        hold.save(update_fields=["lifted_at", "lifted_by", "lift_note"])
        history_hold(
            user=user,
            hold=hold,
            lifted=True,
            batches=_stopped_batches(hold),
            scope=_scope(hold),
            note=note,
        )
        reconcilers_wake()
    logger.info("hold_lifted", extra={**_log_fields(hold, user), "note": note})
    return HoldResult(changed=True, hold=holds_list().get(pk=hold.pk))


def _log_fields(hold: Hold, user) -> dict:
    return {
        "hold_id": hold.pk,
        "reason": hold.reason,
        "environment": hold.environment or None,
        "app": hold.application.name if hold.application_id else None,
        "batch_id": hold.batch_id,
        "starts_at": hold.starts_at.isoformat(),
        "ends_at": hold.ends_at.isoformat() if hold.ends_at else None,
        "user": getattr(user, "username", None),
    }


def _stopped_batches(hold: Hold) -> list[Batch]:
    """The open batches a hold stops, on whose History it is written: its batch, the open
    batches of its application, or every open batch."""
    batches = Batch.objects.filter(status__in=OPEN_BATCH_STATUSES)
    if hold.batch_id is not None:
        batches = batches.filter(pk=hold.batch_id)
    elif hold.application_id is not None:
        batches = batches.filter(releases__application_id=hold.application_id)
    return list(batches.distinct().order_by("pk"))


def _scope(hold: Hold) -> str:
    """What a hold covers, in names any reader follows: "prod api", "batch 3", "pre", "*"."""
    parts = [hold.environment or "", hold.application.name if hold.application_id else ""]
    if hold.batch_id is not None:
        parts.append(f"batch {hold.batch_id}")
    return " ".join(p for p in parts if p) or "*"
