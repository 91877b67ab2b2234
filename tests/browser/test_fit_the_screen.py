"""At 1280 x 800 every list and change page fits: no results table wider than its container,
and a tag is never broken over two lines."""

import pytest
from playwright.sync_api import expect

from applications.models import Application
from deployments.models import Deployment
from releases.services import start_pre_deploy, switch_version
from tests.browser.helpers import built, engineer, log_in
from tests.helpers import run_stage

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

OVERFLOWS = """() => {
  const tables = document.querySelectorAll(
    "#result_list, .inline-group table, #content-main fieldset table, #change-history");
  return [...tables].map(table => {
    const box = table.parentElement;
    return {table: table.id || table.className || table.parentElement.className,
            width: Math.round(table.scrollWidth), room: Math.round(box.clientWidth)};
  }).filter(t => t.width > t.room + 1);
}"""
WRAPPED_TAGS = """() => [...document.querySelectorAll("code.rt-tag")]
  .filter(tag => tag.getClientRects().length > 1).map(tag => tag.textContent)"""


@pytest.fixture
def busy(batch):
    """Every page with rows in it: deployments, a superseded one, long tags."""
    built(43, {"search": "v0.10.0-rc.1-b105"}, "0ddba11ed5")
    run_stage(start_pre_deploy(batch_id=batch.pk, user=engineer()))
    checkout = batch.releases.get(application__name="checkout")
    switch_version(release_id=checkout.pk, user=batch.created_by)
    return batch


def pages(batch) -> list[str]:
    checkout = batch.releases.get(application__name="checkout")
    deployment = Deployment.objects.filter(release_app=checkout).order_by("pk").first()
    application = Application.objects.get(name="checkout")
    build = checkout.latest_build
    return [
        "/admin/releases/batch/",
        f"/admin/releases/batch/{batch.pk}/change/",
        "/admin/releases/releaseapp/",
        f"/admin/releases/releaseapp/{checkout.pk}/change/",
        "/admin/applications/application/",
        f"/admin/applications/application/{application.pk}/change/",
        "/admin/builds/build/",
        f"/admin/builds/build/{build.pk}/change/",
        "/admin/deployments/deployment/",
        f"/admin/deployments/deployment/{deployment.pk}/change/",
        f"/admin/releases/batch/{batch.pk}/history/",
    ]


@pytest.mark.parametrize("language", ["en", "zh-Hans"])
def test_every_page_fits_1280_pixels(new_page, busy, language):
    page = new_page(language)
    page.set_viewport_size({"width": 1280, "height": 800})
    log_in(page, "alice")

    problems = {}
    for url in pages(busy):
        page.goto(url)
        expect(page.locator("#content")).to_be_visible()
        overflowing = page.evaluate(OVERFLOWS)
        wrapped = page.evaluate(WRAPPED_TAGS)
        if overflowing or wrapped:
            problems[url] = {"overflowing": overflowing, "wrapped tags": wrapped}

    assert problems == {}
