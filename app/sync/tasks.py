"""The ``sync_catalog`` job and the one way to queue it.

One waiting and one running sync per repository (queueing lock + lock): pushes
that arrive while a sync runs collapse into one follow-up sync, which syncs to
the branch head and so covers them all.
"""

from __future__ import annotations

import logging
from typing import Any

import asyncpg
import gidgethub

from app import outcomes
from app.git.catalog import GitCache
from app.git.run import GitAuthError, GitNotFoundError
from app.github import GitHubAuthError
from app.jobs import JobContext, PermanentJobError, enqueue, task
from app.sync.config import sync_settings
from app.sync.engine import sync_repository
from app.sync.source import CatalogSource, catalog_source

log = logging.getLogger(__name__)

TASK = "sync_catalog"


def job_args(source: CatalogSource, *, triggered_by: str, full: bool = False,
             installation_id: int | None = None) -> dict[str, Any]:
    return {"repository": source.key, "triggered_by": triggered_by, "full": full,
            "installation_id": installation_id}


async def queue_sync(conn: asyncpg.Connection | asyncpg.Pool, source: CatalogSource, *,
                     triggered_by: str, full: bool = False, installation_id: int | None = None,
                     delivery_id: str | None = None) -> int:
    """Queue a sync of ``source`` (or return the one already waiting); returns the job id."""
    queued = await enqueue(conn, TASK, job_args(source, triggered_by=triggered_by, full=full,
                                                installation_id=installation_id),
                           queueing_lock=source.lock, lock=source.lock, delivery_id=delivery_id)
    if full and not queued.created:
        # A sync is already waiting (say, for a push): make it the full reconcile asked for.
        upgraded = await conn.fetchval(
            """UPDATE jobs SET args = args || jsonb_build_object('full', true, 'triggered_by', $2::text)
                WHERE id = $1 AND status = 'todo' RETURNING id""", queued.job_id, triggered_by)
        if upgraded is None:
            # It started in between, as an ordinary sync: queue the full one to follow it.
            return await queue_sync(conn, source, triggered_by=triggered_by, full=True,
                                    installation_id=installation_id, delivery_id=delivery_id)
    return queued.job_id


async def git_token(github: Any, pool: asyncpg.Pool, source: CatalogSource,
                    installation_id: int | None) -> str | None:
    """The token git should send for ``source``: none for local repositories."""
    if source.is_local:
        return None
    if github.app_mode and installation_id is None and source.full_name:
        installation_id = await pool.fetchval(
            """SELECT r.installation_id FROM installation_repositories r
                 JOIN installations i ON i.id = r.installation_id
                WHERE lower(r.full_name) = lower($1) AND i.deleted_at IS NULL AND NOT i.suspended
                LIMIT 1""", source.full_name)
        if installation_id is None:
            # Installed while PAO was down (no event recorded): GitHub says which installation.
            installation_id = await repository_installation(github, source.full_name)
    if not github.app_mode and not github.static_token:
        return None  # a public repository needs none
    return await github.token(installation_id)


async def repository_installation(github: Any, full_name: str) -> int | None:
    """The App's installation on ``full_name`` (``GET /repos/{owner}/{repo}/installation``), or None."""
    try:
        found = await github.app_api().getitem(f"/repos/{full_name}/installation", jwt=github.jwt())
    except gidgethub.BadRequest as exc:  # 404: the App is not installed there
        log.warning("no installation of the App on %s: %s", full_name, exc)
        return None
    installation_id = found.get("id") if isinstance(found, dict) else None
    return installation_id if isinstance(installation_id, int) else None


@task(TASK, max_attempts=8, retry_base=5.0, retry_cap=600.0, timeout=1800.0)
@outcomes.watch_sync
async def sync_catalog(ctx: JobContext, *, repository: str, triggered_by: str = "webhook",
                       full: bool = False, installation_id: int | None = None) -> dict[str, Any]:
    source = catalog_source(ctx.settings)
    if source is None or source.key != repository:
        raise PermanentJobError(
            f"{repository} is no longer the catalog repository (PAO_REPO_URL is "
            f"{source.key if source else 'unset'})")
    try:
        token = await git_token(ctx.github, ctx.pool, source, installation_id)
        cache = GitCache(source, source.cache_dir(ctx.settings.data_dir))
        result = await sync_repository(ctx.pool, source, cache, token, triggered_by=triggered_by,
                                       delivery_id=ctx.delivery_id, job_id=ctx.job_id, full=full,
                                       parse_processes=sync_settings(ctx.settings).parse_processes)
    except (GitHubAuthError, GitAuthError, GitNotFoundError) as exc:
        raise PermanentJobError(f"cannot read {source.url}: {exc}") from None
    return result.summary()
