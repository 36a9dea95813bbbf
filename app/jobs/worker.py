"""Workers: claim jobs, run their tasks, heartbeat, retry, and recover stalled jobs.

A ``Worker`` runs ``concurrency`` jobs at a time in one process. It wakes on
``NOTIFY pao_jobs`` and polls as a fallback. Any number of worker processes can
share a database; the rules that keep them apart are in the schema.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import traceback
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import aiohttp
import asyncpg

from app import metrics
from app.git.orphans import stop_orphans
from app.jobs import TASKS, JobContext, JobSuperseded, PermanentJobError, RetryJob, Task, queries
from app.log import delivery_id_var, job_id_var, scrub
from app.procinfo import ProcessIdentity

log = logging.getLogger(__name__)

UNIQUE_VIOLATION = asyncpg.exceptions.UniqueViolationError


class Worker:
    def __init__(
        self,
        pool: asyncpg.Pool,
        dsn: str,
        settings: Any,
        github: Any,
        http: aiohttp.ClientSession,
        *,
        concurrency: int = 4,
        poll_interval: float = 2.0,
        stall_timeout: float = 120.0,
        shutdown_grace: float = 25.0,
        tasks: dict[str, Task] | None = None,
    ):
        self.pool = pool
        self.dsn = dsn
        self.settings = settings
        self.github = github
        self.http = http
        self.concurrency = max(1, concurrency)
        self.poll_interval = poll_interval
        self.stall_timeout = stall_timeout
        # After stop(), running jobs get this long to finish; then they are released.
        self.shutdown_grace = shutdown_grace
        self.heartbeat_interval = max(0.2, min(10.0, stall_timeout / 4))
        self.tasks = tasks if tasks is not None else TASKS
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._running: dict[int, asyncio.Task[None]] = {}
        # Runners still in their task's code (not finishing): the ones a takeover stops.
        self._in_task: set[asyncio.Task[Any]] = set()
        self._slots = asyncio.Semaphore(self.concurrency)
        self._listen_conn: asyncpg.Connection | None = None

    # -- lifecycle ---------------------------------------------------------

    async def run(self) -> None:
        """Run until ``stop()``; then finish running jobs (or release them)."""
        log.info("worker %s started (%d slots) for tasks: %s", self.worker_id,
                 self.concurrency, ", ".join(sorted(self.tasks)))
        await self._announce()
        await self._listen()
        heartbeat = asyncio.create_task(self._heartbeat_loop(), name="pao-heartbeat")
        stalled = asyncio.create_task(self._stall_loop(), name="pao-stalled")
        try:
            while not self._stopping.is_set():
                if not await self._free_slot():
                    break
                job = await self._claim_safely()
                if job is None:
                    self._slots.release()
                    await self._sleep_until_woken()
                    continue
                older = self._running.get(job["id"])
                if older is not None and older in self._in_task:
                    # Requeued as stalled and claimed again here: the older run lost it.
                    log.warning("job %s claimed again; stopping its older run", job["id"])
                    older.cancel()
                runner = asyncio.create_task(self._run_job(job))
                self._running[job["id"]] = runner
        finally:
            stalled.cancel()
            # Jobs still finishing are alive: keep heartbeating them through the
            # grace period, or a peer would take them over mid-run.
            await self._drain()
            heartbeat.cancel()
            for helper in (heartbeat, stalled):
                with contextlib.suppress(asyncio.CancelledError):
                    await helper
            if self._listen_conn is not None:
                with contextlib.suppress(Exception):
                    await self._listen_conn.close()
            with contextlib.suppress(Exception):
                await self.pool.execute(queries.FORGET_WORKERS, [self.worker_id])
            log.info("worker %s stopped", self.worker_id)

    async def _announce(self) -> None:
        """Record who this worker is, and take back the jobs of dead workers on this host.

        A worker killed with SIGKILL holds its claims until its heartbeats time
        out; on its own host a starting worker can see at once that its process
        is gone, and need not wait.
        """
        try:
            await register_worker(self.pool, self.worker_id, ProcessIdentity.of())
            await release_dead_local_workers(self.pool, self.stall_timeout, self.worker_id)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            # The heartbeat rule still recovers them, only later.
            log.warning("could not check for dead workers on this host: %s", exc)

    async def _free_slot(self) -> bool:
        """Wait for a free slot; False (holding none) once ``stop()`` is called.

        Waiting on the slots alone would miss a stop while every slot runs a
        long job, and the grace period would never start.
        """
        acquire = asyncio.ensure_future(self._slots.acquire())
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({acquire, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            acquire.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await acquire
        if acquire.cancelled():
            return False
        if self._stopping.is_set():
            self._slots.release()
            return False
        return True

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def _drain(self) -> None:
        if not self._running:
            return
        grace = self.shutdown_grace
        log.info("waiting up to %.0fs for %d running job(s)", grace, len(self._running))
        _, pending = await asyncio.wait(list(self._running.values()), timeout=grace)
        for runner in pending:
            runner.cancel()
        if pending:
            await asyncio.wait(pending)

    async def _listen(self) -> None:
        try:
            conn = await asyncpg.connect(self.dsn)
            await conn.add_listener("pao_jobs", self._on_notify)
            self._listen_conn = conn
        except Exception as exc:  # polling still works without it
            log.warning("LISTEN failed (%s); polling every %.1fs", exc, self.poll_interval)

    def _on_notify(self, *_: Any) -> None:
        self._wake.set()

    async def _sleep_until_woken(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), self.poll_interval)
        self._wake.clear()

    # -- claiming ----------------------------------------------------------

    async def _claim_safely(self) -> asyncpg.Record | None:
        try:
            return await self._claim()
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("could not claim a job: %s", exc)
            await asyncio.sleep(self.poll_interval)
            return None

    async def _claim(self) -> asyncpg.Record | None:
        names = list(self.tasks)
        for _ in range(5):
            try:
                return await self.pool.fetchrow(queries.CLAIM, self.worker_id, names)
            except UNIQUE_VIOLATION:
                # Another worker claimed a job with the same lock this instant.
                continue
        return None

    async def run_one(self) -> bool:
        """Claim and run a single job inline; for tests and ``pao jobs run-once``."""
        job = await self._claim()
        if job is None:
            return False
        await self._slots.acquire()
        await self._run_job(job)
        return True

    # -- running -----------------------------------------------------------

    async def _run_job(self, job: asyncpg.Record) -> None:
        job_token = job_id_var.set(job["id"])
        delivery_token = delivery_id_var.set(job["delivery_id"])
        started = datetime.now().astimezone()
        try:
            task = self.tasks[job["task"]]
            ctx = JobContext(
                job_id=job["id"],
                task=job["task"],
                attempt=job["attempts"],
                max_attempts=job["max_attempts"],
                delivery_id=job["delivery_id"],
                pool=self.pool,
                settings=self.settings,
                github=self.github,
                http=self.http,
            )
            log.info("job %s (%s) attempt %d/%d started", job["id"], job["task"],
                     job["attempts"], job["max_attempts"])
            try:
                me = asyncio.current_task()
                assert me is not None
                self._in_task.add(me)
                try:
                    coro = task.fn(ctx, **job["args"])
                    result = await (asyncio.wait_for(coro, task.timeout) if task.timeout else coro)
                finally:
                    self._in_task.discard(me)
            except asyncio.CancelledError:
                await self._release(job)
                raise
            except Exception as exc:
                await self._failed(job, task, exc, started)
            else:
                await self._succeeded(job, result, started)
        finally:
            # Only our own entry: a requeued job claimed again has a newer runner.
            if self._running.get(job["id"]) is asyncio.current_task():
                del self._running[job["id"]]
            self._slots.release()
            job_id_var.reset(job_token)
            delivery_id_var.reset(delivery_token)

    async def _succeeded(self, job: asyncpg.Record, result: Any, started: datetime) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            done = await conn.fetchval(
                queries.SUCCEED, job["id"], self.worker_id,
                result if isinstance(result, dict | list) else None, job["attempts"],
            )
            if done is None:
                log.warning("job %s finished but was taken over by another worker", job["id"])
                return
            await conn.execute(queries.RECORD_ATTEMPT, job["id"], job["attempts"],
                               self.worker_id, started, "succeeded", None)
        metrics.observe_job(job["task"], "succeeded", started)
        log.info("job %s (%s) succeeded", job["id"], job["task"])

    async def _failed(self, job: asyncpg.Record, task: Task, exc: Exception,
                      started: datetime) -> None:
        message = scrub(f"{type(exc).__name__}: {exc}")
        permanent = isinstance(exc, PermanentJobError)
        out_of_attempts = job["attempts"] >= job["max_attempts"]
        if isinstance(exc, TimeoutError):
            message = f"attempt timed out after {task.timeout:.0f}s"
        superseded = isinstance(exc, JobSuperseded)
        if superseded:
            message = scrub(str(exc))  # the task's own sentence, not an error's type
        async with self.pool.acquire() as conn, conn.transaction():
            if superseded:
                await conn.execute(queries.SUPERSEDE, job["id"], self.worker_id, message, None,
                                   job["attempts"])
                outcome = "superseded"
            elif permanent or out_of_attempts:
                await conn.execute(queries.FAIL, job["id"], self.worker_id, message,
                                   job["attempts"])
                outcome = "failed"
            else:
                delay = exc.delay if isinstance(exc, RetryJob) and exc.delay else (
                    task.backoff(job["attempts"]))
                outcome = "retry"
                try:
                    async with conn.transaction():
                        await conn.execute(queries.RETRY, job["id"], self.worker_id, delay,
                                           message, job["attempts"])
                except UNIQUE_VIOLATION:
                    twin = await conn.fetchval(queries.WAITING_WITH_QUEUEING_LOCK,
                                               job["queueing_lock"])
                    await conn.execute(queries.SUPERSEDE, job["id"], self.worker_id, message, twin,
                                       job["attempts"])
                    outcome = "superseded"
            await conn.execute(queries.RECORD_ATTEMPT, job["id"], job["attempts"],
                               self.worker_id, started, outcome, message)
        metrics.observe_job(job["task"], outcome, started)
        if superseded:
            log.info("job %s (%s) superseded: %s", job["id"], job["task"], message)
        elif outcome == "failed":
            detail = "" if permanent else "".join(
                traceback.format_exception(type(exc), exc, exc.__traceback__, limit=-3))
            log.error("job %s (%s) failed for good: %s%s", job["id"], job["task"], message,
                      ("\n" + scrub(detail)) if detail else "")
        else:
            log.warning("job %s (%s) attempt %d failed, %s: %s", job["id"], job["task"],
                        job["attempts"], outcome, message)

    async def _release(self, job: asyncpg.Record) -> None:
        with contextlib.suppress(Exception):
            async with self.pool.acquire() as conn:
                try:
                    await conn.execute(queries.RELEASE, job["id"], self.worker_id,
                                       job["attempts"])
                except UNIQUE_VIOLATION:
                    twin = await conn.fetchval(queries.WAITING_WITH_QUEUEING_LOCK,
                                               job["queueing_lock"])
                    await conn.execute(queries.SUPERSEDE, job["id"], self.worker_id,
                                       "released at shutdown", twin, job["attempts"])
            log.info("job %s released for another worker", job["id"])

    # -- background loops --------------------------------------------------

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            if not self._running:
                continue
            running = list(self._running)
            try:
                held = {r["id"] for r in await self.pool.fetch(
                    queries.HEARTBEAT, running, self.worker_id)}
            except Exception as exc:
                log.warning("heartbeat failed: %s", exc)
                continue
            for job_id in running:
                # Only a job still in its task code: one already finishing has
                # left 'doing' on its own.
                runner = self._running.get(job_id)
                if job_id not in held and runner in self._in_task:
                    log.warning("job %s was taken over by another worker (this one missed "
                                "its heartbeats); stopping it here", job_id)
                    runner.cancel()

    async def _stall_loop(self) -> None:
        while True:
            try:
                await release_dead_local_workers(self.pool, self.stall_timeout, self.worker_id)
                await recover_stalled(self.pool, self.stall_timeout, self.worker_id)
            except Exception as exc:
                log.warning("stalled-job check failed: %s", exc)
            await asyncio.sleep(max(1.0, self.stall_timeout / 2))


async def recover_stalled(pool: asyncpg.Pool, stall_timeout: float,
                          worker_id: str | None = None, gone: Sequence[str] = ()) -> list[int]:
    """Requeue (or fail, when out of attempts) jobs whose worker stopped heartbeating
    or, for the workers in ``gone``, whose worker process no longer exists.

    ``worker_id``: the worker asking; its own jobs are never taken from it.
    """
    recovered = []
    async with pool.acquire() as conn, conn.transaction():
        for job in await conn.fetch(queries.STALLED, stall_timeout, worker_id, list(gone)):
            error = (f"worker {job['worker_id']} is gone (its process no longer exists)"
                     if job["worker_id"] in gone else
                     f"worker {job['worker_id']} stopped responding")
            if job["attempts"] >= job["max_attempts"]:
                await conn.execute(queries.FAIL_STALLED, job["id"], error)
                outcome = "failed"
            else:
                try:
                    async with conn.transaction():
                        await conn.execute(queries.REQUEUE_STALLED, job["id"], error)
                    outcome = "stalled"
                except UNIQUE_VIOLATION:
                    twin = await conn.fetchval(queries.WAITING_WITH_QUEUEING_LOCK,
                                               job["queueing_lock"])
                    await conn.execute(queries.SUPERSEDE, job["id"], None, error, twin,
                                       job["attempts"])
                    outcome = "superseded"
            await conn.execute(queries.RECORD_ATTEMPT, job["id"], job["attempts"],
                               job["worker_id"], job["started_at"], outcome, error)
            log.warning("job %s: %s; %s", job["id"], error, outcome)
            recovered.append(job["id"])
    return recovered


async def register_worker(pool: asyncpg.Pool, worker_id: str, me: ProcessIdentity) -> None:
    """Record which process ``worker_id`` is, so its host can tell when it is gone."""
    await pool.execute(queries.REGISTER_WORKER, worker_id, me.host, me.boot_id, me.pid_ns,
                       me.pid, me.start)


async def release_dead_local_workers(pool: asyncpg.Pool, stall_timeout: float,
                                     worker_id: str | None = None) -> list[int]:
    """Take back at once the jobs of workers on this host whose process no longer exists.

    Only workers that share this process's boot and pid namespace can be looked
    up; a pid now held by another process (a later start time) counts as gone.
    Their git helpers are stopped first, so a retry never races them.
    """
    here = ProcessIdentity.of()
    rows = await pool.fetch(queries.LOCAL_WORKERS, here.boot_id, here.pid_ns, worker_id or "")
    gone = [r["worker_id"] for r in rows
            if ProcessIdentity(r["host"], r["boot_id"], r["pid_ns"], r["pid"], r["pid_start"]).is_gone()]
    if not gone:
        return []
    for pid in await asyncio.to_thread(stop_orphans):
        log.warning("stopped git process %d, left running by a killed worker", pid)
    recovered = await recover_stalled(pool, stall_timeout, worker_id, gone)
    await pool.execute(queries.FORGET_WORKERS, gone)
    return recovered
