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
        secret_key=None, idempotency_key=None)
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
        secret_key=None, idempotency_key=None)
    assert mate["request_id"] in await (await console.get("/requests")).text()
    assert (await console.get(f"/requests/{mate['request_id']}")).status == 200
    assert (await console.get("/requests?before=x")).status == 400


async def test_the_request_pages_need_a_session(hooks, runtime, aiohttp_client):
    runtime.settings = with_console(runtime.settings)
    client = await aiohttp_client(create_app(runtime))
    for path in ("/requests", "/requests/req-x", "/requests/req-x/events"):
        resp = await client.get(path, allow_redirects=False)
        assert resp.status in (302, 303) and resp.headers["Location"].startswith("/login")
