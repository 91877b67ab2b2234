"""What a release engineer who keeps the admin open all day notices (issue 21), at 1280 x 800 in
English and Chinese: failures in sight, warnings before prod, messages that stay true, one way
of showing dates and empty fields, closed batches that say so."""

import datetime

import pytest
from playwright.sync_api import expect

from applications.models import Application
from deployments.models import Deployment
from releases.models import Batch
from releases.services import cancel_batch, start_pre_deploy, start_prod_deploy
from tests.browser.helpers import engineer, log_in
from tests.helpers import run_deployment, run_stage
from tests.pages import staff

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

FAST = 3_000  # ms: live pages follow within 3 s
ERROR = "Back-off pulling image registry.example.com/checkout:v2.3.0"
WORDS = {
    "en": {
        "failed_one": "1 application failed to deploy:",
        "again_pre": "start the pre rollout again",
        "pre_failed": "Pre failed",
        "newer": "checkout: v2.4.0 is newer than v2.3.0.",
        "switch_first": "Switch checkout first",
        "pick_one": "Pick at least one application.",
        "closed": "The batch is cancelled; it can no longer change.",
        "blocked": "Switching is blocked right now",
        "labels": ["Batch", "Current tag", "Latest tag"],
    },
    "zh-Hans": {
        "failed_one": "1 个应用部署失败：",  # noqa: RUF001
        "again_pre": "重新开始预发布部署",
        "pre_failed": "预发布失败",
        "newer": "checkout：v2.4.0 比 v2.3.0 更新。",  # noqa: RUF001
        "switch_first": "先切换 checkout",
        "pick_one": "请至少选择一个应用。",
        "closed": "批次已处于“已取消”状态，不能再更改。",  # noqa: RUF001
        "blocked": "当前无法切换版本",
        "labels": ["批次", "当前标签", "最新标签"],
    },
}
LANGUAGES = list(WORDS)


def fail_pre(batch, app: str = "checkout", error: str = ERROR) -> None:
    """The pre stage runs; `app`'s Job fails with `error`, the others succeed."""
    for deployment in start_pre_deploy(batch_id=batch.pk, user=engineer()).deployments:
        failed = deployment.release_app.application.name == app
        run_deployment(deployment, "failed" if failed else "succeeded", ERROR if failed else "")


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_failed_pre_is_a_banner_on_the_batch_page_and_a_mark_in_the_list(
    new_page, screenshot, batch, language
):
    words = WORDS[language]
    page = new_page(language)
    log_in(page, "alice")
    page.goto(f"/admin/releases/batch/{batch.pk}/change/")
    expect(page.locator(".rt-failures")).to_have_count(0)

    fail_pre(batch)

    banner = page.locator(".rt-failures")
    expect(banner).to_be_visible(timeout=FAST)
    expect(banner.locator(".rt-failures-title")).to_have_text(words["failed_one"])
    expect(banner.locator("li[data-app=checkout]")).to_contain_text(ERROR)
    expect(banner.locator("li")).to_have_count(1)
    expect(banner.locator(".rt-next-step")).to_contain_text(words["again_pre"])
    banner.get_by_role("link", name="checkout").click()
    expect(page).to_have_url(
        f"{page.url.split('/admin/')[0]}/admin/releases/releaseapp/"
        f"{batch.releases.get(application__name='checkout').pk}/change/"
    )
    page.go_back()
    screenshot(page, "batch-failed" if language == "en" else "batch-failed-zh-hans")

    page.goto("/admin/releases/batch/")
    status = page.locator("#result_list td.field-batch_status")
    expect(status.locator("[data-status=pre_failed]")).to_have_text(words["pre_failed"])

    # Fixed and started again: the banner goes by itself, and the mark with it.
    page.goto(f"/admin/releases/batch/{batch.pk}/change/")
    run_stage(start_pre_deploy(batch_id=batch.pk, user=engineer()))
    expect(page.locator(".rt-failures")).to_have_count(0, timeout=FAST)
    page.goto("/admin/releases/batch/")
    expect(page.locator("#result_list [data-status=pre_failed]")).to_have_count(0)


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_prod_confirmation_warns_of_a_newer_tag_and_links_the_switch(new_page, batch, language):
    words = WORDS[language]
    run_stage(start_pre_deploy(batch_id=batch.pk, user=engineer()))
    page = new_page(language)
    log_in(page, "alice")

    page.goto(f"/admin/releases/batch/{batch.pk}/rollout/start_prod_deploy/")

    warning = page.locator(".rt-newer")
    expect(warning.locator("li")).to_have_count(1)
    expect(warning.locator("li[data-app=checkout]")).to_contain_text(words["newer"])
    warning.get_by_role("link", name=words["switch_first"]).click()
    checkout = batch.releases.get(application__name="checkout")
    assert f"/admin/releases/releaseapp/{checkout.pk}/switch/" in page.url
    expect(page.locator("input[name=image_tag]:checked")).to_have_value("v2.4.0")


