"""Teams in the admin: a team member's Switch buttons, and granting on an application's page."""

import pytest
from django.contrib.auth.models import Group
from guardian.shortcuts import assign_perm
from playwright.sync_api import expect

from applications.models import Application
from tests.browser.helpers import log_in, release_row
from tests.pages import staff

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREEN = {"width": 1280, "height": 800}


@pytest.fixture
def payments():
    """Team Payments, with carol in it; the team may switch checkout only."""
    team = Group.objects.create(name="Payments")
    staff("carol").groups.add(team)
    return team


def test_a_team_member_may_switch_their_app_only(new_page, batch, payments):
    assign_perm("applications.switch_version", payments, Application.objects.get(name="checkout"))
    page = new_page("en")
    page.set_viewport_size(SCREEN)
    log_in(page, "carol")

    page.goto(f"/admin/releases/batch/{batch.pk}/change/")

    expect(release_row(page, "checkout").get_by_role("link", name="Switch version")).to_be_visible()
    catalog = release_row(page, "catalog")
    expect(catalog.get_by_role("button", name="Switch version")).to_be_disabled()
    expect(catalog.locator(".rt-reason")).to_have_text(
        "You need the switch_version permission for catalog."
    )
    # The rollout needs deploy_batch for every app of the batch: shown, disabled, and why.
    expect(page.locator("[data-rollout=start_pre_deploy]")).to_be_disabled()
    expect(page.locator(".rt-tools .rt-reason")).to_have_text(
        "You need the deploy_batch permission for catalog, checkout, search."
    )


def test_a_team_member_reads_the_reason_in_chinese(new_page, batch, payments):
    page = new_page("zh-hans")
    page.set_viewport_size(SCREEN)
    log_in(page, "carol")

    page.goto(f"/admin/releases/batch/{batch.pk}/change/")

    expect(release_row(page, "catalog").locator(".rt-reason")).to_have_text(
        "您需要 catalog 的 switch_version 权限。"
    )


def test_the_grants_page_grants_a_team_a_permission(new_page, screenshot, batch, payments):
    staff("grace", "applications.grant_access")
    search = Application.objects.get(name="search")
    page = new_page("en")
    page.set_viewport_size(SCREEN)
    log_in(page, "grace")

    page.goto(f"/admin/applications/application/{search.pk}/change/")
    page.get_by_role("link", name="Grants").click()
    page.fill("#id_group", "Payments")
    page.get_by_role("button", name="Manage group").click()
    options = page.locator("input[name=permissions]")
    expect(options).to_have_count(4)  # the working permissions, nothing else
    page.get_by_label("switch_version").check()
    page.get_by_label("deploy_batch").check()
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".messagelist .success")).to_have_text("Permissions saved.")

    page.goto(f"/admin/applications/application/{search.pk}/permissions/")
    expect(page.locator("h1")).to_have_text("Grants for search")
    groups = page.locator("#content-main table").nth(1)
    expect(groups).to_contain_text("Payments")
    expect(groups.locator("th")).to_have_count(6)  # group, the four permissions, action
    screenshot(page, "grants")
    page.goto(f"/admin/applications/application/{search.pk}/change/")
    holders = page.locator("#rt-holders")
    expect(holders.locator("tr[data-permission=switch_version]")).to_contain_text("Payments")
    expect(holders.locator("tr[data-permission=deploy_batch]")).to_contain_text("Payments")
    expect(holders.locator("tr[data-permission=add_hold]")).to_contain_text("—")


def test_the_grants_page_is_refused_without_grant_access(new_page, batch, payments):
    search = Application.objects.get(name="search")
    page = new_page("en")
    log_in(page, "carol")

    page.goto(f"/admin/applications/application/{search.pk}/change/")
    expect(page.get_by_role("link", name="Grants")).to_have_count(0)
    response = page.goto(f"/admin/applications/application/{search.pk}/permissions/")
    assert response.status == 403
