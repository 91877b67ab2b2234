"""Holds in the browser at 1280 by 800: a hold placed elsewhere appears on the open batch page by
itself, the stage button is disabled and says why, and lifting it from the banner frees it."""

import pytest
from playwright.sync_api import expect

from releases.services.holds import hold_place
from tests.browser.helpers import log_in
from tests.pages import staff

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

FAST = 3_000  # ms: live pages follow within 3 s


def test_a_hold_shows_its_banner_disables_the_stage_and_is_lifted(new_page, screenshot, batch):
    manager = staff(
        "carol",
        "applications.deploy_batch",
        "releases.view_hold",
        "applications.add_hold",
        "applications.lift_hold",
    )
    page = new_page("en")
    page.set_viewport_size({"width": 1280, "height": 800})
    log_in(page, "carol")
    page.goto(f"/admin/releases/batch/{batch.pk}/change/")
    start = page.locator("[data-rollout=start_pre_deploy]")
    expect(start).to_be_enabled()

    # Placed by someone else, elsewhere: the open page follows by itself.
    hold_place(user=manager, reason="payment incident", application="checkout")

    banner = page.locator("#live-holds-banner")
    expect(banner).to_contain_text(
        "checkout is on hold until lifted: payment incident (carol).", timeout=FAST
    )
    expect(start).to_have_attribute("aria-disabled", "true")
    expect(page.locator("[data-held=start_pre_deploy]")).to_contain_text("payment incident")
    screenshot(page, "hold-banner")

    page.goto("/admin/")
    expect(page.locator("#live-holds-banner")).to_contain_text("payment incident")

    page.locator("#live-holds-banner").get_by_role("link", name="Lift").click()
    page.fill("#id_note", "card processor back")
    page.get_by_role("button", name="Lift").click()
    expect(page.locator(".messagelist")).to_contain_text("Lifted: payment incident")
    # The list keeps it, lifted, with its note.
    expect(page.locator("#result_list")).to_contain_text("lifted")

    page.goto(f"/admin/releases/batch/{batch.pk}/change/")
    expect(page.locator("#live-holds-banner")).to_be_empty()
    page.locator("button[data-rollout=start_pre_deploy]").click()
    expect(page.locator(".field-batch_status")).to_contain_text("Deploying to pre")
