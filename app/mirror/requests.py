"""Asking for a mirror: seed 002's scenarios A-D, shared by webhooks, polls, CLI and API.

A: new -> pending, queue a sync.  B: completed -> nothing to do (idempotent).
C: in progress -> nothing to do, the running sync finishes it.  D: failed -> retry.
The queueing lock ``mirror:<github id>`` turns a burst of requests into one waiting job.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg

from app import jobs
from app.mirror import store
from app.mirror.store import GitHubRepo

SYNC_TASK = "mirror.sync"
DELETE_TASK = "mirror.delete"

Enqueue = Callable[..., Awaitable[int]]


def repo_lock(github_repo_id: int) -> str:
    return f"mirror:{github_repo_id}"


@dataclass(frozen=True)
class Decision:
    repository_id: int
    outcome: str  # queued, already_mirrored, in_progress
    job_id: int | None = None

    @property
    def message(self) -> str:
        return {
            "queued": "sync queued",
            "already_mirrored": "repository already synchronized",
            "in_progress": "sync already in progress",
        }[self.outcome]


def pool_enqueue(conn: asyncpg.Connection | asyncpg.Pool) -> Enqueue:
    async def enqueue(task: str, args: dict[str, Any], **options: Any) -> int:
        return (await jobs.enqueue(conn, task, args, **options)).job_id
    return enqueue


async def queue_sync(enqueue: Enqueue, repository_id: int, github_repo_id: int,
                     event: str) -> int:
    lock = repo_lock(github_repo_id)
    return await enqueue(SYNC_TASK, {"repository_id": repository_id, "event": event},
                         queueing_lock=lock, lock=lock)


async def _sync_alive(conn: asyncpg.Connection, github_repo_id: int) -> bool:
    return bool(await conn.fetchval(
        "SELECT 1 FROM jobs WHERE lock = $1 AND status IN ('todo', 'doing') LIMIT 1",
        repo_lock(github_repo_id)))


async def request_mirror(conn: asyncpg.Connection, enqueue: Enqueue, repo: GitHubRepo, *,
                         installation_id: int | None, source: str,
                         starred_by: str | None) -> Decision:
    """Record the wish to mirror ``repo`` and queue a sync when one is needed."""
    before, rid = await store.upsert(conn, repo, installation_id=installation_id, source=source,
                                     starred_by=starred_by)
    old = before["sync_status"] if before is not None else None
    revive = before is not None and before["deleted_at"] is not None
    if old is not None and not revive:
        if old == "completed":
            await store.touch_seen(conn, rid)
            return Decision(rid, "already_mirrored")
        if old == "in_progress" and await _sync_alive(conn, repo.id):
            return Decision(rid, "in_progress")
        # An 'in_progress' row without a live job: its worker died on the last attempt.
    await store.mark_pending(conn, rid, retry=old in ("failed", "in_progress") and not revive,
                             revive=revive)
    job_id = await queue_sync(enqueue, rid, repo.id, source)
    return Decision(rid, "queued", job_id)


async def request_unstar(conn: asyncpg.Connection, enqueue: Enqueue, github_repo_id: int, *,
                         policy: str, event: str) -> int | None:
    """Record an unstar; with policy ``delete`` queue the project's deletion. Returns the row id."""
    row = await store.by_github_id(conn, github_repo_id)
    if row is None or row["deleted_at"] is not None:
        return None
    await store.mark_unstarred(conn, row["id"])
    await store.log_sync(conn, row["id"], event_type=event, status="recorded",
                         error=None if policy == "keep" else "project deletion queued")
    if policy == "delete":
        lock = repo_lock(github_repo_id)
        await enqueue(DELETE_TASK, {"repository_id": row["id"]}, queueing_lock=lock + ":delete",
                      lock=lock)
    return int(row["id"])
