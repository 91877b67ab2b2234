"""Finding a build by its number, commit or tag, and a release by its tag."""

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def search(page, term: str):
    page.fill("#searchbar", term)
    page.locator("#changelist-search input[type=submit]").click()
    return page.locator("#result_list tbody tr")


@pytest.mark.parametrize("term", ["42", "#42", "c41a9e", "v2.4.0"])
def test_builds_by_number_commit_and_tag(new_page, batch, term):
    page = new_page("en")
    log_in(page, "alice")
    page.goto("/admin/builds/build/")

    rows = search(page, term)

    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("#42")


def test_releases_by_tag(new_page, batch):
    page = new_page("en")
    log_in(page, "alice")
    page.goto("/admin/releases/releaseapp/")

    expect(search(page, "v2.4.0")).to_have_count(1)  # checkout's latest tag
    expect(search(page, "v5.1.2")).to_have_count(1)  # catalog's chosen tag
    expect(page.locator("#result_list")).to_contain_text("catalog")
