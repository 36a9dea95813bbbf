"""Reading an HTTP body whole, up to a cap: ``StreamReader.read(n)`` returns what has arrived
so far (one TCP segment, say), not ``n`` bytes, so a single call can cut a body short."""

from __future__ import annotations

from aiohttp import StreamReader


async def read_capped(stream: StreamReader, limit: int) -> bytes:
    """The whole body, or its first ``limit + 1`` bytes when it is longer (the caller refuses it)."""
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        chunk = await stream.read(limit + 1 - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)
