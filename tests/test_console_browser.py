"""The console in a real browser (Chromium via Playwright): what a person sees and does.

Kept to a few journeys; each also refreshes the README's screenshots.
"""

from __future__ import annotations

from app.web import create_app
from tests.browser import screenshot
from tests.console_support import sync_examples


async def test_browse_the_catalog_by_keyboard_search_and_tag(aiohttp_server, runtime, tmp_path, browser_page):
    await sync_examples(runtime, tmp_path)
    server = await aiohttp_server(create_app(runtime))
    page = browser_page
    await page.goto(str(server.make_url("/catalog")))
    # The first Tab reaches the skip link, which jumps past the navigation.
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.textContent") == "Skip to content"
    await screenshot(page, "catalog")

    await page.get_by_label("Name or text").fill("postgres")
    await page.get_by_label("Name or text").press("Enter")
    await page.wait_for_url("**/catalog?*q=postgres*")
    rows = page.locator("tbody tr")
    assert await rows.count() == 1
    await rows.locator('a[href="/catalog/items/postgres-database"]').click()
    await page.wait_for_url("**/catalog/items/postgres-database")
    assert await page.get_by_role("heading", level=1).inner_text()

    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Catalog").click()
    await page.get_by_role("link", name="Bundles", exact=True).click()
    await page.locator('a[href="/catalog/bundles/full-stack-web-app"]').click()
    await page.wait_for_url("**/catalog/bundles/full-stack-web-app")
    await screenshot(page, "bundle")
    # A bundle's member links to its item; a tag links to the items carrying it.
    await page.get_by_role("link", name="eks-container-app").click()
    await page.get_by_role("link", name="kubernetes").click()
    await page.wait_for_url("**/catalog?kind=items&tags=kubernetes")
    assert await page.locator("tbody tr").count() == 1
