"""A release engineer in a real browser: find a new tag, switch it, and be stopped while deploying."""

import pytest
from playwright.sync_api import expect

from releases.services import start_pre_deploy
from tests.browser.helpers import engineer, log_in, release_row
from tests.pages import staff

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_see_the_new_tag_and_switch_to_it(new_page, screenshot, batch):
    page = new_page("en")
    log_in(page, "alice")

    page.get_by_role("link", name="Batches").first.click()
    screenshot(page, "batch-list")
    page.get_by_role("link", name="November train").click()
    checkout = release_row(page, "checkout")
    expect(checkout.locator(".rt-badge-new")).to_have_text("new tag")
    expect(release_row(page, "catalog").locator(".rt-badge-new")).to_have_count(0)
    screenshot(page, "batch-new-tag")

    checkout.get_by_role("link", name="Switch version").click()
    expect(page.locator("h1")).to_have_text("Switch checkout to another tag")
    expect(page.locator("input[name=image_tag][value='v2.4.0']")).to_be_checked()
    expect(page.locator("tr.rt-selected")).to_contain_text("#42")
    expect(page.locator("tr.rt-selected")).to_contain_text("c41a9e03d2")
    screenshot(page, "switch-form")
    page.locator("input[type=submit][value='Switch version']").click()

    expect(page.locator(".messagelist .success")).to_have_text(
        "Switched checkout from v2.3.0 to v2.4.0. "
        "A new pre deployment waits for the next pre rollout."
    )
    checkout = release_row(page, "checkout")
    expect(checkout.locator(".field-chosen_tag")).to_have_text("v2.4.0")
    expect(checkout.locator(".rt-badge-new")).to_have_count(0)
    expect(checkout.locator(".field-deployments_now")).to_contain_text("Pending")
    screenshot(page, "switched")


def test_switch_is_disabled_and_says_why_while_the_batch_deploys(new_page, screenshot, batch):
    staff("bob", "applications.switch_version")
    start_pre_deploy(batch_id=batch.pk, user=engineer())
    page = new_page("en")
    log_in(page, "bob")

    page.goto("/admin/releases/releaseapp/?has_new_tag=1")
    button = page.get_by_role("button", name="Switch version")
    expect(button).to_be_disabled()
    expect(page.locator("#result_list .rt-reason")).to_have_text(
        "The batch is deploying to pre; switch once its stage has finished."
    )
    expect(page.locator("#result_list a.rt-button")).to_have_count(0)
    screenshot(page, "switch-blocked")


def test_the_batch_page_in_chinese(new_page, screenshot, batch):
    page = new_page("zh-Hans")
    log_in(page, "alice")

    page.goto(f"/admin/releases/batch/{batch.pk}/change/")

    checkout = release_row(page, "checkout")
    expect(checkout.locator(".rt-badge-new")).to_have_text("新标签")
    expect(checkout.get_by_role("link", name="切换版本")).to_be_visible()
    expect(page.locator(".object-tools")).to_contain_text("开始预发布部署")
    expect(page.locator(".field-batch_status")).to_contain_text("等待预发布部署")
    screenshot(page, "batch-zh-hans")
