"""Helpers for tests: signed webhook requests, waiting for conditions."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from tests.conftest import WEBHOOK_SECRET

if TYPE_CHECKING:
    from aiohttp import web


def sign(body: bytes, secret: str = WEBHOOK_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signed_headers(event: str, body: bytes, delivery_id: str, *,
                   secret: str = WEBHOOK_SECRET) -> dict[str, str]:
    """Event, delivery, signature and JSON content type for ``body`` sent as it is."""
    return {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery_id,
        "X-Hub-Signature-256": sign(body, secret),
        "Content-Type": "application/json",
    }


def webhook(event: str, payload: Any, *, secret: str = WEBHOOK_SECRET,
            delivery_id: str | None = None) -> tuple[bytes, dict[str, str]]:
    """Body and headers of a delivery as GitHub sends it."""
    body = json.dumps(payload).encode()
    headers = signed_headers(event, body, delivery_id or str(uuid.uuid4()), secret=secret)
    headers["User-Agent"] = "GitHub-Hookshot/test"
    return body, headers


async def wait_for(check: Callable[[], Awaitable[Any]], timeout: float = 20.0,
                   interval: float = 0.05, what: str = "condition") -> Any:
    """Poll ``check`` until it returns something truthy; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(interval)


@asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[tuple[str, int]]:
    """``(host, port)`` of ``app`` served as ``pao serve`` serves it: its runner, no test client."""
    from aiohttp import web

    from app.web import AppRunner

    runner = AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield runner.addresses[0][:2]
    finally:
        await runner.cleanup()


async def raw_request(addr: tuple[str, int], head: bytes, body: bytes = b"") -> tuple[int, dict]:
    """Send bytes as they are (headers no client library would write) and read the answer."""
    reader, writer = await asyncio.open_connection(*addr)
    writer.write(head + b"\r\n" + body)
    await writer.drain()
    try:
        return await asyncio.wait_for(read_response(reader), 30)
    finally:
        writer.close()


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict]:
    """Status and JSON body of one HTTP/1.1 response (with a Content-Length)."""
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    length = next(int(line.split(":", 1)[1]) for line in lines
                  if line.lower().startswith("content-length:"))
    return int(status_line.split()[1]), json.loads(await reader.readexactly(length))
