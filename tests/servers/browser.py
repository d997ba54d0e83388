"""A real browser for tests: Debian's Chromium driven by Playwright's async API.

The async API because the tests run in pytest-asyncio's session event loop
(``asyncio_mode = "auto"``); Playwright's sync API refuses to run inside a running loop.
One Chromium per session (``browser``); each test gets a fresh context and page
(``page``), so cookies and storage never leak between tests.

Chromium is ``/usr/bin/chromium`` (``scripts/setup.sh --tests`` installs it). Nothing here
downloads a browser; if Chromium is missing the fixture errors, loudly, never skips.
``screenshot(page, name)`` saves a PNG under the artefacts folder (``A4C_TEST_ARTIFACTS``,
default ``.artifacts/`` in the project root); a test using ``page`` that fails leaves
one too (``failed-<test id>.png``), to see what the browser showed.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator, Generator
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

CHROMIUM = Path("/usr/bin/chromium")
# Without these Chromium reaches for the network at start (component updates, sync,
# QUIC probes) and GPU/sandbox features a container lacks.
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
PROJECT_ROOT = Path(__file__).resolve().parents[2]
# Playwright's own timeout (30 s) outlasts a test's patience on a loopback server.
DEFAULT_TIMEOUT_MS = 10_000


def artifacts_dir() -> Path:
    """Where test artefacts go: ``$A4C_TEST_ARTIFACTS`` or ``<project>/.artifacts``."""
    configured = os.environ.get("A4C_TEST_ARTIFACTS")
    return Path(configured) if configured else PROJECT_ROOT / ".artifacts"


async def screenshot(page: Page, name: str) -> Path:
    """Save a full-page PNG of ``page`` as ``<artefacts>/screenshots/<name>.png``.

    ``name`` is made file-safe (``"accept/expired link"`` -> ``accept-expired-link``);
    returns the path written."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.") or "screenshot"
    path = artifacts_dir() / "screenshots" / f"{safe}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(path), full_page=True)
    return path


_CALL_FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Remember whether the test itself failed, for the ``page`` fixture's teardown."""
    report = yield
    if report.when == "call":
        item.stash[_CALL_FAILED] = report.failed
    return report


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    """Headless Chromium from Debian for the whole session."""
    if not os.access(CHROMIUM, os.X_OK):
        raise RuntimeError(
            f"{CHROMIUM} is required for the browser tests but is missing: "
            "run scripts/setup.sh --tests (apt-get install chromium chromium-driver)"
        )
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=list(CHROMIUM_ARGS)
        )
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture
async def browser_context(browser: Browser) -> AsyncIterator[BrowserContext]:
    """A fresh context (own cookies, storage) for one test."""
    context = await browser.new_context()
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    try:
        yield context
    finally:
        await context.close()


@pytest.fixture
async def page(
    browser_context: BrowserContext, request: pytest.FixtureRequest
) -> AsyncIterator[Page]:
    """A fresh page in the test's own context (closed with the context); screenshotted
    if the test fails."""
    page = await browser_context.new_page()
    yield page
    if request.node.stash.get(_CALL_FAILED, False) and not page.is_closed():
        await screenshot(page, f"failed-{request.node.nodeid}")
