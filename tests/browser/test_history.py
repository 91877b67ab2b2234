"""Each batch's and release's History page says who switched, started and cancelled, when and
why (the notes typed in the forms or sent to the API), in the reader's language."""

import pytest
from playwright.sync_api import expect
from rest_framework.authtoken.models import Token

from tests.browser.helpers import log_in, release_row
from tests.pages import staff

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_history_records_switches_rollouts_and_cancels(new_page, screenshot, batch, live_server):
    bob = staff("bob", "applications.deploy_batch")
    token = Token.objects.create(user=bob).key
    page = new_page("en")
    page.set_viewport_size({"width": 1280, "height": 800})
    log_in(page, "alice")

    # alice switches checkout in the admin, saying why
    page.goto(f"/admin/releases/batch/{batch.pk}/change/")
    release_row(page, "checkout").get_by_role("link", name="Switch version").click()
    page.get_by_label("Note (optional)").fill("Fixes the checkout timeout (INC-481).")
    page.locator("input[type=submit][value='Switch version']").click()
    expect(page.locator(".messagelist .success")).to_contain_text("Switched checkout")

    # bob starts the pre rollout through the API, then alice cancels in the admin
    answer = page.request.post(
        f"{live_server.url}/api/v1/batches/{batch.pk}/start-pre-deploy",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        data='{"note": "Payments signed off."}',
    )
    assert answer.status == 200, answer.text()
    page.goto(f"/admin/releases/batch/{batch.pk}/change/")
    page.get_by_role("link", name="Cancel batch").click()
    page.get_by_label("Note (optional)").fill("Superseded by the December train.")
    page.get_by_role("button", name="Yes, cancel the batch").click()
    expect(page.locator(".messagelist .success")).to_contain_text("Batch cancelled.")

    page.get_by_role("link", name="History").click()
    rows = page.locator("#change-history tbody tr")
    # The batch's creation comes first: the service records it, whoever called it.
    expect(rows).to_have_count(4)
    expect(rows.nth(0)).to_contain_text("Created the batch with")
    expect(rows.nth(1)).to_contain_text("alice")
    expect(rows.nth(1)).to_contain_text("Switched checkout from v2.3.0 to v2.4.0;")
    expect(rows.nth(1)).to_contain_text("Fixes the checkout timeout (INC-481).")
    expect(rows.nth(2)).to_contain_text("bob")
    expect(rows.nth(2)).to_contain_text("Started the pre rollout: 3 deployments queued.")
    expect(rows.nth(2)).to_contain_text("Payments signed off.")
    expect(rows.nth(3)).to_contain_text("alice")
    expect(rows.nth(3)).to_contain_text("Cancelled the batch and its 3 unfinished deployments.")
    expect(rows.nth(3)).to_contain_text("Superseded by the December train.")
    screenshot(page, "batch-history")

    # The same page for a reader of Chinese: the messages in Chinese, the notes as written.
    chinese = new_page("zh-hans")
    chinese.set_viewport_size({"width": 1280, "height": 800})
    log_in(chinese, "alice")
    chinese.goto(f"/admin/releases/batch/{batch.pk}/history/")
    rows_zh = chinese.locator("#change-history tbody tr")
    expect(rows_zh).to_have_count(4)
    expect(rows_zh.nth(0)).to_contain_text("已创建批次，包含 3 个应用")  # noqa: RUF001
    expect(rows_zh.nth(2)).to_contain_text("已开始预发布部署：已排队 3 个部署。")  # noqa: RUF001
    expect(rows_zh.nth(2)).to_contain_text("Payments signed off.")
    expect(rows_zh.nth(3)).to_contain_text("已取消批次及其 3 个未完成的部署。")
    expect(chinese.locator("#change-history thead")).to_contain_text("备注")
    screenshot(chinese, "batch-history-zh")

    checkout = batch.releases.get(application__name="checkout")
    page.goto(f"/admin/releases/releaseapp/{checkout.pk}/history/")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("alice")
    expect(rows.first).to_contain_text("Switched checkout from v2.3.0 to v2.4.0;")
    expect(rows.first).to_contain_text("Fixes the checkout timeout (INC-481).")
