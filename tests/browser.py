"""pytest fixtures for browser tests: Playwright driving the system's Chromium.

Playwright's own browser download is not used; ``./scripts/test`` installs the
distribution's ``chromium`` (or says how to). Without a Chromium these tests fail
with that advice: a browser test that silently skips would prove nothing.

- ``browser_page``: a fresh Chromium page (1280x800, light colour scheme).
- ``screenshot(page, name)``: saves ``docs/screenshots/<name>.png`` for the README.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"


def chromium_path() -> str:
    """The Chromium to drive: ``PAO_TEST_CHROMIUM``, else ``chromium`` on PATH; else the test fails."""
    configured = os.environ.get("PAO_TEST_CHROMIUM")
    found = configured or shutil.which("chromium") or shutil.which("chromium-browser")
    if not found or not Path(found).exists():
        pytest.fail("the console's browser tests need Chromium: run ./scripts/test (it installs "
                    "Debian's chromium package when run as root), or `apt-get install chromium`, "
                    "or set PAO_TEST_CHROMIUM to a Chromium binary", pytrace=False)
    return found


@pytest.fixture
async def browser_page() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium_path())
        context = await browser.new_context(viewport={"width": 1280, "height": 800}, color_scheme="light")
        context.set_default_timeout(15_000)
        page = await context.new_page()
        try:
            yield page
        finally:
            await browser.close()


async def screenshot(page: Any, name: str) -> None:
    """Keep the README's screenshot ``name`` current."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
