"""The console's request pages: a request made from the form, followed to completion on its
page, the team's list, the live event stream, and nobody else's requests."""

from __future__ import annotations

import re

import pytest

from app.requests.submit import submit_answer
from app.web import create_app
from tests.console_support import sign_in, with_console
from tests.support import wait_for


@pytest.fixture
async def console(hooks, endpoint, worker, runtime, aiohttp_client):
    """A signed-in console client over the hook-app catalog, with workers running steps."""
    runtime.settings = with_console(runtime.settings)
    client = await aiohttp_client(create_app(runtime))
    sign_in(client, runtime)
    return client


async def request_status(pool, request_id: str, wanted: str) -> None:
    async def check():
        return await pool.fetchval("SELECT status FROM service_requests WHERE request_id = $1",
                                   request_id) == wanted or None
    await wait_for(check, timeout=20, what=f"request {wanted}")


async def submit_form(client, path: str, fields: dict[str, str]):
    page = await (await client.get(path)).text()
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    return await client.post(path, data={"csrf_token": token, **fields}, allow_redirects=False)


async def test_a_request_from_the_form_is_followed_to_completion_on_its_page(console, endpoint, pool):
    endpoint.answer("/create", (200, {"endpoint": "https://shop.example.com"}))
    endpoint.answer("/notify", (200, {}))
    endpoint.answer("/audit", (201, {}))
    resp = await submit_form(console, "/catalog/items/hook-app/request", {"parameters.app_name": "shop",
                                                                          "parameters.token": "tok-abcdef"})
    assert resp.status == 303
    href = resp.headers["Location"]
    request_id = href.removeprefix("/requests/")
    await request_status(pool, request_id, "completed")
    page = await (await console.get(href)).text()
    assert 'id="request-status">completed<' in page
    for step in ("hook-app.create", "hook-app.notify", "hook-app.audit"):
        assert f"<code>{step}</code>" in page
    assert '<a href="https://shop.example.com">' in page  # an output that is a URL is a link
    assert f'<a href="{href}">Refresh</a>' in page  # readable without JavaScript
    listing = await (await console.get("/requests")).text()
    assert f'<a href="{href}">{request_id}</a>' in listing
    # The live stream ends once the request has: everything it did, then the end.
    stream = await console.get(f"{href}/events")
    assert stream.headers["Content-Type"].startswith("text/event-stream")
    events = await stream.text()
    assert events.startswith("id: ") and "event: submitted" in events
    assert '"to_status": "completed"' in events.rsplit("event: status", 1)[1]
    resumed = await console.get(f"{href}/events", headers={"Last-Event-ID": "999999999"})
    assert await resumed.text() == ""


async def test_other_teams_requests_are_neither_listed_nor_shown(console, runtime, pool):
    status, theirs = await submit_answer(
        pool, {"catalog_item": "hook-app", "parameters": {"app_name": "pay"}},
        requester={"user_id": "bob", "team": "payments"}, submitted_by="bob",
        secret_key=None, idempotency_key=None, settings=runtime.settings)
    assert status == 201
    listing = await (await console.get("/requests")).text()
    assert theirs["request_id"] not in listing and "No requests yet." in listing
    for path in (f"/requests/{theirs['request_id']}", f"/requests/{theirs['request_id']}/events",
                 "/requests/req-nope"):
        resp = await console.get(path)
        assert resp.status == 404 and "text/html" in resp.headers["Content-Type"]
    # A teammate's request is the team's: listed and readable.
    status, mate = await submit_answer(
        pool, {"catalog_item": "hook-app", "parameters": {"app_name": "mate"}},
        requester={"user_id": "tom", "team": "customer-experience"}, submitted_by="tom",
        secret_key=None, idempotency_key=None, settings=runtime.settings)
    assert mate["request_id"] in await (await console.get("/requests")).text()
    assert (await console.get(f"/requests/{mate['request_id']}")).status == 200
    assert (await console.get("/requests?before=x")).status == 400


async def test_the_request_pages_need_a_session(hooks, runtime, aiohttp_client):
    runtime.settings = with_console(runtime.settings)
    client = await aiohttp_client(create_app(runtime))
    for path in ("/requests", "/requests/req-x", "/requests/req-x/events"):
        resp = await client.get(path, allow_redirects=False)
        assert resp.status in (302, 303) and resp.headers["Location"].startswith("/login")


async def _submit(pool, body: dict, who: str = "sarah") -> str:
    from tests.requests_support import SECRET_KEY

    status, created = await submit_answer(
        pool, body, requester={"user_id": who, "team": "customer-experience"}, submitted_by=who,
        secret_key=SECRET_KEY, idempotency_key=None, settings=None)
    assert status == 201, created
    return created["request_id"]


def _hook_app(name: str) -> dict:
    return {"catalog_item": "hook-app", "parameters": {"app_name": name, "token": "tok-abcdef"}}


def _listed(page: str) -> list[str]:
    return re.findall(r'<a href="/requests/(req-[^"]+)">', page)


