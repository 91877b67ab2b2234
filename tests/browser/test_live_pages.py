"""Pages left open follow what happens: new tags, rollouts and stage changes appear by themselves,
without disturbing what the person is doing, and cost a 304 when nothing changed."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from deployments.models import Deployment
from releases.services import start_pre_deploy
from tests.browser.helpers import built, engineer, log_in, release_row
from tests.helpers import run_deployment

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

FAST = 3_000  # ms: the promise


def test_the_batch_page_shows_a_new_tag_and_the_rollout_by_itself(new_page, batch):
    page = new_page("en")
    log_in(page, "alice")
    page.goto(f"/admin/releases/batch/{batch.pk}/change/")
    catalog = release_row(page, "catalog")
    expect(catalog.locator(".rt-badge-new")).to_have_count(0)

    built(43, {"catalog": "v5.2.0"}, "d00d5eed01")

    expect(catalog.locator(".field-latest_tag")).to_contain_text("v5.2.0", timeout=FAST)
    expect(catalog.locator(".rt-badge-new")).to_have_text("new tag")

    start_pre_deploy(batch_id=batch.pk, user=engineer())

    expect(page.locator(".field-batch_status")).to_contain_text("Deploying to pre", timeout=FAST)
    expect(catalog.locator(".field-deployments_now")).to_contain_text("Pending")
    expect(catalog.get_by_role("button", name="Switch version")).to_be_disabled()
    expect(page.locator("[data-rollout=start_pre_deploy]")).to_have_count(0)


def test_nothing_changed_costs_a_304(new_page, batch):
    page = new_page("en")
    log_in(page, "alice")

    with page.expect_response(lambda r: "/live/" in r.url and r.status == 304, timeout=FAST * 2):
        page.goto(f"/admin/releases/batch/{batch.pk}/change/")


def test_the_release_list_updates_and_keeps_the_selection(new_page, batch):
    page = new_page("en")
    log_in(page, "alice")
    page.goto("/admin/releases/releaseapp/")
    search = release_list_row(page, "search")
    search.locator("input.action-select").check()
    page.select_option("select[name=action]", "switch_to_latest")

    built(44, {"search": "v1.0.0"}, "5ea4c4b001")

    expect(search.locator(".field-latest_tag")).to_contain_text("v1.0.0", timeout=FAST)
    expect(search.locator(".rt-badge-new")).to_have_text("new tag")
    expect(search.locator("input.action-select")).to_be_checked()
    expect(page.locator("select[name=action]")).to_have_value("switch_to_latest")

    start_pre_deploy(batch_id=batch.pk, user=engineer())

    expect(search.locator(".field-batch_with_status")).to_contain_text(
        "Deploying to pre", timeout=FAST
    )
    expect(search.locator("input.action-select")).to_be_checked()


def test_the_release_page_shows_deployment_progress(new_page, batch):
    page = new_page("en")
    log_in(page, "alice")
    checkout = batch.releases.get(application__name="checkout")
    page.goto(f"/admin/releases/releaseapp/{checkout.pk}/change/")
    expect(page.locator(".object-tools")).to_contain_text("Switch version")

    start_pre_deploy(batch_id=batch.pk, user=engineer())

    expect(page.locator(".field-release_status")).to_contain_text("Deploying to pre", timeout=FAST)
    expect(page.locator("table.rt-deployments")).to_contain_text("v2.3.0")
    expect(page.locator(".rt-blocked")).to_contain_text("switch once its stage has finished")


def release_list_row(page, app: str):
    return page.locator("#result_list tbody tr").filter(
        has=page.locator(".field-application_name", has_text=app)
    )


@pytest.mark.parametrize(
    ("language", "three_minutes_ago", "just_now"),
    [("en", "3 minutes ago", "just now"), ("zh-hans", "3分钟前", "刚刚")],
)
def test_the_applications_list_follows_and_its_times_are_relative(
    new_page, batch, language, three_minutes_ago, just_now
):
    for deployment in start_pre_deploy(batch_id=batch.pk, user=engineer()).deployments:
        run_deployment(deployment)
    Deployment.objects.filter(release_app__application__name="catalog").update(
        finished_at=timezone.now() - timedelta(minutes=3, seconds=5)
    )
    page = new_page(language)
    log_in(page, "alice")
    page.goto("/admin/applications/application/")
    row = page.locator("#result_list tbody tr").filter(has_text="catalog")
    # The browser writes the words, from the absolute time in the markup, in the page's language.
    expect(row.locator(".field-pre_now time")).to_have_text(three_minutes_ago)

    built(43, {"search": "v1.0.0"}, "d00d5eed02")

    search = page.locator("#result_list tbody tr").filter(has_text="search")
    expect(search.locator(".field-latest_build")).to_contain_text("v1.0.0", timeout=FAST)
    expect(search.locator(".field-latest_build time")).to_have_text(just_now)
