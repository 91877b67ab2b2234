"""Who did what, when, and why: the audit trail of batches and releases in Django's admin log.

Each batch's and release's History page in the admin, and `GET /api/v1/batches/{id}/history`,
read these `LogEntry` rows (no table of our own). The services call the `history_*` writers
inside their own transaction, so the API, the admin and the CLI record alike, an entry commits
with its change or not at all, and only a change that happened (`changed`) is recorded: a
retried request adds nothing. A stage's outcome is recorded as the system user `release-train`.

An entry's `change_message` is language-neutral JSON, `{"action", "params", "note"}`, rendered
in the reader's language when read (`entry_read`); entries written before in English are
recognised and rendered alike (docs/decisions.md, issue 18 notes and history).
"""

import json
import re
from dataclasses import dataclass
from datetime import datetime

from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db.models import CharField, Q
from django.db.models.functions import Cast
from django.utils.translation import gettext, ngettext

from utilities.errors import DomainError
from utilities.validators import PRINTABLE_TEXT_PATTERN

from .choices import HistoryAction
from .models import Batch, ReleaseApp

NOTE_MAX_LENGTH = 500
SYSTEM_USERNAME = "release-train"

_PRINTABLE = re.compile(PRINTABLE_TEXT_PATTERN)


def note_clean(note: str | None) -> str:
    """The note as stored: trimmed. Refused (400 `invalid`, on `note`) when it holds a control
    character or is longer than 500 characters, so nothing is written."""
    note = note or ""
    if not isinstance(note, str) or not _PRINTABLE.fullmatch(note):
        raise DomainError(
            "invalid", fields={"note": [gettext("The note may not hold control characters.")]}
        )
    note = note.strip()
    if len(note) > NOTE_MAX_LENGTH:
        raise DomainError(
            "invalid",
            fields={
                "note": [
                    gettext("At most %(max)d characters, not %(length)d.")
                    % {"max": NOTE_MAX_LENGTH, "length": len(note)}
                ]
            },
        )
    return note


# Writing ---------------------------------------------------------------------------------


def _message(action: str, params: dict, note: str) -> str:
    # "action" first, so the batch's copy of a switch is recognisable by prefix (batch_history).
    return json.dumps({"action": action, "params": params, "note": note}, ensure_ascii=False)


_SWITCH_PREFIX = json.dumps({"action": "version_switched"})[:-1]


def _entry(user, obj, action: str, params: dict, note: str = "", flag: int = CHANGE) -> LogEntry:
    return LogEntry(
        user_id=user.pk,
        content_type=ContentType.objects.get_for_model(obj, for_concrete_model=False),
        object_id=str(obj.pk),
        object_repr=str(obj)[:200],
        action_flag=flag,
        change_message=_message(action, params, note),
    )


def _recordable(user, result) -> bool:
    # A management command acts as nobody; the admin log needs a person.
    return result.changed and user is not None and user.is_authenticated


def history_switch(*, user, result, note: str = "") -> None:
    """A switch, on the release's History and on its batch's."""
    if not _recordable(user, result):
        return
    release = result.release
    params = {
        "app": release.application.name,
        "from": result.previous_image_tag,
        "to": release.image_tag,
        "deployment": result.deployment.pk if result.deployment is not None else None,
    }
    action = HistoryAction.VERSION_SWITCHED
    LogEntry.objects.bulk_create(
        [
            _entry(user, release, action, params, note),
            _entry(user, release.batch, action, params, note),
        ]
    )


def history_stage(*, user, transition: str, result, note: str = "") -> None:
    """A stage start or a cancel, on the batch's History."""
    if not _recordable(user, result):
        return
    count = len(result.deployments)
    if transition == "cancel":
        entry = _entry(user, result.batch, HistoryAction.BATCH_CANCELLED, {"count": count}, note)
    else:
        stage = {"start_pre_deploy": "pre", "start_prod_deploy": "prod"}[transition]
        params = {"stage": stage, "count": count}
        entry = _entry(user, result.batch, HistoryAction.STAGE_STARTED, params, note)
    LogEntry.objects.bulk_create([entry])


