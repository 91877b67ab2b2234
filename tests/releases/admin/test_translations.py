"""The zh_Hans catalogue is complete and the admin speaks it when the browser asks."""

import re

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import translation

from tests.pages import text
from utilities.errors import ERRORS

PO = settings.BASE_DIR / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"


def test_every_message_has_a_translation():
    entries = PO.read_text(encoding="utf-8").split("\n\n")[1:]  # the first is the header

    untranslated = [e for e in entries if re.search(r'^msgstr(\[\d+\])? ""\n?\Z', e, flags=re.M)]
    fuzzy = [e for e in entries if "#, fuzzy" in e]

    assert entries
    assert untranslated == [] and fuzzy == []


@pytest.mark.parametrize("code", sorted(ERRORS))
def test_every_error_code_reads_in_chinese(code):
    with translation.override("zh-hans"):
        message = str(ERRORS[code][1])

    assert message != str(ERRORS[code][1]) and re.search(r"[\u4e00-\u9fff]", message)


@pytest.mark.django_db
def test_the_browser_language_decides(client, switcher, batch):
    client.force_login(switcher)
    url = reverse("admin:releases_releaseapp_changelist")

    chinese = text(client.get(url, HTTP_ACCEPT_LANGUAGE="zh-Hans,zh;q=0.9"))
    english = text(client.get(url, HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9"))

    assert "切换到最新标签" in chinese
    assert "以 批次状态" in chinese
    assert "Switch to latest tag" in english and "新标签" not in english
