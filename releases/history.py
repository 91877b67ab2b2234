"""Who did what, when: switches, stage starts, cancels and new batches in Django's admin log.

Each batch's and release's History page in the admin reads these `LogEntry` rows (no table of
our own). The services call these inside their own transaction, so the API, the admin and
the CLI record alike, an entry commits with its change or not at all, and only a change that
happened (`changed`) is recorded: a retried request adds nothing. Messages are English, like the structured logs: the log is a record, read by
whoever audits it.
"""

from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.utils import translation

STAGE_WORDS = {
    "start_pre_deploy": "Started the pre rollout",
    "start_prod_deploy": "Started the prod rollout",
    "cancel": "Cancelled the batch",
}


def _entry(user, obj, message: str, action_flag: int = CHANGE) -> LogEntry:
    return LogEntry(
        user_id=user.pk,
        content_type=ContentType.objects.get_for_model(obj, for_concrete_model=False),
        object_id=str(obj.pk),
        object_repr=str(obj)[:200],
        action_flag=action_flag,
        change_message=message,
    )


def _recordable(user, result) -> bool:
    # A management command acts as nobody; the admin log needs a person.
    return result.changed and user is not None and user.is_authenticated


def history_switch(*, user, result) -> None:
    """A switch, on the release's History and on its batch's."""
    if not _recordable(user, result):
        return
    release = result.release
    message = (
        f"Switched {release.application.name} from {result.previous_image_tag} "
        f"to {release.image_tag}."
    )
    if result.deployment is not None:
        message += f" New pre deployment #{result.deployment.pk} waits for the pre rollout."
    LogEntry.objects.bulk_create(
        [_entry(user, release, message), _entry(user, release.batch, message)]
    )


def history_stage(*, user, transition: str, result) -> None:
    """A stage start or a cancel, on the batch's History."""
    if not _recordable(user, result):
        return
    count = len(result.deployments)
    if transition == "cancel":
        detail = f" {count} unfinished deployment(s) cancelled." if count else ""
    else:
        detail = f" {count} deployment(s) queued."
    with translation.override("en"):
        status = result.batch.get_status_display().lower()
    message = f"{STAGE_WORDS[transition]}.{detail} The batch is now {status}."
    LogEntry.objects.bulk_create([_entry(user, result.batch, message)])


def history_batch_created(*, user, result) -> None:
    if not _recordable(user, result):
        return
    batch = result.batch
    tags = ", ".join(
        f"{name} {tag}"
        for name, tag in batch.releases.order_by("application__name").values_list(
            "application__name", "image_tag"
        )
    )
    LogEntry.objects.bulk_create(
        [_entry(user, batch, f"Created the batch with {tags}.", action_flag=ADDITION)]
    )
