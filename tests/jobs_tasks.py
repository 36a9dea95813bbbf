"""Tasks used only by the job-queue tests. They record what they do in ``job_log``.

A worker process started by a test imports this module before ``app.cli.main``.
"""

from __future__ import annotations

import asyncio
import os

from app.jobs import JobContext, JobSuperseded, PermanentJobError, task

CREATE_LOG = """
CREATE TABLE IF NOT EXISTS job_log (
    id bigserial PRIMARY KEY,
    job_id bigint NOT NULL,
    label text,
    pid integer NOT NULL,
    attempt integer NOT NULL,
    started_at timestamptz NOT NULL,
    finished_at timestamptz NOT NULL DEFAULT clock_timestamp()
)
"""


async def _log_start(ctx: JobContext, label: str | None) -> object:
    return await ctx.pool.fetchval("SELECT clock_timestamp()")


async def _log_done(ctx: JobContext, label: str | None, started: object) -> None:
    await ctx.pool.execute(
        "INSERT INTO job_log (job_id, label, pid, attempt, started_at) VALUES ($1, $2, $3, $4, $5)",
        ctx.job_id, label, os.getpid(), ctx.attempt, started,
    )


@task("test_sleep", max_attempts=3, retry_base=0.1)
async def test_sleep(ctx: JobContext, seconds: float = 0.0, label: str | None = None) -> dict:
    started = await _log_start(ctx, label)
    await ctx.pool.execute(
        "INSERT INTO job_log (job_id, label, pid, attempt, started_at, finished_at)"
        " VALUES ($1, 'started:' || coalesce($2, ''), $3, $4, $5, $5)",
        ctx.job_id, label, os.getpid(), ctx.attempt, started,
    )
    await asyncio.sleep(seconds)
    await _log_done(ctx, label, started)
    return {"slept": seconds}


@task("test_flaky", max_attempts=4, retry_base=0.05)
async def test_flaky(ctx: JobContext, fail_times: int = 1) -> None:
    started = await _log_start(ctx, "flaky")
    await _log_done(ctx, "flaky", started)
    if ctx.attempt <= fail_times:
        raise ConnectionError(f"remote unavailable (attempt {ctx.attempt})")


@task("test_permanent", max_attempts=5)
async def test_permanent(ctx: JobContext) -> None:
    raise PermanentJobError("credentials rejected: check PAO_SOMETHING")


@task("test_superseded", max_attempts=5)
async def test_superseded(ctx: JobContext) -> None:
    raise JobSuperseded("commit abc is gone: nothing to do")


@task("test_secret_error", max_attempts=1)
async def test_secret_error(ctx: JobContext, token: str) -> None:
    from app.log import register_secret

    register_secret(token)
    raise RuntimeError(f"request with token {token} failed")


@task("test_block_first", max_attempts=3, retry_base=0.1)
async def test_block_first(ctx: JobContext, blocked: float, seconds: float,
                           label: str | None = None) -> None:
    """On its first attempt, hold the event loop (as CPU-bound work would), then go on."""
    started = await _log_start(ctx, label)
    if ctx.attempt == 1:
        import time

        time.sleep(blocked)  # no heartbeats meanwhile: peers think this worker died
    await asyncio.sleep(seconds)
    await _log_done(ctx, label, started)