def test_the_rollout_message_goes_once_the_batch_has_moved_on(new_page, batch):
    run_stage(start_pre_deploy(batch_id=batch.pk, user=engineer()))
    page = new_page("en")
    log_in(page, "alice")
    page.goto(f"/admin/releases/batch/{batch.pk}/rollout/start_prod_deploy/")

    page.get_by_role("button", name="Yes, start the prod rollout").click()

    message = page.locator(".messagelist li")
    expect(message).to_have_text(
        "Rollout started: 3 deployments queued; the batch is now deploying to prod."
    )
    for deployment in Deployment.objects.filter(environment="prod", status="pending"):
        run_deployment(deployment)
    expect(page.locator(".field-batch_status")).to_contain_text("Completed", timeout=FAST)
    expect(page.locator(".messagelist")).to_have_count(0)


def test_updated_at_follows_the_batch_and_dates_read_alike_everywhere(new_page, batch):
    Batch.objects.filter(pk=batch.pk).update(
        updated_at=datetime.datetime(2026, 1, 2, 3, 4, tzinfo=datetime.UTC)
    )
    page = new_page("en")
    log_in(page, "alice")
    page.goto(f"/admin/releases/batch/{batch.pk}/change/")
    updated = page.locator(".field-updated .readonly")
    expect(updated).to_have_text("2026-01-02 03:04")
    created_on_page = page.locator(".field-created_at .readonly").inner_text()

    start_pre_deploy(batch_id=batch.pk, user=engineer())

    expect(updated).not_to_have_text("2026-01-02 03:04", timeout=FAST)
    batch.refresh_from_db()
    expect(updated).to_have_text(batch.updated_at.strftime("%Y-%m-%d %H:%M"))
    page.goto("/admin/releases/batch/")
    expect(page.locator("#result_list td.field-created")).to_have_text(created_on_page)


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_create_form_spaces_its_label_selects_all_and_asks_for_an_application(
    new_page, batch, language
):
    staff("carol", "releases.add_batch")
    page = new_page(language)
    log_in(page, "carol")
    page.goto("/admin/releases/batch/add/")

    label = page.locator("label[for=id_name]").bounding_box()
    field = page.locator("#id_name").bounding_box()
    assert field["x"] - (label["x"] + label["width"]) >= 8 or field["x"] >= label["x"] + 150

    page.fill("#id_name", "December train")
    page.locator("input[type=submit]").click()
    expect(page.locator("ul.errorlist")).to_have_text(WORDS[language]["pick_one"])
    expect(page.locator("#id_name")).to_have_value("December train")

    page.fill("#rt-app-filter", "o")  # catalog, checkout; search hidden
    page.locator("#rt-select-all").check()
    ticked = page.locator("#rt-apps tbody input[type=checkbox]:checked")
    expect(ticked).to_have_count(2)
    page.fill("#rt-app-filter", "")
    expect(page.locator("tr[data-app=search] input[type=checkbox]")).not_to_be_checked()


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_closed_batchs_switch_form_says_it_is_closed(new_page, batch, language):
    words = WORDS[language]
    cancel_batch(batch_id=batch.pk, user=engineer())
    checkout = batch.releases.get(application__name="checkout")
    page = new_page(language)
    log_in(page, "alice")

    page.goto(f"/admin/releases/releaseapp/{checkout.pk}/switch/")

    expect(page.locator(".rt-closed")).to_have_text(words["closed"])
    expect(page.get_by_text(words["blocked"])).to_have_count(0)
    expect(page.locator(".rt-facts .rt-badge-new")).to_have_count(0)  # no "new tag"
    expect(page.locator("p.rt-note")).to_have_count(0)  # no "goes back to waiting for pre"
    expect(page.locator(".rt-facts dt")).to_have_text(words["labels"])
    expect(page.locator("input[type=submit]")).to_be_disabled()


def test_recent_deployments_fill_their_box(new_page, batch):
    run_stage(start_pre_deploy(batch_id=batch.pk, user=engineer()))
    run_stage(start_prod_deploy(batch_id=batch.pk, user=engineer()))
    page = new_page("en")
    log_in(page, "alice")
    checkout = Application.objects.get(name="checkout")

    page.goto(f"/admin/applications/application/{checkout.pk}/change/")

    header = page.get_by_role("heading", name="Recent deployments").bounding_box()
    tables = page.locator("table.rt-deployments")
    expect(tables).to_have_count(2)
    for index in range(2):
        assert abs(tables.nth(index).bounding_box()["width"] - header["width"]) <= 1
