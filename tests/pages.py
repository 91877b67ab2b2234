"""Admin test helpers: staff users, and reading pages the way a person does."""

import html
import os
import re
import shutil
import subprocess
from pathlib import Path

from django.conf import settings

from tests.factories import UserFactory
from tests.helpers import READ_PERMISSIONS


def staff(username: str, *extra: str):
    user = UserFactory(username=username, permissions=[*READ_PERMISSIONS, *extra])
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    return user


def text(response) -> str:
    """What a person reads on the page: tags stripped, entities decoded, spaces collapsed."""
    content = response.content.decode()
    content = re.sub(r"<(script|style)\b.*?</\1>", " ", content, flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", content)).split())


def row(response, needle: str) -> str:
    """The HTML of the first table row that mentions `needle`."""
    for match in re.finditer(r"<tr\b.*?</tr>", response.content.decode(), flags=re.S):
        if needle in match.group(0):
            return match.group(0)
    raise AssertionError(f"no table row mentions {needle!r}")


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def compile_translations_if_stale() -> None:
    """`make test` compiles the catalogue; this keeps a bare `pytest` run from using a stale one."""
    po = Path(settings.BASE_DIR) / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"
    mo = po.with_suffix(".mo")
    if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
        return
    if shutil.which("msgfmt") is None:
        raise RuntimeError("msgfmt is missing: apt-get install gettext, or run `make messages`")
    partial = mo.with_name(f"django.{os.getpid()}.mo")
    subprocess.run(["msgfmt", "--check-format", "-o", str(partial), str(po)], check=True)
    partial.replace(mo)  # atomic: a concurrent run never reads half a file
