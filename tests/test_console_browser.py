"""The console in a real browser (Chromium via Playwright): what a person sees and does.

Kept to a few journeys; each also refreshes the README's screenshots.
"""

from __future__ import annotations

import asyncio

import pytest

from app.console import registration
from app.web import create_app
from tests.browser import screenshot
from tests.console_support import point_at_github, sync_examples
from tests.support import wait_for


@pytest.fixture
async def pao_url(aiohttp_server, runtime, github_fake, tmp_path) -> str:
    """PAO without a GitHub App yet, its catalog synced, GitHub played by the fake."""
    return await start_pao(aiohttp_server, runtime, github_fake, tmp_path)


async def start_pao(aiohttp_server, runtime, github_fake, tmp_path, extra_files=None) -> str:
    await sync_examples(runtime, tmp_path, extra_files)
    point_at_github(runtime, github_fake, admin_teams=frozenset({"acme/platform"}))
    github_fake.add_team("acme", "customer-experience", ["sarah"])
    github_fake.add_team("acme", "platform", ["pat"])
    server = await aiohttp_server(create_app(runtime))
    return str(server.make_url("")).rstrip("/")


async def set_up_and_sign_in(page, pao_url: str, runtime, login: str, *, screenshots: bool = False) -> None:
    """/setup with the printed token → GitHub creates the App → sign in with GitHub as ``login``."""
    token = await registration.new_setup_token(runtime.pool)
    await page.goto(pao_url + "/")
    assert page.url == pao_url + "/setup"
    await page.get_by_label("Set-up token").fill(token)
    await page.get_by_role("button", name="Continue").click()
    await page.get_by_label("Organisation").fill("acme")
    if screenshots:
        await screenshot(page, "setup")
    await page.get_by_role("button", name="Register for this organisation").click()
    await page.get_by_role("button", name="Create the App on GitHub").click()
    # GitHub's page (the fake's): create the App, and GitHub sends the browser back.
    await page.get_by_role("button", name="Create GitHub App for acme").click()
    await page.wait_for_url(pao_url + "/setup/callback?*")
    assert "PAO is registered as a GitHub App" in await page.get_by_role("heading", level=1).inner_text()
    assert await page.get_by_role("link", name="Install it on your organisation").get_attribute("href") \
        == f"{runtime.settings.github_api_url}/apps/pao-test/installations/new"
    assert runtime.settings.app_mode
    if screenshots:
        await screenshot(page, "setup-done")

    await page.get_by_role("link", name="sign in with GitHub").click()
    await page.get_by_role("link", name="Sign in with GitHub").click()
    await page.get_by_label("Username or email address").fill(login)
    await page.get_by_role("button", name="Authorize").click()
    await page.wait_for_url(pao_url + "/catalog")


async def test_set_up_sign_in_and_browse_the_catalog(pao_url, runtime, browser_page):
    page = browser_page
    await set_up_and_sign_in(page, pao_url, runtime, "sarah", screenshots=True)
    assert "sarah (customer-experience)" in await page.locator("header").inner_text()
    await screenshot(page, "catalog")
    await page.emulate_media(color_scheme="dark")
    assert await page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(13, 17, 23)"
    await screenshot(page, "catalog-dark")
    await page.emulate_media(color_scheme="light")
    # The first Tab reaches the skip link, which jumps past the navigation.
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.textContent") == "Skip to content"

    await page.get_by_label("Name or text").fill("postgres")
    await page.get_by_label("Name or text").press("Enter")
    await page.wait_for_url("**/catalog?*q=postgres*")
    rows = page.locator("tbody tr")
    assert await rows.count() == 1
    await rows.locator('a[href="/catalog/items/postgres-database"]').click()
    await page.wait_for_url("**/catalog/items/postgres-database")

    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Catalog").click()
    await page.get_by_role("link", name="Bundles", exact=True).click()
    await page.locator('a[href="/catalog/bundles/full-stack-web-app"]').click()
    await page.wait_for_url("**/catalog/bundles/full-stack-web-app")
    await screenshot(page, "bundle")
    # A bundle's member links to its item; a tag links to the items carrying it.
    await page.get_by_role("link", name="eks-container-app").click()
    # The request form generated from the item's presentation: labelled inputs, hints.
    await page.get_by_role("link", name="Request this item").click()
    await page.get_by_label("app_name").fill("shop")
    await page.get_by_label("environment").select_option("staging")
    assert await page.get_by_label("replicas").input_value() == "2"
    await screenshot(page, "request-form")
    await page.go_back()
    await page.get_by_role("link", name="kubernetes").click()
    await page.wait_for_url("**/catalog?kind=items&tags=kubernetes")
    assert await page.locator("tbody tr").count() == 1
    # Admin pages are not in a developer's navigation.
    assert await page.get_by_role("link", name="Jobs").count() == 0


