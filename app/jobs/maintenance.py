"""Housekeeping: purge old webhook deliveries, finished jobs and notification keys, hourly.

Failed jobs are kept whatever their age: someone has to look at them (``pao jobs
retry``). The task re-queues itself first, so one failed run never ends the chain;
start-up queues it if it is not waiting (the queueing lock makes that a no-op).
"""

from __future__ import annotations

from typing import Any

from app.db import delete_in_batches
from app.jobs import JobContext, enqueue, task

PURGE_LOCK = "periodic:purge_history"
PURGE_EVERY = 3600.0
BATCH = 5000

PURGE_JOBS = """
DELETE FROM jobs WHERE id IN (
    SELECT id FROM jobs
     WHERE status IN ('succeeded', 'cancelled')
       AND finished_at < now() - make_interval(days => $1)
     LIMIT $2)
"""

PURGE_EVENTS = """
DELETE FROM webhook_events WHERE id IN (
    SELECT id FROM webhook_events
     WHERE received_at < now() - make_interval(days => $1)
     LIMIT $2)
"""

# A notification's dedup key outlives its job by as long: a replay after that is no replay.
PURGE_NOTIFICATION_KEYS = """
DELETE FROM notification_keys WHERE ctid IN (
    SELECT ctid FROM notification_keys
     WHERE created_at < now() - make_interval(days => $1)
     LIMIT $2)
"""


@task("purge_history", max_attempts=3, retry_base=60)
async def purge_history(ctx: JobContext) -> dict[str, int]:
    await enqueue(ctx.pool, "purge_history", {}, queueing_lock=PURGE_LOCK, delay=PURGE_EVERY)
    days = ctx.settings.retention_days
    # Small batches keep each statement's locks and WAL short on a busy database.
    return {key: await delete_in_batches(ctx.pool, query, days, BATCH)
            for key, query in (("jobs", PURGE_JOBS), ("webhook_events", PURGE_EVENTS),
                               ("notification_keys", PURGE_NOTIFICATION_KEYS))}


async def on_startup(runtime: Any) -> None:
    await enqueue(runtime.pool, "purge_history", {}, queueing_lock=PURGE_LOCK, delay=60)
