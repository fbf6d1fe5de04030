"""A real browser for the page tests (docs/pages.md): Playwright driving
Debian's Chromium (``/usr/bin/chromium``, or ``BPMOS_CHROMIUM``); nothing is
downloaded. Without Chromium the browser tests skip, saying how to install it
(``.ci/run`` installs it, so CI always runs them).

* ``browser`` (the fixture is in tests/conftest.py; do not import it into a
  test module): one headless Chromium per test module;
* ``sign_in(browser, base_url, user, viewport=...)``: a new browser context
  signed in through the real ``/login/`` page, and its page (against a daphne
  subprocess, give the user ``server_knows_password(user)`` first);
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


def launch_browser():
    """The generator behind the ``browser`` fixture (tests/conftest.py: one
    registration, so one Playwright per process: a second sync Playwright in
    the same thread refuses to start)."""
    if not CHROMIUM or not Path(CHROMIUM).exists():
        pytest.skip("Chromium is not installed: apt-get install chromium (see README)")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread, so Django's ORM
    # would refuse every query of the tests ("async context"); the tests' ORM
    # calls are plain synchronous ones, so allowing them is safe here.
    # Only while the browser is up: the tests after it run as usual.
    before = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
            )
            try:
                yield chromium
            finally:
                chromium.close()
    finally:
        if before is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = before


def server_knows_password(user):
    """``user`` with a password hash a server subprocess (daphne) can check:
    the tests hash with MD5 (conftest), which only the test process's settings
    accept. A PBKDF2 hash of few iterations verifies anywhere (and is upgraded
    on the first sign-in)."""
    from django.contrib.auth.hashers import PBKDF2PasswordHasher

    user.password = PBKDF2PasswordHasher().encode(PASSWORD, "pagetests", 1000)
    user.save(update_fields=["password"])
    return user


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