async def test_the_list_filters_by_status_item_and_bundle_and_its_links_keep_the_filters(
        console, endpoint, pool, monkeypatch):
    from app.console import request_pages
    from tests.requests_support import SEED_003_BODY

    endpoint.answer("/create", (200, {"endpoint": "https://shop.example.com"}))
    endpoint.answer("/notify", (200, {}))
    endpoint.answer("/audit", (200, {}))
    shop = await _submit(pool, _hook_app("shop"))
    await request_status(pool, shop, "completed")
    cart = await _submit(pool, _hook_app("cart"))
    await request_status(pool, cart, "completed")
    mysql = await _submit(pool, {"catalog_item": "mysql-database",
                                 "parameters": {"database_name": "orders"}})
    await request_status(pool, mysql, "failed")  # no Jira configured: its ticket cannot be opened
    stack = await _submit(pool, {
        "catalog_bundle": "full-stack-web-app", "bundle_parameters": SEED_003_BODY["bundle_parameters"],
        "item_parameters": {**SEED_003_BODY["item_parameters"], "redis-cache": {"enabled": False},
                            "application-monitoring": {"enabled": False}}})

    page = await (await console.get("/requests")).text()
    assert set(_listed(page)) == {shop, cart, mysql, stack}
    assert '<option >hook-app</option>' in page and '<option >full-stack-web-app</option>' in page
    assert _listed(await (await console.get("/requests?status=failed&item=mysql-database")).text()) == [mysql]
    assert _listed(await (await console.get("/requests?status=completed")).text()) == [cart, shop]
    assert _listed(await (await console.get("/requests?bundle=full-stack-web-app")).text()) == [stack]
    chosen = await (await console.get("/requests?status=completed&item=hook-app")).text()
    assert '<option value="completed" selected>' in chosen and "<option selected>hook-app</option>" in chosen
    # A value that is no name finds nothing (the query is parameterised), a bad status is refused.
    odd = await console.get("/requests?item=hook-app' OR '1'='1")
    assert odd.status == 200 and "No requests match these filters." in await odd.text()
    bad = await console.get("/requests?status=done")
    assert bad.status == 400 and "status: expected one of submitted" in await bad.text()
    # One per page: "Older requests" keeps the filters.
    monkeypatch.setattr(request_pages, "PAGE_SIZE", 1)
    first = await (await console.get("/requests?item=hook-app")).text()
    assert _listed(first) == [cart]
    older = re.search(r'<a href="([^"]+)">Older requests</a>', first).group(1).replace("&amp;", "&")
    assert "item=hook-app" in older and "before=" in older
    assert _listed(await (await console.get(older)).text()) == [shop]


def _csrf(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


async def test_the_requester_cancels_from_the_page_teammates_may_not_and_a_second_cancel_is_explained(
        console, endpoint, pool, runtime, aiohttp_client):
    import asyncio

    endpoint.hold["/create"] = asyncio.Event()
    endpoint.answer("/create", (200, {"endpoint": "e"}))
    rid = await _submit(pool, _hook_app("shop"))
    href = f"/requests/{rid}"
    page = await (await console.get(href)).text()
    assert "Cancel request</button>" in page
    # Without the session's token: refused, nothing changes.
    resp = await console.post(href + "/cancel", data={"csrf_token": "forged"}, allow_redirects=False)
    assert resp.status == 403
    # A teammate reads the request but may not cancel it (the API's rule).
    mate = await aiohttp_client(create_app(runtime))
    sign_in(mate, runtime, "tom")
    mate_page = await (await mate.get(href)).text()
    assert "Cancel request" not in mate_page
    resp = await mate.post(href + "/cancel", data={"csrf_token": _csrf(mate_page)}, allow_redirects=False)
    assert resp.status == 403 and "Only the requester" in await resp.text()
    assert await pool.fetchval("SELECT status FROM service_requests WHERE request_id = $1",
                               rid) != "cancelled"

    resp = await console.post(href + "/cancel", data={"csrf_token": _csrf(page)}, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == href + "?done=cancelled"
    after = await (await console.get(resp.headers["Location"])).text()
    assert 'role="status">Request cancelled: its unfinished steps will not run.</p>' in after
    assert 'id="request-status">cancelled<' in after and "Cancel request" not in after
    # Cancelled twice (a second tab): the state machine refuses, the page says why.
    resp = await console.post(href + "/cancel", data={"csrf_token": _csrf(page)}, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == href + "?refused=cancel"
    refused = await (await console.get(resp.headers["Location"])).text()
    assert "The request was not cancelled: it is already cancelled." in refused
    endpoint.hold["/create"].set()


async def test_a_failed_step_is_retried_from_the_page_and_a_retry_that_no_longer_applies_is_explained(
        console, endpoint, pool):
    endpoint.answer("/create", (200, {"endpoint": "e"}))
    endpoint.answer("/notify", (422, {"error": "bad endpoint"}))
    endpoint.answer("/audit", (200, {}))
    rid = await _submit(pool, _hook_app("shop"))
    await request_status(pool, rid, "failed")
    href = f"/requests/{rid}"
    page = await (await console.get(href)).text()
    assert 'aria-label="Retry step hook-app.notify"' in page
    assert "Retry step hook-app.create" not in page  # only failed steps
    endpoint.answer("/notify", (200, {}))
    action = href + "/steps/hook-app.notify/retry"
    resp = await console.post(action, data={"csrf_token": _csrf(page)}, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == href + "?done=retried&step=hook-app.notify"
    retried = await (await console.get(resp.headers["Location"])).text()
    assert "Step hook-app.notify is queued to run again." in retried
    await request_status(pool, rid, "completed")
    resp = await console.post(action, data={"csrf_token": _csrf(page)}, allow_redirects=False)
    assert resp.headers["Location"] == href + "?refused=retry&step=hook-app.notify"
    refused = await (await console.get(resp.headers["Location"])).text()
    assert "Step hook-app.notify was not retried: it is completed and the request is completed." in refused
    resp = await console.post(href + "/steps/hook-app.nope/retry", data={"csrf_token": _csrf(page)})
    assert resp.status == 404
