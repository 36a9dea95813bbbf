"""Small asyncio helpers shared by modules that wait on threads and processes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

_T = TypeVar("_T")


async def uncancellable(step: Awaitable[_T]) -> _T:
    """Await ``step`` to its end even if cancelled meanwhile; then re-raise the cancel.

    For clean-up that must finish (a process reaped, a pool shut down) before the
    cancelled caller lets go of what it holds.
    """
    future = asyncio.ensure_future(step)
    cancelled = False
    while True:
        try:
            result = await asyncio.shield(future)
        except asyncio.CancelledError:
            if future.done():
                raise
            cancelled = True
            continue
        if cancelled:
            raise asyncio.CancelledError
        return result
