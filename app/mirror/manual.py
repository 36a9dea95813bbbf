"""Mirrors asked for by name (``pao mirror add``, ``POST /api/v1/mirrors``) and manual syncs."""

from __future__ import annotations

import re
from typing import Any

import asyncpg
from gidgethub import BadRequest, GitHubException

from app.github import GitHubAuthError
from app.mirror import requests, store
from app.mirror.requests import Decision
from app.mirror.store import GitHubRepo

FULL_NAME_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$")


class AddError(Exception):
    """The repository cannot be mirrored; ``status`` is the HTTP status to answer."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def check_full_name(full_name: str) -> str:
    if not isinstance(full_name, str) or not FULL_NAME_RE.match(full_name):
        raise AddError(400, f"expected OWNER/REPO, got {full_name!r}")
    return full_name


async def fetch_repo(pool: asyncpg.Pool, github: Any, full_name: str) -> tuple[GitHubRepo, int | None]:
    """The repository as GitHub describes it, and the installation that reaches it."""
    owner, name = check_full_name(full_name).split("/", 1)
    installation_id = None
    if github.app_mode:
        # The owner's installation, else any: its token reads public repositories.
        installation_id = await pool.fetchval(
            """SELECT i.id FROM installations i WHERE i.deleted_at IS NULL AND NOT i.suspended
                ORDER BY (lower(i.account_login) = lower($1)) DESC, i.id LIMIT 1""", owner)
    try:
        gh = await github.api(installation_id)
        data = await gh.getitem("/repos/{owner}/{repo}", {"owner": owner, "repo": name})
    except BadRequest as exc:
        if exc.status_code == 404:
            raise AddError(404, f"GitHub has no repository {full_name} "
                                "(or PAO's credentials cannot see it)") from None
        if exc.status_code in (401, 403):
            raise AddError(502, f"GitHub refused PAO's credentials ({exc.status_code})") from None
        raise AddError(502, f"GitHub answered {exc.status_code}") from None
    except GitHubAuthError as exc:
        raise AddError(503, str(exc)) from None
    except (GitHubException, OSError) as exc:
        raise AddError(502, f"GitHub is unreachable: {type(exc).__name__}") from None
    return GitHubRepo.from_payload(data), installation_id


async def add(pool: asyncpg.Pool, github: Any, full_name: str) -> tuple[Decision, asyncpg.Record]:
    repo, installation_id = await fetch_repo(pool, github, full_name)
    async with pool.acquire() as conn, conn.transaction():
        decision = await requests.request_mirror(
            conn, requests.pool_enqueue(conn), repo, installation_id=installation_id,
            source="manual", starred_by=None)
        row = await store.get(conn, decision.repository_id)
    assert row is not None
    return decision, row


async def sync_now(pool: asyncpg.Pool, full_name: str) -> tuple[int, asyncpg.Record] | None:
    """Queue an update of a mirrored repository; None when it is not mirrored."""
    async with pool.acquire() as conn, conn.transaction():
        row = await store.by_full_name(conn, full_name)
        if row is None or row["deleted_at"] is not None:
            return None
        if row["sync_status"] == "failed":
            await store.mark_pending(conn, row["id"], retry=True)
        job_id = await requests.queue_sync(requests.pool_enqueue(conn), row["id"],
                                           row["github_repo_id"], "manual")
        row = await store.get(conn, row["id"])
    assert row is not None
    return job_id, row
