"""Creating a batch, closed batches, saying why someone may not act, and confirming prod."""

import pytest
from playwright.sync_api import expect

from releases.choices import BatchStatus
from releases.models import Batch
from releases.services import cancel_batch, start_pre_deploy
from tests.browser.helpers import built, engineer, log_in, release_row
from tests.helpers import run_stage
from tests.pages import staff

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_create_a_batch_with_searchable_apps_at_their_latest_tags(new_page, screenshot, batch):
    staff("carol", "releases.add_batch", "applications.switch_version")
    built(43, {"catalog": "v5.2.0", "billing": "v1.0.0"}, "0badc0ffee")
    page = new_page("en")
    log_in(page, "carol")

    page.goto("/admin/releases/batch/")
    page.get_by_role("link", name="Add batch").click()
    expect(page.locator("h1")).to_have_text("Create a batch")
    page.fill("#id_name", "December train")
    page.fill("#rt-app-filter", "cat")
    expect(page.locator("tr[data-app=checkout]")).to_be_hidden()
    catalog = page.locator("tr[data-app=catalog]")
    expect(catalog.locator("select")).to_have_value("v5.2.0")  # its latest successful tag
    catalog.get_by_label("catalog").check()
    page.fill("#rt-app-filter", "check")
    checkout = page.locator("tr[data-app=checkout]")
    checkout.get_by_label("checkout").check()
    checkout.locator("select").select_option("v2.3.0")
    expect(catalog).to_be_visible()  # ticked: stays in sight
    screenshot(page, "batch-create")
    page.get_by_role("button", name="Create batch").click()

    expect(page.locator(".messagelist .success")).to_have_text(
        "Batch December train created with 2 applications."
    )
    expect(release_row(page, "catalog").locator(".field-chosen_tag")).to_have_text("v5.2.0")
    expect(release_row(page, "checkout").locator(".field-chosen_tag")).to_have_text("v2.3.0")
    created = Batch.objects.get(name="December train")
    assert created.created_by.username == "carol"


def test_a_refused_batch_says_why_and_keeps_the_form(new_page, batch):
    staff("carol", "releases.add_batch")
    page = new_page("en")
    log_in(page, "carol")
    page.goto("/admin/releases/batch/add/")

    page.fill("#id_name", "November train")  # an open batch already has that name
    page.locator("tr[data-app=search]").get_by_label("search").check()
    page.get_by_role("button", name="Create batch").click()

    expect(page.locator(".errornote")).to_contain_text(
        "An open batch with that name already exists with other contents."
    )
    expect(page.locator("#id_name")).to_have_value("November train")
    expect(page.locator("tr[data-app=search] input[type=checkbox]")).to_be_checked()
    assert Batch.objects.filter(name="November train").count() == 1


def test_a_closed_batch_offers_nothing_and_says_it_is_closed(new_page, screenshot, batch):
    cancel_batch(batch_id=batch.pk, user=engineer())
    page = new_page("en")
    log_in(page, "alice")

    page.goto(f"/admin/releases/batch/{batch.pk}/change/")

    expect(page.locator(".rt-closed")).to_have_text(
        "This batch is cancelled: it is closed, nothing in it changes any more."
    )
    expect(page.locator(".rt-badge-new")).to_have_count(0)
    expect(page.get_by_role("button", name="Switch version")).to_have_count(0)
    expect(page.get_by_role("link", name="Switch version")).to_have_count(0)
    expect(page.locator("[data-rollout]")).to_have_count(0)
    expect(page.get_by_text("switch once its stage has finished")).to_have_count(0)
    screenshot(page, "batch-closed")

    page.goto("/admin/releases/batch/")
    expect(page.locator("#result_list .rt-badge-new")).to_have_count(0)
    page.goto("/admin/releases/releaseapp/")
    expect(page.locator("#result_list .rt-badge-new")).to_have_count(0)
    expect(page.locator("#result_list .rt-button")).to_have_count(0)


def test_without_the_permission_the_switch_is_shown_disabled_and_says_why(
    new_page, screenshot, batch
):
    staff("bob")
    page = new_page("en")
    log_in(page, "bob")

    page.goto(f"/admin/releases/batch/{batch.pk}/change/")
    button = release_row(page, "checkout").get_by_role("button", name="Switch version")
    expect(button).to_be_disabled()
    expect(release_row(page, "checkout").locator(".rt-reason")).to_have_text(
        "You need the switch_version permission for checkout."
    )
    page.goto("/admin/releases/releaseapp/")
    expect(page.locator("#result_list .rt-reason").first).to_have_text(
        "You need the switch_version permission for catalog."
    )
    screenshot(page, "switch-no-permission")

    checkout = batch.releases.get(application__name="checkout")
    response = page.goto(f"/admin/releases/releaseapp/{checkout.pk}/switch/")
    assert response.status == 403
    expect(page.locator("#site-name")).to_be_visible()  # the admin's own page, not a bare 403
    expect(page.locator(".errornote")).to_have_text(
        "You need the switch_version permission for checkout."
    )
    page.get_by_role("link", name="Back").click()
    expect(page).to_have_url(
        f"{page.url.split('/admin/')[0]}/admin/releases/releaseapp/{checkout.pk}/change/"
    )

    response = page.goto("/admin/releases/batch/add/")
    assert response.status == 403
    expect(page.locator(".errornote")).to_have_text(
        "You need the releases.add_batch permission to create a batch."
    )
    screenshot(page, "forbidden")


def test_starting_the_prod_rollout_asks_first(new_page, screenshot, batch):
    run_stage(start_pre_deploy(batch_id=batch.pk, user=engineer()))
    page = new_page("en")
    log_in(page, "alice")
    page.goto(f"/admin/releases/batch/{batch.pk}/change/")

    page.get_by_role("link", name="Start prod rollout").click()

    expect(page.locator("h1")).to_have_text("Start the prod rollout of batch November train?")
    expect(page.locator(".rt-rollout-list")).to_contain_text("checkout v2.3.0")
    batch.refresh_from_db()
    assert batch.status == BatchStatus.PROD_WAITING
    screenshot(page, "prod-confirm")
    page.get_by_role("button", name="Yes, start the prod rollout").click()

    expect(page.locator(".messagelist .success")).to_contain_text("Rollout started")
    batch.refresh_from_db()
    assert batch.status == BatchStatus.PROD_DEPLOYING


def test_pre_stays_one_click(new_page, batch):
    page = new_page("en")
    log_in(page, "alice")
    page.goto(f"/admin/releases/batch/{batch.pk}/change/")

    page.get_by_role("button", name="Start pre rollout").click()

    expect(page.locator(".messagelist .success")).to_contain_text("Rollout started")
    batch.refresh_from_db()
    assert batch.status == BatchStatus.PRE_DEPLOYING


def test_the_new_pages_in_chinese(new_page, batch):
    staff("bob")
    staff("carol", "releases.add_batch")
    page = new_page("zh-Hans")
    log_in(page, "bob")
    page.goto(f"/admin/releases/batch/{batch.pk}/change/")
    expect(release_row(page, "checkout").locator(".rt-reason")).to_have_text(
        "您需要 checkout 的 switch_version 权限。"
    )
    page.goto("/admin/releases/batch/add/")
    expect(page.locator(".errornote")).to_have_text("您需要 releases.add_batch 权限才能创建批次。")

    page = new_page("zh-Hans")
    log_in(page, "carol")
    page.goto("/admin/releases/batch/add/")
    expect(page.locator("h1")).to_have_text("创建批次")
    expect(page.get_by_role("button", name="创建批次")).to_be_visible()
