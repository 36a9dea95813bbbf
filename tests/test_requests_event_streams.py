"""Many open event streams share one listening connection, and shutting down ends them."""

from __future__ import annotations

import asyncio
import json

import aiohttp

from tests.requests_support import BODY

DB_CONNECTIONS = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"


async def open_stream(hooks, href: str) -> aiohttp.ClientResponse:
    resp = await hooks.client.get(href + "/events", headers={
        "Authorization": f"Bearer {hooks.tokens['sarah']}", "Accept": "text/event-stream"})
    assert resp.status == 200
    return resp


async def statuses(resp: aiohttp.ClientResponse) -> list[str]:
    """The request-level statuses the stream sends until it ends."""
    seen = []
    async for line in resp.content:
        if line.startswith(b"data: "):
            event = json.loads(line[6:])
            if event["step_id"] is None:
                seen.append(event["to_status"])
    return seen


async def test_open_streams_share_one_connection_and_all_hear_the_news(hooks, endpoint, pool):
    endpoint.hold["/create"] = asyncio.Event()  # no worker here: the request stays submitted
    _, created = await hooks.call("POST", "/api/v1/requests", BODY)
    before = await pool.fetchval(DB_CONNECTIONS)
    streams = [await open_stream(hooks, created["href"]) for _ in range(25)]
    # One LISTEN connection for them all (a connection each would exhaust PostgreSQL's limit);
    # the web pool may grow meanwhile, up to its 10.
    assert await pool.fetchval(DB_CONNECTIONS) - before <= 11
    readers = [asyncio.create_task(statuses(s)) for s in streams]
    status, _ = await hooks.call("POST", created["href"] + "/cancel")
    assert status == 200
    for seen in await asyncio.wait_for(asyncio.gather(*readers), 30):  # each stream ends with the request
        assert seen[-1] == "cancelled"


async def test_shutting_down_ends_open_streams_instead_of_waiting_on_them(hooks, endpoint):
    endpoint.hold["/create"] = asyncio.Event()
    _, created = await hooks.call("POST", "/api/v1/requests", BODY)
    stream = await open_stream(hooks, created["href"])
    first = await asyncio.wait_for(stream.content.readline(), 30)
    assert first.startswith(b"id: ")  # streaming
    await hooks.client.server.close()  # aiohttp runs on_shutdown, then waits for open handlers
    # The stream ended by itself: the rest reads to a clean end (a stream cut off when the
    # shutdown timeout ran out would raise ClientPayloadError here).
    rest = await asyncio.wait_for(stream.content.read(), 30)
    assert stream.content.at_eof() and b"event: " in rest
