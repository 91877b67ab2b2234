"""Each batch's and release's History page says who switched, started and cancelled, and when:
from the admin and from the API alike."""

import pytest
from playwright.sync_api import expect
from rest_framework.authtoken.models import Token

from tests.admin.pages import staff
from tests.browser.helpers import log_in, release_row

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_history_records_switches_rollouts_and_cancels(new_page, screenshot, batch, live_server):
    bob = staff("bob", "applications.deploy_batch")
    token = Token.objects.create(user=bob).key
    page = new_page("en")
    log_in(page, "alice")

    # alice switches checkout in the admin
    page.goto(f"/admin/releases/batch/{batch.pk}/change/")
    release_row(page, "checkout").get_by_role("link", name="Switch version").click()
    page.locator("input[type=submit][value='Switch version']").click()
    expect(page.locator(".messagelist .success")).to_contain_text("Switched checkout")

    # bob starts the pre rollout through the API, then alice cancels in the admin
    answer = page.request.post(
        f"{live_server.url}/api/v1/batches/{batch.pk}/start-pre-deploy",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        data="{}",
    )
    assert answer.status == 200, answer.text()
    page.goto(f"/admin/releases/batch/{batch.pk}/change/")
    page.get_by_role("link", name="Cancel batch").click()
    page.get_by_role("button", name="Yes, cancel the batch").click()
    expect(page.locator(".messagelist .success")).to_contain_text("Batch cancelled.")

    page.get_by_role("link", name="History").click()
    rows = page.locator("#change-history tbody tr")
    # The batch's creation comes first: the service records it, whoever called it.
    expect(rows).to_have_count(4)
    expect(rows.nth(0)).to_contain_text("Created the batch with")
    expect(rows.nth(1)).to_contain_text("alice")
    expect(rows.nth(1)).to_contain_text("Switched checkout from v2.3.0 to v2.4.0.")
    expect(rows.nth(2)).to_contain_text("bob")
    expect(rows.nth(2)).to_contain_text("Started the pre rollout. 3 deployment(s) queued.")
    expect(rows.nth(3)).to_contain_text("alice")
    expect(rows.nth(3)).to_contain_text("Cancelled the batch. 3 unfinished deployment(s)")
    screenshot(page, "batch-history")

    checkout = batch.releases.get(application__name="checkout")
    page.goto(f"/admin/releases/releaseapp/{checkout.pk}/history/")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("alice")
    expect(rows.first).to_contain_text("Switched checkout from v2.3.0 to v2.4.0.")
