"""pytest fixtures for browser tests: Playwright driving the system's Chromium.

Playwright's own browser download is not used; ``./scripts/test`` installs the
distribution's ``chromium`` (or says how to). Without a Chromium these tests fail
with that advice: a browser test that silently skips would prove nothing.

- ``browser_page``: a fresh Chromium page (1280x800, light colour scheme).
- ``screenshot(page, name)``: takes ``docs/screenshots/<name>.png`` for the README; writes it
  when missing, or with ``PAO_UPDATE_SCREENSHOTS=1`` when the page looks different (times,
  dates, request ids and GUIDs are drawn as fixed stand-ins).
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


# Text that differs on every run, and the fixed stand-in drawn in its place (same shape).
VOLATILE = [
    (r"\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([+-]\d{2}:\d{2}|Z)?)?", "2026-01-02 03:04"),
    (r"\b\d{2}:\d{2}:\d{2}\b", "03:04:05"),
    (r"req-\d{8}-[a-z0-9]{8}", "req-20260102-k3x9q2ma"),
    (r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "8f1c2d3e-4b5a-4c6d-9e8f-0a1b2c3d4e5f"),
    # git commits (their ids change with the commit time): in full, and as the pages shorten them
    (r"\b[0-9a-f]{40}\b", "3f2a9c1e7b4d5a6f8e0c1b2a3d4e5f6a7b8c9d0e"),
    (r"\b[0-9a-f]{12}\b", "3f2a9c1e7b4d"),
]

# Replace volatile text in every text node (remembering it), or put it back.
_STABILISE = """([patterns, restore]) => {
  if (restore) { for (const [node, text] of window.__paoVolatile || []) node.nodeValue = text; return; }
  window.__paoVolatile = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    let text = node.nodeValue;
    for (const [pattern, stand_in] of patterns) text = text.replace(new RegExp(pattern, "g"), stand_in);
    if (text !== node.nodeValue) { window.__paoVolatile.push([node, node.nodeValue]); node.nodeValue = text; }
  }
}"""


async def screenshot(page: Any, name: str) -> None:
    """Keep the README's screenshot ``name`` current, rewriting the file only when the page changed."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.evaluate(_STABILISE, [VOLATILE, False])
    # A focused input's caret can still show (it blinks): no focus, no caret.
    await page.evaluate("document.activeElement && document.activeElement.blur()")
    try:
        png = await page.screenshot(full_page=True, animations="disabled", caret="hide")
    finally:
        await page.evaluate(_STABILISE, [VOLATILE, True])
    path = SCREENSHOTS / f"{name}.png"
    # Another machine's fonts and rasteriser draw the same page in other bytes: a plain
    # test run writes only missing screenshots, and leaves a fresh clone's tree clean.
    if not path.exists() or (os.environ.get("PAO_UPDATE_SCREENSHOTS") and path.read_bytes() != png):
        path.write_bytes(png)
