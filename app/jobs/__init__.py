"""A durable job queue on PostgreSQL (asyncpg), with procrastinate's semantics.

* ``enqueue`` inserts a job in the caller's transaction, so a webhook delivery and
  the jobs it creates commit together.
* A *queueing lock* allows one waiting job per key; enqueueing again while one
  waits returns the waiting job's id. While one runs, one more may wait.
* A *lock* (execution lock) keeps two jobs with the same key from running at once.
* A failing job is retried with exponential backoff and jitter until
  ``max_attempts``; ``PermanentJobError`` fails it at once. Failed jobs keep
  their error and can be retried from the CLI. ``JobSuperseded`` ends a job whose
  work no longer applies as cancelled, with the reason, and no error logged.

Tasks are plain coroutines registered with ``@task("name")``; the worker
(``app.jobs.worker``) runs them with a ``JobContext``.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import asyncpg

from app.jobs import queries

if TYPE_CHECKING:
    import aiohttp

    from app.config import Settings
    from app.github import GitHubClients


class PermanentJobError(Exception):
    """An error retrying cannot fix (bad credentials, missing repository, invalid input)."""


class JobSuperseded(Exception):
    """What the job was for no longer exists or was replaced (a commit force-pushed away):
    nothing to do and nothing went wrong. The job ends ``cancelled`` with this message,
    its attempt ``superseded``, logged as one INFO line, never retried."""


class RetryJob(Exception):
    """Ask for another attempt after ``delay`` seconds, without counting it as a failure log."""

    def __init__(self, message: str, delay: float | None = None):
        super().__init__(message)
        self.delay = delay


@dataclass
class JobContext:
    """What a task gets: the job's identity and the process's shared resources."""

    job_id: int
    task: str
    attempt: int
    max_attempts: int
    delivery_id: str | None
    pool: asyncpg.Pool
    settings: Settings
    github: GitHubClients
    http: aiohttp.ClientSession
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def last_attempt(self) -> bool:
        return self.attempt >= self.max_attempts


TaskFn = Callable[..., Awaitable[Any]]


@dataclass(frozen=True)
class Task:
    name: str
    fn: TaskFn
    max_attempts: int = 5
    retry_base: float = 2.0  # seconds before the second attempt
    retry_cap: float = 600.0  # no wait longer than this between attempts
    timeout: float | None = None  # seconds an attempt may run; None: no limit

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1-based): exponential, full jitter."""
        ceiling = min(self.retry_cap, self.retry_base * (2 ** (attempt - 1)))
        return random.uniform(ceiling / 2, ceiling)


TASKS: dict[str, Task] = {}


def task(
    name: str,
    *,
    max_attempts: int = 5,
    retry_base: float = 2.0,
    retry_cap: float = 600.0,
    timeout: float | None = None,
) -> Callable[[TaskFn], TaskFn]:
    """Register ``fn(ctx: JobContext, **args)`` as the task ``name``."""

    def register(fn: TaskFn) -> TaskFn:
        if name in TASKS and TASKS[name].fn is not fn:
            raise RuntimeError(f"task {name!r} registered twice")
        TASKS[name] = Task(name, fn, max_attempts, retry_base, retry_cap, timeout)
        return fn

    return register


@dataclass(frozen=True)
class Enqueued:
    job_id: int
    created: bool  # False when the queueing lock returned an already-waiting job


async def enqueue(
    conn: asyncpg.Connection | asyncpg.Pool,
    task_name: str,
    args: dict[str, Any] | None = None,
    *,
    queueing_lock: str | None = None,
    lock: str | None = None,
    priority: int = 0,
    delay: float = 0.0,
    delivery_id: str | None = None,
    max_attempts: int | None = None,
) -> Enqueued:
    """Queue a job; with a ``queueing_lock`` already waiting, return that job instead.

    Call it on the connection of an open transaction to make the job part of it.
    """
    if task_name not in TASKS:
        from app import tasks  # noqa: F401  (registers every task)
    if task_name not in TASKS:
        raise ValueError(f"unknown task {task_name!r}")
    attempts = max_attempts if max_attempts is not None else TASKS[task_name].max_attempts
    row = await conn.fetchrow(
        queries.ENQUEUE,
        task_name,
        args or {},
        queueing_lock,
        lock,
        priority,
        attempts,
        float(delay),
        delivery_id,
    )
    if row is not None:
        return Enqueued(row["id"], row["created"])
    waiting = await conn.fetchval(queries.WAITING_WITH_QUEUEING_LOCK, queueing_lock)
    if waiting is None:
        # The waiting twin started between our INSERT and SELECT: queue again.
        return await enqueue(
            conn,
            task_name,
            args,
            queueing_lock=queueing_lock,
            lock=lock,
            priority=priority,
            delay=delay,
            delivery_id=delivery_id,
            max_attempts=max_attempts,
        )
    return Enqueued(waiting, False)
