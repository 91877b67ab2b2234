"""What the browser tests do the way a person (or Drone) would."""

from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from builds.notifications import AppImage, BuildNotification
from releases.services import ingest_build_notification


def built(number: int, apps: dict[str, str], commit: str) -> None:
    ingest_build_notification(
        notification=BuildNotification(
            number=number,
            status="success",
            apps=tuple(AppImage(name, tag) for name, tag in apps.items()),
            repo="shop/platform",
            commit=commit,
            branch="main",
            link=f"https://drone.example.com/shop/platform/{number}",
        )
    )


def engineer():
    """alice, who made the batch fixture's batch and may roll it out."""
    return get_user_model().objects.get(username="alice")


def log_in(page, username: str) -> None:
    page.goto("/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", "pw")
    page.locator("input[type=submit]").click()
    expect(page.locator("#user-tools")).to_contain_text(username)


def release_row(page, app: str):
    return page.locator("tr.form-row").filter(has=page.locator(".field-release_link", has_text=app))
