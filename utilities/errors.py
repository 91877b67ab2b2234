"""One error vocabulary for the API, the admin and the CLI: a stable code and a human message."""

from dataclasses import dataclass, field

from django.utils.translation import gettext_lazy as _
from django_fsm import ConcurrentTransition, TransitionNotAllowed

# code -> (HTTP status, default message). The admin shows the same messages, translated.
ERRORS = {
    "invalid": (400, _("The request is not valid.")),
    "unknown_app": (400, _("No application has that name.")),
    "unknown_tag": (400, _("That tag did not come from a successful build of this application.")),
    "duplicate_app": (400, _("The same application is listed twice.")),
    "unknown_batch": (400, _("No batch has that id.")),
    "invalid_hold": (
        400,
        _("A hold names an application or a batch, not both, and ends after it starts."),
    ),
    "no_successful_build": (400, _("This application has no successful build to take a tag from.")),
    "permission_denied": (403, _("You do not have permission to do that.")),
    "not_found": (404, _("Not found.")),
    "stale_version": (
        409,
        _("The release's tag changed since you looked at it; reload and retry."),
    ),
    "batch_not_waiting": (
        409,
        _("Versions can only be switched while the batch waits for a stage, not while it deploys."),
    ),
    "deployment_in_progress": (409, _("A deployment of this release is running.")),
    "batch_empty": (409, _("The batch has no applications to deploy.")),
    "batch_name_taken": (
        409,
        _("An open batch with that name already exists with other contents."),
    ),
    "invalid_transition": (409, _("That is not possible in the batch's current status.")),
    "concurrent_update": (409, _("Someone else changed this at the same time; retry.")),
    "conflicting_image": (
        409,
        _("This build already recorded another tag for that application."),
    ),
    "batch_closed": (409, _("The batch is closed; it can no longer change.")),
    "on_hold": (409, _("A hold stops this until it ends or is lifted.")),
    "busy": (503, _("The server is busy with concurrent changes; retry shortly.")),
}


class DomainError(Exception):
    """A refusal with a stable code. `localized`: `detail` is already in the user's language
    (the switch's blockers), so the admin may show it instead of the code's general text."""

    def __init__(
        self,
        code: str,
        detail: str | None = None,
        *,
        fields: dict | None = None,
        localized: bool = False,
    ):
        if code not in ERRORS:
            raise ValueError(f"unknown error code {code!r}")
        self.code = code
        self.status_code, default_detail = ERRORS[code]
        self.detail = str(detail if detail is not None else default_detail)
        self.fields = fields or {}
        self.localized = localized or detail is None
        super().__init__(f"{code}: {self.detail}")


# What a service may refuse with; the last two only if a row changed under a transition, which
# the services' locks prevent.
REFUSALS = (DomainError, ConcurrentTransition, TransitionNotAllowed)


@dataclass(frozen=True)
class Refusal:
    status: int
    code: str
    detail: str
    fields: dict = field(default_factory=dict)
    localized: bool = False

    @property
    def message(self) -> str:
        """The admin's words: `detail` when it is in the user's language, else the code's own
        text (a specific `detail` such as "The release is at v1, not v0" is English)."""
        return self.detail if self.localized else str(ERRORS[self.code][1])


def refusal(error: Exception) -> Refusal:
    """The status, code and words of a refusal: the API's error body and the admin's message."""
    if isinstance(error, DomainError):
        return Refusal(
            error.status_code, error.code, error.detail, error.fields, localized=error.localized
        )
    if isinstance(error, ConcurrentTransition):
        code = "concurrent_update"
    elif isinstance(error, TransitionNotAllowed):
        code = "invalid_transition"
    else:
        raise TypeError(f"not a refusal: {error!r}")
    status, detail = ERRORS[code]
    return Refusal(status, code, str(detail))
