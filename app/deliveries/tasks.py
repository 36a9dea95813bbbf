"""The periodic ``deliveries.recover`` job, scheduled at start-up whatever the mode.

It reads the App's webhook log in App mode and the repository's or organisation's webhook log
in token mode; with neither yet (no credentials, or an App still to be registered through
``/setup``) a run does nothing and the schedule goes on, so an App registered later is
covered without a restart.
"""

from __future__ import annotations

import logging
from typing import Any

from app import jobs
from app.deliveries.config import recovery_settings
from app.deliveries.hooks import HookNotFound, resolve
from app.deliveries.recovery import periodic_run
from app.jobs import JobContext, task

log = logging.getLogger(__name__)

TASK = "deliveries.recover"
LOCK = "periodic:deliveries-recover"


@task(TASK, max_attempts=1)
async def recover_deliveries(ctx: JobContext, periodic: bool = False) -> dict[str, Any]:
    rs = recovery_settings(ctx.settings)
    if periodic and rs.interval:
        # Re-queued first, so one failing run never ends the schedule.
        await jobs.enqueue(ctx.pool, TASK, {"periodic": True}, queueing_lock=LOCK,
                           delay=rs.interval)
    try:
        hook = await resolve(ctx.settings, ctx.github)
    except HookNotFound as exc:
        log.warning("missed-delivery recovery: %s", exc)
        return {"errors": [str(exc)]}
    if hook is None:
        return {"skipped": "no webhook log to read: no GitHub App, and in token mode no "
                           "PAO_REPO_TOKEN or no GitHub catalog repository (set PAO_DELIVERY_HOOK)"}
    report = await periodic_run(ctx.pool, hook, limit=rs.max_per_run,
                                retention_days=ctx.settings.retention_days)
    return {"hook": hook.name, **report.summary()}


async def on_startup(runtime: Any) -> None:
    if recovery_settings(runtime.settings).interval:
        await jobs.enqueue(runtime.pool, TASK, {"periodic": True}, queueing_lock=LOCK, delay=60)
