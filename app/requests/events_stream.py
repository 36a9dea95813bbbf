"""The live event stream of one request (Server-Sent Events), woken by ``NOTIFY pao_request_events``.

Every open stream of a web process shares one listening connection (``EventHub``): a
connection per stream would let a few hundred open pages exhaust PostgreSQL's
connection limit. Streams end when the request has ended, when the client goes away,
and when the server shuts down (``close_streams``, an ``on_shutdown`` hook), so SIGTERM
never waits on them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
from aiohttp import web

from app.requests import store, views
from app.requests.store import TERMINAL
from app.state import RUNTIME

log = logging.getLogger(__name__)

KEEPALIVE = 15.0  # seconds between comments that keep proxies from closing an idle stream
CHANNEL = "pao_request_events"
HUB = "requests.event_hub"  # the process's EventHub, in Runtime.extra


class EventHub:
    """One LISTEN connection for every stream of the process; wakes the streams of a request."""

    def __init__(self, dsn: str):
        self.dsn = dsn
        self.closing = False
        self._conn: asyncpg.Connection | None = None
        self._connecting = asyncio.Lock()
        self._waiters: dict[int, set[asyncio.Event]] = {}

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        with contextlib.suppress(ValueError):
            for wake in self._waiters.get(int(payload), ()):
                wake.set()

    def _on_lost(self, _conn: Any) -> None:
        """The connection died: wake every stream to look once; the next subscriber reconnects."""
        for waiters in self._waiters.values():
            for wake in waiters:
                wake.set()

    async def _listening(self) -> bool:
        """Connect and LISTEN when not yet (or no longer) connected; False when that fails."""
        async with self._connecting:
            if self._conn is not None and not self._conn.is_closed():
                return True
            try:
                conn = await asyncpg.connect(self.dsn)
                await conn.add_listener(CHANNEL, self._on_notify)
                conn.add_termination_listener(self._on_lost)
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("request event streams poll: cannot LISTEN (%s)", type(exc).__name__)
                return False
            self._conn = conn
            return True

    @contextlib.asynccontextmanager
    async def subscribe(self, request_id: int) -> AsyncIterator[tuple[asyncio.Event, bool]]:
        """An event set when ``request_id`` has news (or the hub closes), and whether LISTEN works."""
        wake = asyncio.Event()
        listening = await self._listening()
        self._waiters.setdefault(request_id, set()).add(wake)
        try:
            yield wake, listening
        finally:
            waiters = self._waiters.get(request_id)
            if waiters is not None:
                waiters.discard(wake)
                if not waiters:
                    del self._waiters[request_id]

    async def close(self) -> None:
        """End every stream (they see ``closing``) and the listening connection."""
        self.closing = True
        for waiters in self._waiters.values():
            for wake in waiters:
                wake.set()
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()


def hub_of(rt: Any) -> EventHub:
    hub = rt.extra.get(HUB)
    if not isinstance(hub, EventHub) or hub.closing:
        hub = rt.extra[HUB] = EventHub(rt.dsn)
    return hub


async def close_streams(app: web.Application) -> None:
    """``on_shutdown``: end the open streams so the server can stop at once."""
    hub = app[RUNTIME].extra.pop(HUB, None)
    if isinstance(hub, EventHub):
        await hub.close()


async def stream(request: web.Request, row: asyncpg.Record, after: int) -> web.StreamResponse:
    """Send events after ``after``, then each new one as it commits; end once the request has ended."""
    rt = request.app[RUNTIME]
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                                       "X-Accel-Buffering": "no"})
    await resp.prepare(request)
    hub = hub_of(rt)
    try:
        async with hub.subscribe(row["id"]) as (wake, listening):
            while not hub.closing:
                wake.clear()
                for e in await store.get_events(rt.pool, row["id"], after=after):
                    after = e["id"]
                    await resp.write(f"id: {e['id']}\nevent: {e['event']}\n"
                                     f"data: {json.dumps(views.event(e), default=str)}\n\n".encode())
                status = await rt.pool.fetchval("SELECT status FROM service_requests WHERE id = $1",
                                                row["id"])
                if status in TERMINAL and status != "failed":
                    break
                # Without LISTEN (or a missed notification) this still polls every KEEPALIVE seconds.
                try:
                    await asyncio.wait_for(wake.wait(), KEEPALIVE if listening else 1.0)
                except TimeoutError:
                    await resp.write(b": keepalive\n\n")
    except ConnectionResetError:
        pass  # the client went away
    return resp