async def test_an_admin_retries_a_failed_job_and_reads_the_sync_runs(pao_url, runtime, browser_page):
    page = browser_page
    job_id = await runtime.pool.fetchval(
        """INSERT INTO jobs (task, args, status, attempts, max_attempts, finished_at, last_error)
           VALUES ('mirror.sync', '{}', 'failed', 5, 5, now(), 'OneDev answered 503') RETURNING id""")
    await set_up_and_sign_in(page, pao_url, runtime, "pat")
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Jobs").click()
    assert "OneDev answered 503" in await page.locator("tbody").inner_text()
    await screenshot(page, "admin-jobs")
    await page.get_by_role("button", name=f"Retry job {job_id}").click()
    await page.get_by_text(f"Job {job_id} is queued again.").wait_for()
    assert await runtime.pool.fetchval("SELECT status FROM jobs WHERE id = $1", job_id) == "todo"
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Sync runs").click()
    assert "completed" in await page.locator("main").inner_text()
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Deliveries").click()
    await screenshot(page, "admin-deliveries")


def hook_site(base: str) -> str:
    """An item provisioned by one HttpPost to ``base`` (the test's endpoint)."""
    return f'''\
name: "hook-site"
version: "1.0.0"
description: "A web site provisioned over HTTP"
owner: "platform-web-team"
presentation:
  fields:
    - {{name: "site_name", type: "string", required: true, help_text: "The site's name"}}
fulfillment:
  automation:
    steps:
      - id: "create"
        type: "HttpPost"
        config:
          url: "{base}/sites"
          body: {{name: "{{{{ site_name }}}}", team: "{{{{ requester.team }}}}"}}
        outputs: ["url"]
'''


HOOK_STACK = '''\
name: "hook-stack"
version: "1.0.0"
description: "A web site, with a cache if you want one"
owner: "platform-web-team"
bundle:
  required_items:
    - catalog_item: "hook-site"
      version: ">=1.0.0"
  optional_items:
    - catalog_item: "redis-cache"
      version: ">=1.0.0"
      default_enabled: false
presentation:
  bundle_fields:
    - {name: "solution_name", type: "string", required: true, regexp: "^[a-z][a-z0-9-]*$",
       help_text: "Lower-case letters, digits and dashes"}
'''


@pytest.fixture
async def hooks_pao_url(aiohttp_server, runtime, github_fake, tmp_path, endpoint) -> str:
    """PAO as ``pao_url``, its catalog with a bundle whose item is provisioned over HTTP."""
    return await start_pao(aiohttp_server, runtime, github_fake, tmp_path, {
        "catalog/web/hook-site.yaml": hook_site(endpoint.url), "catalog/bundles/hook-stack.yaml": HOOK_STACK})


