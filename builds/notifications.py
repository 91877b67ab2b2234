"""The notification Drone sends after a build, parsed strictly into a value that is always valid.

One definition of the body: `BuildNotificationSerializer` both validates it and is what the
OpenAPI schema publishes, so the documented constraints (types, patterns, lengths) are exactly
the checked ones. The webhook, the `notify_build` command and the tests all go through
`BuildNotification.parse`, so every entry point rejects the same inputs with the same errors.
"""

import re
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from rest_framework import serializers

from applications.models import Application
from utilities.api.fields import AppNameField, ImageTagField, StrictCharField, StrictIntegerField
from utilities.errors import DomainError
from utilities.validators import (
    APP_NAME_PATTERN,
    HTTP_URL_PATTERN,
    IMAGE_TAG_PATTERN,
    PRINTABLE_TEXT_PATTERN,
    PatternValidator,
)

from .choices import BuildStatus

_APP_NAME = re.compile(APP_NAME_PATTERN)
_IMAGE_TAG = re.compile(IMAGE_TAG_PATTERN)
# The largest value a PostgreSQL bigint holds; Drone's build numbers are far below it.
MAX_BUILD_NUMBER = 2**63 - 1
MAX_APPS = 1000


def _optional_text(max_length: int, help_text: str, pattern: str = PRINTABLE_TEXT_PATTERN):
    # null and "" both mean "not sent"; either way a known value is kept.
    return StrictCharField(
        required=False,
        allow_null=True,
        allow_blank=True,
        max_length=max_length,
        validators=[PatternValidator(pattern, "Must not contain control characters.")],
        help_text=help_text,
    )


class NotifiedAppSerializer(serializers.Serializer):
    name = AppNameField(
        help_text="Application name (a Kubernetes label value); registered on first sight "
        "unless BUILDS_REGISTER_UNKNOWN_APPS is off.",
    )
    image_tag = ImageTagField(
        help_text="The image tag the build pushed (OCI tag grammar).",
    )

    def to_internal_value(self, data):
        # A notification may list hundreds of apps: an item that plainly passes the two field
        # patterns above (which also bound its length) skips DRF's per-field machinery;
        # anything else goes the whole way, for its exact error messages.
        if isinstance(data, dict):
            name, tag = data.get("name"), data.get("image_tag")
            plain = isinstance(name, str) and isinstance(tag, str)
            if plain and _APP_NAME.fullmatch(name) and _IMAGE_TAG.fullmatch(tag):
                return {"name": name, "image_tag": tag}
        return super().to_internal_value(data)


class BuildNotificationSerializer(serializers.Serializer):
    """Drone's `BuildNotifyRequest`, extended with optional `repo`, `commit`, `branch` and
    `link`. Unknown fields are ignored; each app may be listed once (else `duplicate_app`)."""

    build_number = StrictIntegerField(min_value=1, max_value=MAX_BUILD_NUMBER)
    build_status = serializers.ChoiceField(choices=BuildStatus.choices)
    apps = NotifiedAppSerializer(
        many=True, max_length=MAX_APPS, help_text="The apps this build produced."
    )
    repo = _optional_text(255, "Repository, e.g. org/shop.")
    commit = _optional_text(64, "Commit SHA.")
    branch = _optional_text(255, "Branch.")
    link = _optional_text(
        2000, "The build's page in Drone: an http or https URL.", pattern=HTTP_URL_PATTERN
    )


@dataclass(frozen=True)
class AppImage:
    name: str
    image_tag: str


@dataclass(frozen=True)
class BuildNotification:
    number: int
    status: str
    apps: tuple[AppImage, ...]
    repo: str = ""
    commit: str = ""
    branch: str = ""
    link: str = ""

    def __post_init__(self) -> None:
        # Constructing one directly (tests, the CLI) is held to the same rules as parsing.
        _validated(
            {
                "build_number": self.number,
                "build_status": self.status,
                "apps": [{"name": a.name, "image_tag": a.image_tag} for a in self.apps],
                "repo": self.repo,
                "commit": self.commit,
                "branch": self.branch,
                "link": self.link,
            }
        )

    @classmethod
    def parse(cls, data: Any) -> "BuildNotification":
        """Build one from decoded JSON; unknown keys are ignored, anything wrong is a 400."""
        if not isinstance(data, dict):
            raise DomainError("invalid", "The body must be a JSON object.")
        valid = _validated(data)
        # Validated just now: built without __post_init__ validating it all a second time.
        notification = cls.__new__(cls)
        for field, value in {
            "number": valid["build_number"],
            "status": valid["build_status"],
            "apps": tuple(AppImage(a["name"], a["image_tag"]) for a in valid["apps"]),
            **{key: valid.get(key) or "" for key in ("repo", "commit", "branch", "link")},
        }.items():
            object.__setattr__(notification, field, value)
        return notification


def _validated(data: dict) -> dict:
    serializer = BuildNotificationSerializer(data=data)
    if not serializer.is_valid():
        raise DomainError(
            "invalid", "The build notification is not valid.", fields=_flat(serializer.errors)
        )
    valid = serializer.validated_data
    seen: set[str] = set()
    twice = []
    for index, app in enumerate(valid["apps"]):
        if app["name"] in seen:
            twice.append(f"apps[{index}].name: {app['name']!r} is listed twice.")
        seen.add(app["name"])
    if twice:
        # A rule about the data, not its shape: the schema cannot say it, so it has its own code.
        raise DomainError("duplicate_app", fields={"apps": twice})
    return valid


def _flat(errors: dict) -> dict[str, list[str]]:
    """DRF's nested errors as `{"apps": ["apps[0].image_tag: ..."], "repo": ["..."]}`."""
    flat: dict[str, list[str]] = {}
    for key, value in errors.items():
        if isinstance(value, dict):  # the list's own error: not a list, or too long
            flat[key] = [str(message) for messages in value.values() for message in messages]
        elif key == "apps" and any(isinstance(item, dict) for item in value):
            flat[key] = [
                f"apps[{index}].{field}: {message}"
                for index, item in enumerate(value)
                if isinstance(item, dict)
                for field, messages in item.items()
                for message in messages
            ]
        else:
            flat[key] = [str(message) for message in value]
    return flat


def unknown_apps_refuse(*, notification: BuildNotification) -> None:
    """With BUILDS_REGISTER_UNKNOWN_APPS off, a notification may name only known applications:
    any other is a 400 `unknown_app` naming each, before anything is written."""
    if settings.BUILDS_REGISTER_UNKNOWN_APPS or not notification.apps:
        return
    names = [a.name for a in notification.apps]
    known = set(Application.objects.filter(name__in=names).values_list("name", flat=True))
    unknown = [
        f"apps[{index}].name: no application named {name!r}."
        for index, name in enumerate(names)
        if name not in known
    ]
    if unknown:
        raise DomainError(
            "unknown_app",
            "The build names applications Release Train does not know, and "
            "BUILDS_REGISTER_UNKNOWN_APPS is off.",
            fields={"apps": unknown},
        )