def history_batch_created(*, user, result) -> None:
    if not _recordable(user, result):
        return
    batch = result.batch
    releases = batch.releases.order_by("application__name").values_list(
        "application__name", "image_tag"
    )
    params = {"releases": [list(pair) for pair in releases]}
    LogEntry.objects.bulk_create(
        [_entry(user, batch, HistoryAction.BATCH_CREATED, params, flag=ADDITION)]
    )


def history_stage_outcome(*, batch: Batch, stage: str, failed_apps: list[str]) -> None:
    """How a stage ended, as the system user: it finished, failed (naming the apps that failed
    it), or, for prod, completed the batch. Caller holds the batch lock."""
    if failed_apps:
        action, params = HistoryAction.STAGE_FAILED, {"stage": stage, "apps": failed_apps}
    elif stage == "prod":
        action, params = HistoryAction.BATCH_COMPLETED, {"stage": stage}
    else:
        action, params = HistoryAction.STAGE_FINISHED, {"stage": stage}
    LogEntry.objects.bulk_create([_entry(system_user(), batch, action, params)])


def history_hold(*, user, hold, lifted: bool, batches, scope: str, note: str = "") -> None:
    """A hold placed or lifted, on the History of each batch it covers (`batches`; the holds
    service decides which: the open batches it stops). `scope` says what it covers, in words
    the reader of any language can follow (app names, environments)."""
    action = HistoryAction.HOLD_LIFTED if lifted else HistoryAction.HOLD_PLACED
    params = {"hold": hold.pk, "scope": scope}
    LogEntry.objects.bulk_create([_entry(user, batch, action, params, note) for batch in batches])


def system_user():
    """The user Release Train acts as itself (the reconciler's outcomes). Created on first use;
    it cannot log in: no usable password, and inactive, so no token or session authenticates it."""
    user, _created = get_user_model().objects.get_or_create(
        username=SYSTEM_USERNAME, defaults={"is_active": False, "password": "!"}
    )
    return user


# Reading ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class HistoryEntry:
    at: datetime
    user: str | None
    action: str
    object_type: str
    object_id: int
    object_repr: str
    message: str
    note: str


OBJECT_TYPES = {"batch": "batch", "releaseapp": "release"}


def batch_history(*, batch_id: int):
    """The batch's entries and its releases', newest first: one query, one row per change (a
    switch's copy on the batch is left out; its release's entry stands for it)."""
    batch_type = ContentType.objects.get_for_model(Batch)
    release_type = ContentType.objects.get_for_model(ReleaseApp)
    release_keys = (
        ReleaseApp.objects.filter(batch_id=batch_id)
        .annotate(key=Cast("pk", CharField()))
        .values("key")
    )
    switch_copy = Q(change_message__startswith=_SWITCH_PREFIX) | Q(
        change_message__startswith="Switched "  # an entry written before, in English
    )
    return (
        LogEntry.objects.filter(
            (Q(content_type=batch_type, object_id=str(batch_id)) & ~switch_copy)
            | Q(content_type=release_type, object_id__in=release_keys)
        )
        .select_related("user")
        .order_by("-action_time", "-pk")
    )


def entry_read(entry: LogEntry) -> HistoryEntry:
    """One entry, its message rendered in the active language."""
    action, params, note = _parsed(entry.change_message)
    object_type = ContentType.objects.get_for_id(entry.content_type_id).model  # cached
    return HistoryEntry(
        at=entry.action_time,
        user=entry.user.get_username() if entry.user_id else None,
        action=action,
        object_type=OBJECT_TYPES.get(object_type, object_type),
        object_id=int(entry.object_id) if entry.object_id.isdigit() else 0,
        object_repr=entry.object_repr,
        message=_rendered(action, params) if action != HistoryAction.OTHER else params["text"],
        note=note,
    )


def _parsed(change_message: str) -> tuple[str, dict, str]:
    if change_message.startswith("{"):
        try:
            stored = json.loads(change_message)
            return HistoryAction(stored["action"]), stored["params"], stored.get("note", "")
        except (ValueError, KeyError, TypeError):
            pass
    return (*_english(change_message), "")