async def test_a_bundle_request_corrected_then_watched_to_completion(hooks_pao_url, runtime, endpoint,
                                                                     worker, browser_page):
    page, pao_url = browser_page, hooks_pao_url
    endpoint.answer("/sites", (200, {"url": "https://portal.example.com"}))
    endpoint.hold["/sites"] = asyncio.Event()  # the step runs until the test lets it finish
    await set_up_and_sign_in(page, pao_url, runtime, "sarah")
    await page.get_by_role("link", name="Bundles", exact=True).click()
    await page.locator('a[href="/catalog/bundles/hook-stack"]').click()
    await page.get_by_role("link", name="Request this bundle").click()
    # The bundle's field, its item's, and the optional item behind its checkbox (left out).
    await page.get_by_label("solution_name").fill("Portal!")
    await page.get_by_label("site_name").fill("portal")
    assert not await page.get_by_label("Include redis-cache").is_checked()
    await page.get_by_role("button", name="Submit request").click()
    # The service refuses the name; the error is on its field, the rest is kept.
    solution = page.get_by_label("solution_name")
    assert await solution.get_attribute("aria-invalid") == "true"
    assert "does not match" in await page.locator("#f-bundle_parameters-solution_name-error").inner_text()
    assert await page.get_by_label("site_name").input_value() == "portal"
    await screenshot(page, "request-form-error")
    await solution.fill("portal")
    await page.get_by_role("button", name="Submit request").click()
    await page.wait_for_url(pao_url + "/requests/req-*")
    status = page.locator("#request-status")
    assert await status.inner_text() in ("submitted", "in_progress")
    # The page follows the request live (no reload): the step finishes, the page says so.
    endpoint.hold["/sites"].set()
    await page.locator("#request-status", has_text="completed").wait_for()
    assert await page.get_by_role("link", name="https://portal.example.com").count() == 1
    assert await page.get_by_role("status").inner_text() == "Request status: completed"
    await screenshot(page, "request-detail")
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Requests").click()
    assert "completed" in await page.locator("tbody tr").first.inner_text()
    await screenshot(page, "requests")
    [call] = endpoint.calls_to("/sites")
    assert call["json"] == {"name": "portal", "team": "customer-experience"}


async def test_a_requester_filters_the_list_opens_a_request_and_cancels_it(hooks_pao_url, runtime, endpoint,
                                                                          worker, browser_page):
    from app.requests.submit import submit_answer

    page, pao_url = browser_page, hooks_pao_url
    endpoint.answer("/sites", (200, {"url": "https://portal.example.com"}))
    endpoint.hold["/sites"] = asyncio.Event()  # the site's step keeps running until the test ends
    made = {}
    for name, body in (("site", {"catalog_item": "hook-site", "parameters": {"site_name": "portal"}}),
                       ("mysql", {"catalog_item": "mysql-database",
                                  "parameters": {"database_name": "orders"}})):
        status, created = await submit_answer(
            runtime.pool, body, requester={"user_id": "sarah", "team": "customer-experience"},
            submitted_by="sarah", secret_key=None, idempotency_key=None, settings=runtime.settings)
        assert status == 201, created
        made[name] = created["request_id"]

    async def settled():
        rows = await runtime.pool.fetch("SELECT status FROM service_requests ORDER BY id")
        return [r["status"] for r in rows] == ["in_progress", "failed"]  # no Jira for mysql's ticket
    await wait_for(settled, what="one request running, one failed")

    await set_up_and_sign_in(page, pao_url, runtime, "sarah")
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Requests").click()
    assert await page.locator("tbody tr").count() == 2
    await page.get_by_label("Status").select_option("in_progress")
    await page.get_by_label("Item").select_option("hook-site")
    await page.get_by_role("button", name="Show").click()
    await page.wait_for_url(pao_url + "/requests?status=in_progress&item=hook-site&bundle=")
    rows = page.locator("tbody tr")
    assert await rows.count() == 1 and made["site"] in await rows.first.inner_text()
    assert await page.get_by_label("Status").input_value() == "in_progress"  # the form keeps the filter
    await screenshot(page, "requests-filtered")
    await page.get_by_role("link", name=made["site"]).click()
    await page.wait_for_url(pao_url + f"/requests/{made['site']}")
    await page.get_by_role("button", name="Cancel request").click()
    await page.wait_for_url(pao_url + f"/requests/{made['site']}?done=cancelled")
    notice = page.locator("#notice")
    assert await notice.inner_text() == "Request cancelled: its unfinished steps will not run."
    assert await page.locator("#request-status").inner_text() == "cancelled"
    assert await page.get_by_role("button", name="Cancel request").count() == 0
    await screenshot(page, "request-cancelled")
    endpoint.hold["/sites"].set()
