"""``read_capped``: a body that arrives in pieces is read whole; one past the cap is cut there."""

from __future__ import annotations

import asyncio
from unittest import mock

from aiohttp import StreamReader

from app.httpbody import read_capped


def arriving(*parts: bytes) -> StreamReader:
    """A stream holding the first part; the others arrive on later turns of the event loop,
    as TCP segments do, then the end."""
    loop = asyncio.get_running_loop()
    stream = StreamReader(mock.Mock(_reading_paused=False), 2**16, loop=loop)
    stream.feed_data(parts[0])

    def feed(rest: tuple[bytes, ...]) -> None:
        if rest:
            stream.feed_data(rest[0])
            loop.call_soon(feed, rest[1:])
        else:
            stream.feed_eof()
    loop.call_soon(feed, parts[1:])
    return stream


async def test_a_body_arriving_in_pieces_is_read_whole():
    assert await read_capped(arriving(b"sig", b"ned ", b"body"), 100) == b"signed body"
    # One call to StreamReader.read(n), what the Jira webhook and artifact downloads did, stops short.
    assert await arriving(b"sig", b"ned ", b"body").read(101) == b"sig"


async def test_a_body_past_the_cap_is_cut_one_byte_after_it():
    assert await read_capped(arriving(b"x" * 60, b"y" * 60), 100) == b"x" * 60 + b"y" * 41
    assert await read_capped(arriving(b"x" * 100, b""), 100) == b"x" * 100
