"""Retention: ended service requests older than ``PAO_REQUEST_RETENTION_DAYS`` are purged, hourly.

Ended is ``completed``, ``failed`` or ``cancelled``, aged by the request's last change
(``updated_at``): a failed request nobody retried for that long goes too. A request goes
with its steps, attempts, tickets and events (``ON DELETE CASCADE``), a batch of requests
per statement, each statement its own short transaction, so the purge never holds many
locks for long; rows a transition holds right now are skipped until the next run. ``0``
keeps every request. The job queues its next run first, so one failed run never ends the
schedule; start-up queues it (the queueing lock makes a second one a no-op).
"""

from __future__ import annotations

from typing import Any

from app.db import delete_in_batches
from app.jobs import JobContext, enqueue, task
from app.requests.config import request_settings

TASK = "requests.purge"
LOCK = "periodic:requests-purge"
EVERY = 3600.0
# Requests per statement: each brings its steps and events (tens of rows) along.
BATCH = 200

PURGE = """
DELETE FROM service_requests WHERE id IN (
    SELECT id FROM service_requests
     WHERE status IN ('completed', 'failed', 'cancelled')
       AND updated_at < now() - make_interval(days => $1)
     ORDER BY updated_at
     LIMIT $2
       FOR UPDATE SKIP LOCKED)
"""


async def purge(pool: Any, days: int, batch: int = BATCH) -> int:
    """Delete ended requests unchanged for ``days`` days, ``batch`` at a time; how many went."""
    return await delete_in_batches(pool, PURGE, days, batch)


@task(TASK, max_attempts=3, retry_base=60)
async def purge_requests(ctx: JobContext) -> dict[str, Any]:
    days = request_settings(ctx.settings).retention_days
    if not days:
        return {"skipped": "PAO_REQUEST_RETENTION_DAYS is 0: requests are kept"}
    await enqueue(ctx.pool, TASK, {}, queueing_lock=LOCK, delay=EVERY)
    return {"requests": await purge(ctx.pool, days)}


async def on_startup(runtime: Any) -> None:
    if request_settings(runtime.settings).retention_days:
        await enqueue(runtime.pool, TASK, {}, queueing_lock=LOCK, delay=90)