# The messages written in English before entries were stored language-neutral.
_OLD_SWITCH = re.compile(
    r"Switched (?P<app>\S+) from (?P<old>\S+) to (?P<new>\S+)\."
    r"(?: New pre deployment #(?P<deployment>\d+) waits for the pre rollout\.)?"
)
_OLD_STAGE = re.compile(
    r"(?:Started the (?P<stage>pre|prod) rollout|(?P<cancel>Cancelled the batch))\."
    r"(?: (?P<count>\d+) (?:unfinished )?deployment\(s\) (?:queued|cancelled)\.)?"
    r" The batch is now [^.]+\."
)
_OLD_CREATED = re.compile(r"Created the batch with (?P<releases>.+)\.")


def _english(text: str) -> tuple[str, dict]:
    if match := _OLD_SWITCH.fullmatch(text):
        deployment = match["deployment"]
        return HistoryAction.VERSION_SWITCHED, {
            "app": match["app"],
            "from": match["old"],
            "to": match["new"],
            "deployment": int(deployment) if deployment else None,
        }
    if match := _OLD_STAGE.fullmatch(text):
        count = int(match["count"] or 0)
        if match["cancel"]:
            return HistoryAction.BATCH_CANCELLED, {"count": count}
        return HistoryAction.STAGE_STARTED, {"stage": match["stage"], "count": count}
    if (match := _OLD_CREATED.fullmatch(text)) and all(
        len(pair.split(" ")) == 2 for pair in match["releases"].split(", ")
    ):
        pairs = [pair.split(" ") for pair in match["releases"].split(", ")]
        return HistoryAction.BATCH_CREATED, {"releases": pairs}
    return HistoryAction.OTHER, {"text": text}


def _rendered(action: str, params: dict) -> str:
    if action == HistoryAction.VERSION_SWITCHED:
        words = {"app": params["app"], "old": params["from"], "new": params["to"]}
        if params.get("deployment") is None:
            return gettext("Switched %(app)s from %(old)s to %(new)s.") % words
        return gettext(
            "Switched %(app)s from %(old)s to %(new)s; new pre deployment #%(deployment)d "
            "waits for the pre rollout."
        ) % {**words, "deployment": params["deployment"]}
    if action == HistoryAction.STAGE_STARTED:
        count = params["count"]
        if params["stage"] == "pre":
            text = ngettext(
                "Started the pre rollout: %(count)d deployment queued.",
                "Started the pre rollout: %(count)d deployments queued.",
                count,
            )
        else:
            text = ngettext(
                "Started the prod rollout: %(count)d deployment queued.",
                "Started the prod rollout: %(count)d deployments queued.",
                count,
            )
        return text % {"count": count}
    if action == HistoryAction.BATCH_CANCELLED:
        count = params["count"]
        if not count:
            return gettext("Cancelled the batch.")
        return ngettext(
            "Cancelled the batch and its %(count)d unfinished deployment.",
            "Cancelled the batch and its %(count)d unfinished deployments.",
            count,
        ) % {"count": count}
    if action == HistoryAction.BATCH_CREATED:
        releases = params["releases"]
        return ngettext(
            "Created the batch with %(count)d application: %(releases)s.",
            "Created the batch with %(count)d applications: %(releases)s.",
            len(releases),
        ) % {
            "count": len(releases),
            "releases": gettext(", ").join(f"{app} {tag}" for app, tag in releases),
        }
    if action == HistoryAction.STAGE_FINISHED:
        return gettext("The pre stage finished: every release passed pre.")
    if action == HistoryAction.BATCH_COMPLETED:
        return gettext("The prod stage finished: the batch is completed.")
    if action == HistoryAction.STAGE_FAILED:
        apps = params["apps"]
        words = {"count": len(apps), "apps": gettext(", ").join(apps)}
        if params["stage"] == "pre":
            text = ngettext(
                "The pre stage failed: %(count)d release failed (%(apps)s).",
                "The pre stage failed: %(count)d releases failed (%(apps)s).",
                len(apps),
            )
        else:
            text = ngettext(
                "The prod stage failed: %(count)d release failed (%(apps)s).",
                "The prod stage failed: %(count)d releases failed (%(apps)s).",
                len(apps),
            )
        return text % words
    if action == HistoryAction.HOLD_PLACED:
        return gettext("Placed hold #%(hold)d: %(scope)s.") % params
    if action == HistoryAction.HOLD_LIFTED:
        return gettext("Lifted hold #%(hold)d: %(scope)s.") % params
    raise ValueError(f"no words for {action!r}")
