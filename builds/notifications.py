"""The notification Drone sends after a build, parsed strictly into a value that is always valid.

The webhook, the `notify_build` command and the tests all go through `BuildNotification.parse`,
so every entry point rejects the same inputs with the same field errors.
"""

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings

from releases.models import Application
from utilities.errors import DomainError
from utilities.validators import APP_NAME_PATTERN, IMAGE_TAG_PATTERN

from .choices import BuildStatus

_TAG_RE = re.compile(IMAGE_TAG_PATTERN)
_APP_RE = re.compile(APP_NAME_PATTERN)
# The largest value a PostgreSQL bigint holds; Drone's build numbers are far below it.
MAX_BUILD_NUMBER = 2**63 - 1
MAX_APPS = 1000
_OPTIONAL_TEXT = {"repo": 255, "commit": 64, "branch": 255, "link": 2000}


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
        errors = _field_errors(
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
        if errors:
            raise DomainError("invalid", "The build notification is not valid.", fields=errors)

    @classmethod
    def parse(cls, data: Any) -> "BuildNotification":
        """Build one from decoded JSON; unknown keys are ignored, anything wrong is a 400."""
        if not isinstance(data, dict):
            raise DomainError("invalid", "The body must be a JSON object.")
        errors = _field_errors(data)
        if errors:
            raise DomainError("invalid", "The build notification is not valid.", fields=errors)
        return cls(
            number=data["build_number"],
            status=data["build_status"],
            apps=tuple(AppImage(a["name"], a["image_tag"]) for a in data["apps"]),
            **{key: data.get(key) or "" for key in _OPTIONAL_TEXT},
        )


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


def _field_errors(data: dict) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}

    number = data.get("build_number")
    if number is None:
        errors["build_number"] = ["This field is required."]
    elif isinstance(number, bool) or not isinstance(number, int):
        errors["build_number"] = ["Must be an integer."]
    elif not 1 <= number <= MAX_BUILD_NUMBER:
        errors["build_number"] = ["Must be at least 1."]

    status = data.get("build_status")
    if status is None:
        errors["build_status"] = ["This field is required."]
    elif status not in BuildStatus.values:
        errors["build_status"] = [f"Must be one of: {', '.join(BuildStatus.values)}."]

    for key, max_length in _OPTIONAL_TEXT.items():
        value = data.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            errors[key] = ["Must be a string."]
        elif not value.isprintable():
            # NUL and lone surrogates cannot be stored; control characters never belong here.
            errors[key] = ["Must not contain control characters."]
        elif len(value) > max_length:
            errors[key] = [f"At most {max_length} characters."]
        elif key == "link" and value and not _is_http_url(value):
            errors[key] = ["Must be an http(s) URL."]

    apps = data.get("apps")
    if apps is None:
        errors["apps"] = ["This field is required."]
    elif not isinstance(apps, list):
        errors["apps"] = ["Must be a list."]
    elif len(apps) > MAX_APPS:
        errors["apps"] = [f"At most {MAX_APPS} apps."]
    else:
        app_errors = _apps_errors(apps)
        if app_errors:
            errors["apps"] = app_errors
    return errors


def _apps_errors(apps: list) -> list[str]:
    errors = []
    seen: set[str] = set()
    for index, app in enumerate(apps):
        if not isinstance(app, dict):
            errors.append(f"apps[{index}]: must be an object with name and image_tag.")
            continue
        name, tag = app.get("name"), app.get("image_tag")
        if not isinstance(name, str) or not _APP_RE.fullmatch(name):
            errors.append(f"apps[{index}].name: not a valid application name.")
        elif name in seen:
            errors.append(f"apps[{index}].name: {name!r} is listed twice.")
        else:
            seen.add(name)
        if not isinstance(tag, str) or not _TAG_RE.fullmatch(tag):
            errors.append(f"apps[{index}].image_tag: not a valid OCI image tag.")
    return errors


def _is_http_url(value: str) -> bool:
    # Drone often lives on an internal host ("http://drone:8080/..."), so no TLD is required.
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname) and " " not in value
