"""Processes started before ``/setup`` (a ``pao worker``, other web processes) act as the App it
registers, without a restart: woken by the set-up transaction's NOTIFY, or by a periodic re-check."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from pathlib import Path

import pytest

from app import jobs
from app.console.startup import start_watching
from app.github import GitHubClients
from app.jobs import JobContext, task
from app.service import Runtime, make_worker
from app.web import create_app
from tests.console_support import SECRET_KEY, point_at_github
from tests.support import wait_for, webhook
from tests.test_console_setup import github_code_for, unlock

ROOT = Path(__file__).resolve().parent.parent


@task("test_app_mode")
async def report_app_mode(ctx: JobContext) -> dict[str, bool]:
    return {"settings": ctx.settings.app_mode, "github": ctx.github.app_mode}


@pytest.fixture
async def pao(aiohttp_client, runtime, github_fake):
    point_at_github(runtime, github_fake)
    return await aiohttp_client(create_app(runtime))


async def register(pao, runtime) -> None:
    """The whole browser set-up in the first process."""
    await unlock(pao, runtime)
    code, state, _ = await github_code_for(pao, "acme")
    assert (await pao.get(f"/setup/callback?code={code}&state={state}")).status == 200


def second_runtime(runtime, http_session, dsn: str | None = None) -> Runtime:
    return Runtime(runtime.settings, dsn or runtime.dsn, runtime.pool, http_session,
                   GitHubClients.from_settings(runtime.settings, http_session))


async def stop(watch: asyncio.Task | None) -> None:
    assert watch is not None
    watch.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await watch


async def test_a_running_worker_adopts_the_app_at_the_setup_notify(pao, runtime, github_fake, http_session):
    other = second_runtime(runtime, http_session)
    worker = make_worker(other, 1)
    # An hour between re-checks: only the NOTIFY can wake it within the test.
    watch = start_watching(other, interval=3600)
    try:
        await register(pao, runtime)
        await wait_for(lambda: _true(other.github.app_mode), what="the second process in App mode")
        assert github_fake.registered_webhook_secret in other.settings.webhook_secrets
        # Its worker's jobs see the App too.
        queued = await jobs.enqueue(other.pool, "test_app_mode", {})
        assert await worker.run_one()
        result = await other.pool.fetchval("SELECT result FROM jobs WHERE id = $1", queued.job_id)
        assert result == {"settings": True, "github": True}
        await wait_for(lambda: _true(watch.done()), what="the watcher to end")
    finally:
        if not watch.done():
            await stop(watch)


async def test_without_the_notify_the_periodic_recheck_adopts_it(pao, runtime, github_fake, http_session,
                                                                 aiohttp_client):
    # LISTEN fails (no database at that address); the re-check still reads the pool.
    other = second_runtime(runtime, http_session, dsn="postgresql://pao@127.0.0.1:9/nowhere")
    watch = start_watching(other, interval=0.2)
    try:
        await register(pao, runtime)
        await wait_for(lambda: _true(other.github.app_mode), what="the re-check to adopt the App")
        # Its intake accepts deliveries signed with the App's new webhook secret.
        client = await aiohttp_client(create_app(other))
        body, headers = webhook("ping", {"zen": "hi", "hook_id": 1},
                                secret=github_fake.registered_webhook_secret)
        assert (await client.post("/api/v1/webhooks/github", data=body, headers=headers)).status == 200
    finally:
        if not watch.done():
            await stop(watch)


async def test_a_worker_process_started_before_setup_acts_as_the_app(pao, runtime, github_fake, db_dsn,
                                                                      tmp_path):
    env = {**os.environ, "PAO_DB_URL": db_dsn, "PAO_DATA_DIR": str(tmp_path / "worker-data"),
           "PAO_SECRET_KEY": SECRET_KEY, "PAO_GITHUB_API_URL": github_fake.url,
           "PAO_JOB_POLL_INTERVAL": "0.2", "PAO_LOG_LEVEL": "INFO", "PAO_DELIVERY_RECOVERY_INTERVAL": "off"}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "app", "worker", "--concurrency", "1",
                                                cwd=ROOT, env=env, stdout=asyncio.subprocess.DEVNULL,
                                                stderr=asyncio.subprocess.PIPE)
    seen: list[str] = []

    async def line_with(text: str) -> None:
        while not any(text in line for line in seen):
            line = await proc.stderr.readline()
            assert line, "the worker exited:\n" + "".join(seen)
            seen.append(line.decode())

    try:
        await asyncio.wait_for(line_with("started"), 60)
        await register(pao, runtime)
        await asyncio.wait_for(line_with("acting as GitHub App"), 60)
        # A job that needs the App: it lists the App's deliveries with the App's JWT.
        queued = await jobs.enqueue(runtime.pool, "deliveries.recover", {})

        async def finished():
            return await runtime.pool.fetchrow("SELECT status, result FROM jobs WHERE id = $1 "
                                               "AND status IN ('succeeded', 'failed')", queued.job_id)
        row = await wait_for(finished, timeout=60, what="the recovery job")
        assert row["status"] == "succeeded" and "skipped" not in row["result"], row
        assert github_fake.api_requests("GET", "/app/hook/deliveries")
    finally:
        if proc.returncode is None:
            proc.terminate()
            await proc.wait()


async def _true(value: bool) -> bool:
    return value
