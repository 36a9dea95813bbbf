"""Process lifecycle: start the database, migrate, and run the web server and/or workers.

``pao serve`` runs both in one process (enough for a small org); ``pao worker``
runs workers only, and any number of them may join the same database.
SIGTERM stops taking new work; running jobs get a grace period, then are released.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import asyncpg
from aiohttp import web

from app import db, metrics_endpoint
from app.config import Settings
from app.console.registration import apply_stored as apply_stored_registration
from app.github import GitHubClients
from app.log import register_secret

log = logging.getLogger(__name__)

# Modules exposing ``async def on_startup(runtime)``: catch-up syncs, periodic schedules.
STARTUP_MODULES: tuple[str, ...] = (
    "app.jobs.maintenance",
    "app.sync.startup",
    "app.mirror.startup",
    "app.deliveries.tasks",
    "app.console.startup",
)


@dataclass
class Runtime:
    """Shared resources of one PAO process."""

    settings: Settings
    dsn: str
    pool: asyncpg.Pool
    http: aiohttp.ClientSession
    github: GitHubClients
    extra: dict[str, Any] = field(default_factory=dict)


@contextlib.asynccontextmanager
async def runtime(settings: Settings, *, run_migrations: bool = True,
                  pool_size: int = 10) -> AsyncIterator[Runtime]:
    """Start everything a PAO process needs; stop it all on exit."""
    for secret in (*settings.webhook_secrets, settings.repo_token, settings.admin_token):
        register_secret(secret)
    async with db.database_url(settings) as dsn:
        if run_migrations:
            conn = await db.connect(dsn)
            try:
                await db.migrate(conn)
            finally:
                await conn.close()
        pool = await db.create_pool(dsn, min_size=2, max_size=pool_size)
        http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
        try:
            github = GitHubClients.from_settings(settings, http)
            rt = Runtime(settings, dsn, pool, http, github)
            # Without PAO_APP_ID, act as the App registered through /setup, if any.
            await apply_stored_registration(rt)
            yield rt
        finally:
            await http.close()
            await pool.close()


def make_worker(rt: Runtime, concurrency: int | None = None) -> Any:
    from app import tasks  # noqa: F401  (registers every task)
    from app.jobs.worker import Worker

    return Worker(
        rt.pool, rt.dsn, rt.settings, rt.github, rt.http,
        concurrency=concurrency if concurrency is not None else rt.settings.workers,
        poll_interval=rt.settings.job_poll_interval,
        stall_timeout=rt.settings.job_stall_timeout,
    )


async def run_startup_hooks(rt: Runtime) -> None:
    for name in STARTUP_MODULES:
        hook: Callable[[Runtime], Awaitable[None]] = importlib.import_module(name).on_startup
        try:
            await hook(rt)
        except Exception as exc:
            # A failing hook (say, the catalog remote is down) must not stop intake;
            # the work it would have queued is retried by the next push or poll.
            log.warning("start-up hook %s failed: %s", name, exc)
            log.debug("start-up hook %s traceback", name, exc_info=True)


def _install_signal_handlers(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)


async def serve(settings: Settings, *, with_workers: bool = True,
                on_ready: Callable[[Runtime, str], Awaitable[None]] | None = None) -> None:
    """Run the web server (and workers) until SIGTERM/SIGINT."""
    stop = asyncio.Event()
    _install_signal_handlers(stop)
    async with runtime(settings) as rt:
        from app.web import AppRunner, create_app

        app = create_app(rt)
        runner = AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        # reuse_port: several `pao serve` processes may share one port (Linux spreads
        # connections between them), which is how intake scales past one core.
        site = web.TCPSite(runner, settings.host, settings.port, backlog=1024, reuse_port=True)
        await site.start()
        bound = runner.addresses[0] if runner.addresses else (settings.host, settings.port)
        url = f"http://{bound[0]}:{bound[1]}"
        log.info("PAO listening on %s (webhooks at %s/api/v1/webhooks/github)", url, url)
        metrics_runner = await metrics_endpoint.start_listener(rt)
        worker = make_worker(rt) if with_workers and settings.workers > 0 else None
        worker_task = asyncio.create_task(worker.run()) if worker else None
        await run_startup_hooks(rt)
        # Everything loaded so far lives as long as the process: keep the cyclic
        # garbage collector from rescanning it on every collection (tail latency).
        gc.freeze()
        if on_ready is not None:
            await on_ready(rt, url)
        try:
            await stop.wait()
        finally:
            log.info("shutting down")
            # Stop taking deliveries first, then let workers finish or release jobs.
            await site.stop()
            if worker is not None and worker_task is not None:
                worker.stop()
                await worker_task
            await runner.cleanup()
            if metrics_runner is not None:
                await metrics_runner.cleanup()


async def work(settings: Settings, concurrency: int | None = None) -> None:
    """Run workers only, until SIGTERM/SIGINT."""
    stop = asyncio.Event()
    _install_signal_handlers(stop)
    async with runtime(settings) as rt:
        metrics_runner = await metrics_endpoint.start_listener(rt)
        worker = make_worker(rt, concurrency)
        worker_task = asyncio.create_task(worker.run())
        stopper = asyncio.create_task(stop.wait())
        await asyncio.wait({worker_task, stopper}, return_when=asyncio.FIRST_COMPLETED)
        worker.stop()
        await worker_task
        stopper.cancel()
        if metrics_runner is not None:
            await metrics_runner.cleanup()
