"""A real browser for the page tests (docs/pages.md): Playwright driving
Debian's Chromium (``/usr/bin/chromium``, or ``BPMOS_CHROMIUM``); nothing is
downloaded. Without Chromium the browser tests skip, saying how to install it
(``.ci/run`` installs it, so CI always runs them).

* ``browser``: one headless Chromium per test process;
* ``sign_in(browser, base_url, user, viewport=...)``: a new browser context
  signed in through the real ``/login/`` page, and its page;
* ``save_screens(page, name)``: the page at 1920x1080 and 390x844, as PNGs in
  ``BPMOS_SCREENS_DIR`` (``docs/screens`` refreshes the committed ones) or,
  by default, under the test run's temporary directory.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import PASSWORD

CHROMIUM = os.environ.get("BPMOS_CHROMIUM") or shutil.which("chromium") or ""
# As the machine's own probe starts it: no sandbox as root, no GPU, and no
# background networking (the closed network refuses Google's hosts).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
WALL = {"width": 1920, "height": 1080}
PHONE = {"width": 390, "height": 844}


# One Playwright and one Chromium per test process. Each test module imports
# ``browser``, which makes a fixture of that module's own: they share these, so
# a second module does not start a second Playwright in the same thread (which
# Playwright refuses: "Sync API inside the asyncio loop").
_shared: dict = {"users": 0, "playwright": None, "browser": None}


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM or not Path(CHROMIUM).exists():
        pytest.skip("Chromium is not installed: apt-get install chromium (see README)")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread, so Django's ORM
    # would refuse every query of the tests ("async context"); the tests' ORM
    # calls are plain synchronous ones, so allowing them is safe here.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    if _shared["users"] == 0:
        playwright = sync_playwright().start()
        _shared["playwright"] = playwright
        _shared["browser"] = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
    _shared["users"] += 1
    try:
        yield _shared["browser"]
    finally:
        _shared["users"] -= 1
        if _shared["users"] == 0:
            try:
                _shared["browser"].close()
            finally:
                _shared["playwright"].stop()
                _shared.update(playwright=None, browser=None)


def sign_in(browser, base_url: str, user, *, viewport=WALL, next_path: str = "/"):
    """A fresh context signed in as ``user`` through ``/login/``; returns
    ``(context, page)`` with the page on ``next_path``."""
    context = browser.new_context(base_url=base_url, viewport=viewport)
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.goto(f"/login/?next={next_path}")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")
    return context, page


def screens_dir() -> Path:
    configured = os.environ.get("BPMOS_SCREENS_DIR")
    if configured:
        path = Path(configured)
    else:
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        path = Path(os.environ.get("TMPDIR", "/tmp")) / f"bpmos-screens-{worker}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def save_screens(page, name: str) -> list[Path]:
    """``name``-1920x1080.png and ``name``-390x844.png of the page as it is
    now (the viewport is put back afterwards)."""
    saved = []
    before = page.viewport_size
    for size in (WALL, PHONE):
        page.set_viewport_size(size)
        page.wait_for_timeout(150)  # let the layout settle
        path = screens_dir() / f"{name}-{size['width']}x{size['height']}.png"
        page.screenshot(path=str(path), full_page=False)
        saved.append(path)
    if before:
        page.set_viewport_size(before)
    return saved
