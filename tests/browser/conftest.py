"""Headless Chromium (Debian's package, never a downloaded browser) driven by Playwright."""

import os
from pathlib import Path

import pytest

from releases.services import create_batch
from releases.services.batches import AppChoice
from tests.browser.helpers import built
from tests.pages import staff

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@pytest.fixture(scope="module")
def browser():
    """One Chromium per module, closed as soon as its tests are done (the machine is small)."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium package")
    from playwright.sync_api import sync_playwright

    with pytest.MonkeyPatch.context() as patch, sync_playwright() as playwright:
        # Playwright's sync API keeps an event loop running in this thread; the tests' own ORM
        # calls are synchronous and safe, so Django's async guard must not refuse them.
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def new_page(browser, live_server):
    """`new_page(language)`: a fresh browser, 1280 x 800, whose user reads `language`."""
    contexts = []

    def make(language: str = "en"):
        context = browser.new_context(
            base_url=live_server.url,
            locale=language,
            extra_http_headers={"Accept-Language": language},
            # The screen the admin must fit, and the README's screenshots are taken at.
            viewport={"width": 1280, "height": 800},
        )
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def screenshot():
    """Save a screenshot for the README when UPDATE_SCREENSHOTS=1, else nowhere."""

    def save(page, name: str) -> None:
        if os.environ.get("UPDATE_SCREENSHOTS"):
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)

    return save


@pytest.fixture
def batch(executor):
    """ "November train": checkout has a newer tag than the one chosen; the others are current."""
    engineer = staff("alice", "applications.switch_version", "applications.deploy_batch")
    built(41, {"checkout": "v2.3.0", "catalog": "v5.1.2", "search": "v0.9.4"}, "8f2c1d7e4b")
    batch = create_batch(
        name="November train",
        apps=[AppChoice("catalog"), AppChoice("checkout"), AppChoice("search")],
        user=engineer,
    ).batch
    built(42, {"checkout": "v2.4.0"}, "c41a9e03d2")
    return batch
