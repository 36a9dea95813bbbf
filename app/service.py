"""Process lifecycle: start the database, migrate, and run the web server and/or workers.

``pao serve`` runs ``PAO_WEB_PROCESSES`` web processes (default one per CPU, at most 4) and its
workers in a process of their own (with one web process, in that process);
``pao worker`` runs workers only, and any number of them may join the same database.
SIGTERM stops taking new work; running jobs get a grace period, then are released.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import logging
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import asyncpg
from aiohttp import web

from app import db, metrics_endpoint
from app.config import Settings, StartupError
from app.console.registration import apply_stored as apply_stored_registration
from app.console.startup import start_watching as start_registration_watch
from app.github import GitHubClients
from app.listen import listen
from app.log import register_secret
from app.secret_key import with_secret_key
from app.supervisor import Supervisor, child_env, stop_when_orphaned, web_child_args

log = logging.getLogger(__name__)

# Modules exposing ``async def on_startup(runtime)``: catch-up syncs, periodic schedules.
STARTUP_MODULES: tuple[str, ...] = (
    "app.jobs.maintenance",
    "app.sync.startup",
    "app.mirror.startup",
    "app.deliveries.tasks",
    "app.console.startup",
    "app.requests.retention",
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
    # Called with the new settings when they change while running (an App registered by /setup).
    settings_listeners: list[Callable[[Settings], None]] = field(default_factory=list)


@contextlib.asynccontextmanager
async def runtime(settings: Settings, *, run_migrations: bool = True,
                  pool_size: int = 10) -> AsyncIterator[Runtime]:
    """Start everything a PAO process needs; stop it all on exit."""
    settings = with_secret_key(settings)
    for secret in (*settings.webhook_secrets, settings.repo_token, settings.admin_token):
        register_secret(secret)
    ensure_data_dir(settings)
    async with db.database_url(settings) as dsn:
        async with db.naming_the_database(settings):
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


def ensure_data_dir(settings: Settings) -> None:
    """Create ``PAO_DATA_DIR`` now: git caches and the embedded database live there, and a
    directory PAO cannot write would otherwise fail only at the first sync or mirror."""
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        if not os.access(settings.data_dir, os.W_OK | os.X_OK):
            raise PermissionError(13, "Permission denied")
    except OSError as exc:
        raise StartupError(f"PAO_DATA_DIR: cannot use {settings.data_dir}: "
                           f"{exc.strerror or exc}") from None


def make_worker(rt: Runtime, concurrency: int | None = None) -> Any:
    from app import tasks  # noqa: F401  (registers every task)
    from app.jobs.worker import Worker

    worker = Worker(
        rt.pool, rt.dsn, rt.settings, rt.github, rt.http,
        concurrency=concurrency if concurrency is not None else rt.settings.workers,
        poll_interval=rt.settings.job_poll_interval,
        stall_timeout=rt.settings.job_stall_timeout,
    )
    rt.settings_listeners.append(lambda settings: setattr(worker, "settings", settings))
    return worker


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


async def _cancel(task: asyncio.Task[Any] | None) -> None:
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _install_signal_handlers(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)


async def serve(settings: Settings, *, with_workers: bool = True,
                on_ready: Callable[[Runtime, str], Awaitable[None]] | None = None,
                child: bool = False) -> None:
    """Run the web server (and workers) until SIGTERM/SIGINT.

    With ``settings.web_processes`` > 1 this process also starts and supervises
    the other web processes and, unless ``with_workers`` is false, one worker
    process (see ``app.supervisor``); with 1 its workers run in this process.
    ``child`` is a web process started that way: it serves and nothing else.
    """
    stop = asyncio.Event()
    _install_signal_handlers(stop)
    async with runtime(settings, run_migrations=not child) as rt:
        from app.web import AppRunner, create_app

        app = create_app(rt)
        runner = AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        # reuse_port: the web processes share one port (Linux spreads connections
        # between them), which is how intake scales past one core.
        site = web.TCPSite(runner, settings.host, settings.port, backlog=1024, reuse_port=True)
        await listen(site, "PAO_HOST/PAO_PORT", f"{settings.host}:{settings.port}")
        bound = runner.addresses[0] if runner.addresses else (settings.host, settings.port)
        url = f"http://{bound[0]}:{bound[1]}"
        worker = None
        children: Supervisor | None = None
        watcher: asyncio.Task[None] | None = None
        # A separate metrics address is served by the parent only (children would clash on it).
        metrics_runner = None if child else await metrics_endpoint.start_listener(rt)
        if child:
            watcher = asyncio.create_task(stop_when_orphaned(stop))
        else:
            log.info("PAO listening on %s (webhooks at %s/api/v1/webhooks/github), "
                     "%d web process(es)", url, url, settings.web_processes)
            children = _start_children(rt, bound[0], bound[1], with_workers)
            if children is None and with_workers and settings.workers > 0:
                worker = make_worker(rt)
        worker_task = asyncio.create_task(worker.run()) if worker else None
        registration_watch = start_registration_watch(rt)
        if not child:
            await run_startup_hooks(rt)
        # Everything loaded so far lives as long as the process: keep the cyclic
        # garbage collector from rescanning it on every collection (tail latency).
        gc.freeze()
        if on_ready is not None and not child:
            await on_ready(rt, url)
        try:
            await stop.wait()
        finally:
            log.info("shutting down")
            await _cancel(registration_watch)
            # Stop taking deliveries first, then let workers finish or release jobs.
            await site.stop()
            if worker is not None and worker_task is not None:
                worker.stop()
                await worker_task
            if children is not None:
                # Before the embedded PostgreSQL they use stops with this process.
                await children.stop()
            if watcher is not None:
                watcher.cancel()
            await runner.cleanup()
            if metrics_runner is not None:
                await metrics_runner.cleanup()


def _start_children(rt: Runtime, host: str, port: int, with_workers: bool) -> Supervisor | None:
    """The other web processes and the worker process, started; None when there are none."""
    settings = rt.settings
    web_children = settings.web_processes - 1
    worker_process = with_workers and settings.workers > 0 and settings.web_processes > 1
    if web_children <= 0 and not worker_process:
        return None
    # Children use this process's database (embedded or not) and catalog repository
    # (the example one on a first run); through the environment, never argv.
    env = child_env(os.environ, {"PAO_DB_URL": rt.dsn, "PAO_REPO_URL": settings.repo_url,
                                 "PAO_HOST": host, "PAO_PORT": str(port)})
    children = Supervisor(env)
    for n in range(web_children):
        children.add(f"web process {n + 2}", *web_child_args(host, port))
    if worker_process:
        children.add("worker process", "worker", "--child")
    children.start()
    return children


async def work(settings: Settings, concurrency: int | None = None, *,
               child: bool = False) -> None:
    """Run workers only, until SIGTERM/SIGINT (or, as ``pao serve``'s child, its exit)."""
    stop = asyncio.Event()
    _install_signal_handlers(stop)
    async with runtime(settings, run_migrations=not child) as rt:
        metrics_runner = None if child else await metrics_endpoint.start_listener(rt)
        worker = make_worker(rt, concurrency)
        worker_task = asyncio.create_task(worker.run())
        registration_watch = start_registration_watch(rt)
        stopper = asyncio.create_task(stop.wait())
        watcher = asyncio.create_task(stop_when_orphaned(stop)) if child else None
        await asyncio.wait({worker_task, stopper}, return_when=asyncio.FIRST_COMPLETED)
        worker.stop()
        await worker_task
        stopper.cancel()
        await _cancel(registration_watch)
        if metrics_runner is not None:
            await metrics_runner.cleanup()
        if watcher is not None:
            watcher.cancel()
