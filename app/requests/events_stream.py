"""The live event stream of one request (Server-Sent Events), woken by ``NOTIFY pao_request_events``."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import asyncpg
from aiohttp import web

from app.requests import store, views
from app.requests.store import TERMINAL
from app.state import RUNTIME

KEEPALIVE = 15.0  # seconds between comments that keep proxies from closing an idle stream


async def stream(request: web.Request, row: asyncpg.Record, after: int) -> web.StreamResponse:
    """Send events after ``after``, then each new one as it commits; end once the request has ended."""
    rt = request.app[RUNTIME]
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                                       "X-Accel-Buffering": "no"})
    await resp.prepare(request)
    wake = asyncio.Event()
    listener: asyncpg.Connection | None = None

    def on_notify(_conn: Any, _pid: int, _channel: str, payload: str) -> None:
        if payload == str(row["id"]):
            wake.set()

    try:
        with contextlib.suppress(OSError, asyncpg.PostgresError):
            listener = await asyncpg.connect(rt.dsn)
            await listener.add_listener("pao_request_events", on_notify)
        while True:
            wake.clear()
            for e in await store.get_events(rt.pool, row["id"], after=after):
                after = e["id"]
                await resp.write(f"id: {e['id']}\nevent: {e['event']}\n"
                                 f"data: {json.dumps(views.event(e), default=str)}\n\n".encode())
            status = await rt.pool.fetchval("SELECT status FROM service_requests WHERE id = $1", row["id"])
            if status in TERMINAL and status != "failed":
                break
            # Without LISTEN (or a missed notification) this still polls every KEEPALIVE seconds.
            try:
                await asyncio.wait_for(wake.wait(), KEEPALIVE if listener else 1.0)
            except TimeoutError:
                await resp.write(b": keepalive\n\n")
    except ConnectionResetError:
        pass  # the client went away
    finally:
        if listener is not None:
            with contextlib.suppress(Exception):
                await listener.close()
    return resp
