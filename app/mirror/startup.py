"""Seed the periodic mirror jobs when a PAO process starts."""

from __future__ import annotations

from typing import Any

from app import jobs
from app.mirror import tasks
from app.mirror.config import mirror_settings


async def on_startup(runtime: Any) -> None:
    ms = mirror_settings(runtime.settings)
    if not ms.enabled:
        return
    # The queueing locks make this a no-op when the schedule already has its job waiting.
    if ms.users:
        await jobs.enqueue(runtime.pool, tasks.POLL_TASK, {"periodic": True},
                           queueing_lock=tasks.POLL_LOCK)
    await jobs.enqueue(runtime.pool, tasks.REFRESH_TASK, {"periodic": True},
                       queueing_lock=tasks.REFRESH_LOCK, delay=ms.refresh_interval)
