"""Group commit: requests hand their work to a few writer loops and wait for their answer.

Each loop takes everything waiting at that moment (up to ``max_batch``) and stores it in
shared statements, so under load one commit serves many requests; with no load a batch is
one item and nothing waits for a timer. ``IntakeWriter`` (webhook deliveries) and
``SubmissionWriter`` (service requests) are built on it.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Generic, TypeVar

T = TypeVar("T")


class GroupCommit(Generic[T]):
    """The queue and writer loops; subclasses write a batch in ``_write_batch``."""

    def __init__(self, name: str, *, writers: int, max_batch: int):
        self.name = name
        self.writers = writers
        self.max_batch = max_batch
        self._queue: asyncio.Queue[T] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self.largest_batch = 0  # for tests and debugging: did group commit happen?

    def start(self) -> None:
        if not self._tasks:
            self._tasks = [asyncio.create_task(self._loop(), name=f"pao-{self.name}-{i}")
                           for i in range(self.writers)]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    def _enqueue(self, item: T) -> None:
        self.start()
        self._queue.put_nowait(item)

    async def _loop(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self.max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            self.largest_batch = max(self.largest_batch, len(batch))
            await self._write_batch(batch)

    async def _write_batch(self, batch: list[T]) -> None:
        """Store ``batch`` and answer each of its waiters (never raises for one item)."""
        raise NotImplementedError
