"""The periodic ``deliveries.recover`` job (App mode), scheduled at start-up."""

from __future__ import annotations

from typing import Any

from app import jobs
from app.deliveries.config import recovery_settings
from app.deliveries.recovery import periodic_run
from app.jobs import JobContext, task

TASK = "deliveries.recover"
LOCK = "periodic:deliveries-recover"


@task(TASK, max_attempts=1)
async def recover_deliveries(ctx: JobContext, periodic: bool = False) -> dict[str, Any]:
    rs = recovery_settings(ctx.settings)
    if not ctx.github.app_mode:
        return {"skipped": "token mode: GitHub lists deliveries per App (set PAO_APP_ID)"}
    if periodic and rs.interval:
        # Re-queued first, so one failing run never ends the schedule.
        await jobs.enqueue(ctx.pool, TASK, {"periodic": True}, queueing_lock=LOCK,
                           delay=rs.interval)
    report = await periodic_run(ctx.pool, ctx.github, limit=rs.max_per_run,
                                retention_days=ctx.settings.retention_days)
    return report.summary()


async def on_startup(runtime: Any) -> None:
    rs = recovery_settings(runtime.settings)
    if runtime.github.app_mode and rs.interval:
        await jobs.enqueue(runtime.pool, TASK, {"periodic": True}, queueing_lock=LOCK, delay=60)
