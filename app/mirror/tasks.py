"""Mirror jobs: sync one repository, delete one, poll stars, refresh every mirror.

The periodic jobs re-enqueue themselves first (fixed queueing lock, ``delay=``
the interval), so a failing run never breaks the schedule.
"""

from __future__ import annotations

import logging
from typing import Any

from app import jobs, outcomes
from app.jobs import JobContext, task
from app.mirror import git, requests, stars, store, sync
from app.mirror.config import mirror_settings
from app.mirror.onedev import OneDevNotFound

log = logging.getLogger("app.mirror")

POLL_TASK = "mirror.poll_stars"
REFRESH_TASK = "mirror.refresh_all"
POLL_LOCK = "mirror:poll-stars"
REFRESH_LOCK = "mirror:refresh-all"


@task(requests.SYNC_TASK, max_attempts=8, retry_base=2.0, retry_cap=900.0)
@outcomes.watch_mirror
async def mirror_sync(ctx: JobContext, repository_id: int, event: str = "star") -> dict[str, Any]:
    return await sync.run(ctx, repository_id, event)


@task(requests.DELETE_TASK, max_attempts=6)
async def mirror_delete(ctx: JobContext, repository_id: int) -> dict[str, Any]:
    """Delete the OneDev project and the local cache of an unstarred mirror."""
    ms = mirror_settings(ctx.settings)
    row = await store.get(ctx.pool, repository_id)
    if row is None or row["deleted_at"] is not None or not ms.enabled:
        return {"skipped": True}
    if row["unstarred_at"] is None:
        return {"skipped": "starred again"}
    # A project PAO adopted was not PAO's to begin with: it stays, with what PAO pushed.
    adopted = row["onedev_adopted"]
    if row["onedev_project_id"] is not None and not adopted:
        try:
            await sync.onedev_client(ctx.http, ms).delete_project(row["onedev_project_id"])
        except OneDevNotFound:
            pass  # already gone
        except Exception as exc:
            if sync.permanent(exc):
                raise jobs.PermanentJobError(sync.describe(exc)) from None
            raise
    git.remove_cache(git.cache_path(ctx.settings.data_dir, row["github_repo_id"]))
    async with ctx.pool.acquire() as conn, conn.transaction():
        await store.mark_deleted(conn, repository_id)
        await store.log_sync(conn, repository_id, event_type="delete", status="success",
                             job_id=ctx.job_id,
                             error="adopted OneDev project kept" if adopted else None)
    if adopted:
        log.info("mirror of %s dropped (unstarred); adopted project %s kept",
                 row["github_full_name"], row["onedev_project_path"])
        return {"kept": row["onedev_project_path"]}
    log.info("mirror of %s deleted (unstarred)", row["github_full_name"])
    return {"deleted": row["onedev_project_path"]}


@task(POLL_TASK, max_attempts=1)
async def poll_stars(ctx: JobContext, periodic: bool = False) -> dict[str, Any]:
    ms = mirror_settings(ctx.settings)
    if not ms.enabled or not ms.users:
        return {"skipped": "mirroring off or PAO_MIRROR_USERS empty"}
    if periodic:
        await jobs.enqueue(ctx.pool, POLL_TASK, {"periodic": True}, queueing_lock=POLL_LOCK,
                           delay=ms.poll_interval)
    results = await stars.poll_all(ctx.pool, ctx.github, ms)
    return {r.user: {"stars": r.stars, "queued": r.queued, "unstarred": r.unstarred}
            for r in results}


@task(REFRESH_TASK, max_attempts=1)
async def refresh_all(ctx: JobContext, periodic: bool = False) -> dict[str, Any]:
    """Queue an update of every mirror, for repositories whose pushes we never see."""
    ms = mirror_settings(ctx.settings)
    if not ms.enabled:
        return {"skipped": "mirroring off"}
    if periodic:
        await jobs.enqueue(ctx.pool, REFRESH_TASK, {"periodic": True},
                           queueing_lock=REFRESH_LOCK, delay=ms.refresh_interval)
    async with ctx.pool.acquire() as conn, conn.transaction():
        enqueue = requests.pool_enqueue(conn)
        rows = await store.refreshable_ids(conn)
        for row in rows:
            await requests.queue_sync(enqueue, row["id"], row["github_repo_id"], "refresh")
    return {"queued": len(rows)}
