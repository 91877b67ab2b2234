"""What runs where, in a real browser: the Applications overview in English and in Chinese, at
1280 px, following a rollout by itself."""

import re

import pytest
from playwright.sync_api import expect

from releases.services import (
    apply_deployment_outcome,
    create_batch,
    start_pre_deploy,
    start_prod_deploy,
)
from releases.services.batches import AppChoice
from tests.browser.helpers import engineer, log_in
from tests.helpers import deployment_mark_running, run_stage
from tests.pages import staff

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

FAST = 3_000  # ms: live pages follow within 3 s
WIDTH = 1280


@pytest.fixture
def rolled_out(batch):
    """The November train went through pre and prod. The December train took checkout v2.4.0
    (built since) and catalog through pre; checkout then failed in prod, so it waits for prod."""
    run_stage(start_pre_deploy(batch_id=batch.pk, user=engineer()))
    run_stage(start_prod_deploy(batch_id=batch.pk, user=engineer()))
    staff("bob")
    alice = batch.created_by
    december = create_batch(
        name="December train", apps=[AppChoice("checkout"), AppChoice("catalog")], user=alice
    ).batch
    run_stage(start_pre_deploy(batch_id=december.pk, user=alice))
    run_stage(start_prod_deploy(batch_id=december.pk, user=alice), outcomes={"checkout": "failed"})
    return batch


def overview_row(page, app: str):
    return page.locator("#result_list tbody tr").filter(
        has=page.locator("th.field-name", has_text=app)
    )


def fits(page) -> None:
    """Nothing sticks out to the right: no horizontal scrolling at this width, neither of the
    page nor of the list inside it (the admin lets a wide table scroll on its own)."""
    for element in ("document.documentElement", "document.querySelector('#changelist .results')"):
        overflow = page.evaluate(
            f"({element} || {{}}).scrollWidth - ({element} || {{}}).clientWidth"
        )
        assert not overflow > 0, f"{element}: {overflow}px wider than the window"


def test_the_overview_at_1280_px(new_page, screenshot, rolled_out):
    page = new_page("en")
    page.set_viewport_size({"width": WIDTH, "height": 900})
    log_in(page, "bob")

    page.goto("/admin/applications/application/")

    checkout = overview_row(page, "checkout")
    expect(checkout.locator(".field-pre_now")).to_contain_text("v2.4.0")
    expect(checkout.locator(".field-pre_now .rt-badge-behind")).to_have_count(0)
    expect(checkout.locator(".field-prod_now")).to_contain_text("v2.3.0")
    expect(checkout.locator(".field-prod_now .rt-badge-behind")).to_have_text("behind")
    expect(checkout.locator(".field-prod_now .rt-attempt")).to_contain_text(
        "Prod attempt with v2.4.0 failed"
    )
    expect(checkout.locator(".field-open_batches")).to_contain_text("December train")
    expect(checkout.locator(".field-open_batches")).to_contain_text("Waiting for prod")
    expect(checkout.locator(".field-latest_build")).to_contain_text("v2.4.0")
    expect(checkout.locator(".field-latest_build")).to_contain_text("build #42")
    expect(overview_row(page, "catalog").locator(".rt-badge-behind")).to_have_count(0)
    fits(page)
    screenshot(page, "applications-overview")

    page.get_by_role("link", name="Behind the latest build").first.click()
    expect(page.locator("#result_list tbody tr")).to_have_count(1)
    expect(overview_row(page, "checkout")).to_have_count(1)

    checkout = overview_row(page, "checkout")
    checkout.locator(".field-prod_now a.rt-now").click()
    expect(page).to_have_url(re.compile(r"/admin/deployments/deployment/\d+/change/$"))


def test_the_overview_in_chinese_fits_too(new_page, rolled_out):
    page = new_page("zh-Hans")
    page.set_viewport_size({"width": WIDTH, "height": 900})
    log_in(page, "bob")

    page.goto("/admin/applications/application/")

    headers = page.locator("#result_list thead")
    for words in ("预发布当前", "生产当前", "最新构建", "所在的未关闭批次"):
        expect(headers).to_contain_text(words)
    expect(overview_row(page, "checkout").locator(".field-prod_now .rt-badge-behind")).to_have_text(
        "落后"
    )
    fits(page)


def test_the_overview_follows_a_rollout_by_itself(new_page, batch, executor):
    page = new_page("en")
    page.set_viewport_size({"width": WIDTH, "height": 900})
    staff("bob")
    log_in(page, "bob")
    page.goto("/admin/applications/application/")
    checkout = overview_row(page, "checkout")
    expect(checkout.locator(".field-pre_now")).to_contain_text("never deployed")

    run_stage(start_pre_deploy(batch_id=batch.pk, user=engineer()))

    expect(checkout.locator(".field-pre_now")).to_contain_text("v2.3.0", timeout=FAST)
    expect(checkout.locator(".field-prod_now")).to_contain_text("never deployed")

    queued = start_prod_deploy(batch_id=batch.pk, user=engineer()).deployments
    failing = next(d for d in queued if d.release_app.application.name == "checkout")
    deployment_mark_running(deployment_id=failing.pk, job_name="rt-x", job_namespace="prod")
    apply_deployment_outcome(deployment_id=failing.pk, outcome="failed", error="BackoffLimit")

    expect(checkout.locator(".field-prod_now .rt-attempt")).to_contain_text(
        "Prod attempt with v2.3.0 failed", timeout=FAST
    )


def test_an_application_page_shows_the_same_and_its_recent_deployments(
    new_page, screenshot, rolled_out
):
    page = new_page("en")
    page.set_viewport_size({"width": WIDTH, "height": 900})
    log_in(page, "bob")
    page.goto("/admin/applications/application/")

    overview_row(page, "checkout").get_by_role("link", name="checkout").click()

    now = page.locator("table.rt-overview")
    expect(now).to_contain_text("Prod now")
    expect(now).to_contain_text("Prod attempt with v2.4.0 failed")
    expect(now).to_contain_text("December train")
    recent = page.locator("table.rt-deployments")
    expect(recent).to_have_count(2)
    expect(recent.first).to_contain_text("v2.4.0")
    expect(recent.last.locator("tbody tr")).to_have_count(2)  # v2.4.0 failed, v2.3.0 succeeded
    fits(page)
    screenshot(page, "application-page")
