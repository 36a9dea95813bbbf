"""SQL for mirrors: the ``repositories`` rows, their sync logs and the seen stars."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

from app.intake import PayloadError, optional, require


@dataclass(frozen=True)
class GitHubRepo:
    """What we need to know about a GitHub repository, from a payload or the API."""

    id: int
    full_name: str
    owner: str
    name: str
    html_url: str
    clone_url: str
    default_branch: str | None
    private: bool
    size_kb: int

    @classmethod
    def from_payload(cls, data: dict[str, Any], prefix: str = "") -> GitHubRepo:
        """From a webhook's ``repository`` (``prefix="repository."``) or an API repository.

        Every field is read with its type: a wrong one is a PayloadError naming it.
        """
        full_name = require(data, prefix + "full_name", str)
        if "/" not in full_name:
            raise PayloadError(prefix + "full_name", "is not OWNER/NAME")
        owner, name = full_name.split("/", 1)
        return cls(
            id=require(data, prefix + "id", int),
            full_name=full_name,
            owner=owner,
            name=name,
            html_url=optional(data, prefix + "html_url", str, ""),
            clone_url=require(data, prefix + "clone_url", str),
            default_branch=optional(data, prefix + "default_branch", str),
            private=optional(data, prefix + "private", bool, False),
            size_kb=optional(data, prefix + "size", int, 0, minimum=0),
        )


COLUMNS = """id, github_repo_id, github_url, github_clone_url, github_owner, github_name,
    github_full_name, github_default_branch, github_is_private, github_size_kb, installation_id,
    source, starred_by, onedev_project_id, onedev_project_path, onedev_url, onedev_adopted,
    sync_status,
    retry_count, last_synced_at, last_synced_refs, refs_digest, error_message, unstarred_at,
    deleted_at, created_at, updated_at"""

# Insert a new mirror, or bring an existing row up to date with GitHub's view of
# the repository.
UPSERT = """
    INSERT INTO repositories (github_repo_id, github_url, github_clone_url, github_owner,
        github_name, github_full_name, github_default_branch, github_is_private, github_size_kb,
        installation_id, source, starred_by)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
    ON CONFLICT (github_repo_id) DO UPDATE SET
        github_url = EXCLUDED.github_url, github_clone_url = EXCLUDED.github_clone_url,
        github_owner = EXCLUDED.github_owner, github_name = EXCLUDED.github_name,
        github_full_name = EXCLUDED.github_full_name,
        github_default_branch = coalesce(EXCLUDED.github_default_branch,
                                         repositories.github_default_branch),
        github_is_private = EXCLUDED.github_is_private,
        github_size_kb = greatest(EXCLUDED.github_size_kb, 0),
        installation_id = coalesce(EXCLUDED.installation_id, repositories.installation_id),
        starred_by = coalesce(EXCLUDED.starred_by, repositories.starred_by),
        updated_at = now()
    RETURNING id
"""


async def upsert(conn: asyncpg.Connection, repo: GitHubRepo, *, installation_id: int | None,
                 source: str, starred_by: str | None) -> tuple[asyncpg.Record | None, int]:
    """The row as it was before (None when new; locked until the transaction ends) and its id,
    so the caller applies seed 002's scenarios A-D."""
    old = await conn.fetchrow("SELECT id, sync_status, deleted_at FROM repositories "
                              "WHERE github_repo_id = $1 FOR UPDATE", repo.id)
    return old, await conn.fetchval(
        UPSERT, repo.id, repo.html_url or f"https://github.com/{repo.full_name}", repo.clone_url,
        repo.owner, repo.name, repo.full_name, repo.default_branch, repo.private, repo.size_kb,
        installation_id, source, starred_by,
    )


async def get(conn: asyncpg.Connection | asyncpg.Pool, repository_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {COLUMNS} FROM repositories WHERE id = $1", repository_id)


async def by_github_id(conn: asyncpg.Connection | asyncpg.Pool,
                       github_repo_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {COLUMNS} FROM repositories WHERE github_repo_id = $1", github_repo_id)


async def by_full_name(conn: asyncpg.Connection | asyncpg.Pool,
                       full_name: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {COLUMNS} FROM repositories WHERE lower(github_full_name) = lower($1) "
        "ORDER BY deleted_at NULLS FIRST, id DESC LIMIT 1", full_name)


async def mark_pending(conn: asyncpg.Connection, repository_id: int, *, retry: bool,
                       revive: bool = False) -> None:
    """Scenario A/D: wait for a sync. ``retry`` counts a retried failure; ``revive``
    brings back a mirror that was deleted on unstar (it needs a new project)."""
    await conn.execute(
        """UPDATE repositories SET sync_status = 'pending',
               retry_count = retry_count + CASE WHEN $2 THEN 1 ELSE 0 END,
               unstarred_at = NULL,
               deleted_at = CASE WHEN $3 THEN NULL ELSE deleted_at END,
               onedev_project_id = CASE WHEN $3 THEN NULL ELSE onedev_project_id END,
               onedev_project_path = CASE WHEN $3 THEN NULL ELSE onedev_project_path END,
               onedev_url = CASE WHEN $3 THEN NULL ELSE onedev_url END,
               last_synced_refs = CASE WHEN $3 THEN '{}'::jsonb ELSE last_synced_refs END,
               refs_digest = CASE WHEN $3 THEN NULL ELSE refs_digest END,
               updated_at = now()
         WHERE id = $1""",
        repository_id, retry, revive,
    )


async def touch_seen(conn: asyncpg.Connection, repository_id: int) -> None:
    """Scenario B: starred again while complete; note it, nothing to do."""
    await conn.execute("UPDATE repositories SET unstarred_at = NULL, updated_at = now() "
                       "WHERE id = $1", repository_id)


async def mark_in_progress(conn: asyncpg.Connection | asyncpg.Pool, repository_id: int) -> None:
    await conn.execute("UPDATE repositories SET sync_status = 'in_progress', updated_at = now() "
                       "WHERE id = $1", repository_id)


async def set_project(conn: asyncpg.Connection | asyncpg.Pool, repository_id: int,
                      project_id: int, path: str, url: str, *, adopted: bool = False) -> None:
    """Record the mirror's project (a unique index keeps one project to one repository)."""
    await conn.execute(
        """UPDATE repositories SET onedev_project_id = $2, onedev_project_path = $3,
               onedev_url = $4, onedev_adopted = $5, updated_at = now() WHERE id = $1""",
        repository_id, project_id, path, url, adopted)


async def project_holder(conn: asyncpg.Connection | asyncpg.Pool, project_id: int) -> int | None:
    """The GitHub repository id whose mirror the OneDev project holds, if PAO recorded one."""
    return await conn.fetchval(
        "SELECT github_repo_id FROM repositories WHERE onedev_project_id = $1", project_id)


async def refresh_identity(conn: asyncpg.Connection | asyncpg.Pool, repository_id: int,
                           repo: GitHubRepo) -> None:
    """Take GitHub's current name, URLs and default branch (renames and transfers)."""
    await conn.execute(
        """UPDATE repositories SET github_full_name = $2, github_owner = $3, github_name = $4,
               github_clone_url = $5, github_url = coalesce(nullif($6, ''), github_url),
               github_default_branch = coalesce($7, github_default_branch),
               github_is_private = $8, updated_at = now()
         WHERE id = $1""",
        repository_id, repo.full_name, repo.owner, repo.name, repo.clone_url, repo.html_url,
        repo.default_branch, repo.private)


async def forget_project(conn: asyncpg.Connection | asyncpg.Pool, repository_id: int) -> None:
    """The OneDev project is gone: the next sync creates one and pushes every ref."""
    await conn.execute(
        """UPDATE repositories SET onedev_project_id = NULL, onedev_project_path = NULL,
               onedev_url = NULL, onedev_adopted = false, last_synced_refs = '{}'::jsonb,
               refs_digest = NULL, updated_at = now() WHERE id = $1""", repository_id)


async def mark_completed(conn: asyncpg.Connection, repository_id: int, refs: dict[str, str],
                         digest: str, default_branch: str | None) -> None:
    await conn.execute(
        """UPDATE repositories SET sync_status = 'completed', last_synced_at = now(),
               last_synced_refs = $2, refs_digest = $3, error_message = NULL, retry_count = 0,
               github_default_branch = coalesce($4, github_default_branch), updated_at = now()
         WHERE id = $1""",
        repository_id, refs, digest, default_branch)


async def mark_failed(conn: asyncpg.Connection, repository_id: int, error: str, *,
                      final: bool) -> None:
    """A failed attempt: 'failed' when no retry follows, else back to 'pending'."""
    await conn.execute(
        """UPDATE repositories SET sync_status = $3, error_message = $2,
               retry_count = retry_count + CASE WHEN $3 = 'pending' THEN 1 ELSE 0 END,
               updated_at = now()
         WHERE id = $1""",
        repository_id, error, "failed" if final else "pending")


async def mark_unstarred(conn: asyncpg.Connection, repository_id: int) -> None:
    await conn.execute("UPDATE repositories SET unstarred_at = coalesce(unstarred_at, now()), "
                       "updated_at = now() WHERE id = $1", repository_id)


async def mark_deleted(conn: asyncpg.Connection, repository_id: int) -> None:
    await conn.execute(
        """UPDATE repositories SET deleted_at = now(), onedev_project_id = NULL,
               onedev_project_path = NULL, onedev_url = NULL, last_synced_refs = '{}'::jsonb,
               refs_digest = NULL, updated_at = now() WHERE id = $1""", repository_id)


async def log_sync(conn: asyncpg.Connection | asyncpg.Pool, repository_id: int, *,
                   event_type: str, status: str, duration: float | None = None,
                   refs_pushed: int | None = None, bytes_fetched: int | None = None,
                   job_id: int | None = None, error: str | None = None,
                   refs_refused: list[str] | None = None) -> None:
    await conn.execute(
        """INSERT INTO sync_logs (repository_id, event_type, status, duration_seconds,
               refs_pushed, bytes_fetched, job_id, error, refs_refused)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)""",
        repository_id, event_type, status, duration, refs_pushed, bytes_fetched, job_id, error,
        refs_refused or None)


LOG_COLUMNS = """id, event_type, status, duration_seconds, refs_pushed, bytes_fetched, job_id,
    error, refs_refused, created_at"""


async def recent_logs(conn: asyncpg.Connection | asyncpg.Pool, repository_id: int,
                      limit: int = 20) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"""SELECT {LOG_COLUMNS}
             FROM sync_logs WHERE repository_id = $1 ORDER BY id DESC LIMIT $2""",
        repository_id, limit)


async def recent_logs_of(conn: asyncpg.Connection | asyncpg.Pool, repository_ids: list[int],
                         limit: int) -> dict[int, list[asyncpg.Record]]:
    """``recent_logs`` of many mirrors in one query: each id's last ``limit`` logs, newest first."""
    logs: dict[int, list[asyncpg.Record]] = {i: [] for i in repository_ids}
    if repository_ids:
        for row in await conn.fetch(
                f"""SELECT * FROM (
                       SELECT repository_id, {LOG_COLUMNS},
                              row_number() OVER (PARTITION BY repository_id ORDER BY id DESC) AS n
                         FROM sync_logs WHERE repository_id = ANY($1::bigint[])) l
                    WHERE n <= $2 ORDER BY repository_id, id DESC""", repository_ids, limit):
            logs[row["repository_id"]].append(row)
    return logs


async def page(conn: asyncpg.Connection | asyncpg.Pool, *, status: str | None, after_id: int,
               limit: int) -> list[asyncpg.Record]:
    """Live mirrors by id, ``limit`` after ``after_id`` (keyset pages)."""
    return await conn.fetch(
        f"""SELECT {COLUMNS} FROM repositories
             WHERE deleted_at IS NULL AND ($1::text IS NULL OR sync_status = $1) AND id > $2
             ORDER BY id LIMIT $3""",
        status, after_id, limit)


async def refreshable_ids(conn: asyncpg.Connection | asyncpg.Pool) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT id, github_repo_id FROM repositories
            WHERE deleted_at IS NULL AND sync_status IN ('completed', 'failed') ORDER BY id""")


async def installation_for(conn: asyncpg.Connection | asyncpg.Pool, github_repo_id: int,
                           owner: str) -> int | None:
    """The installation whose token reaches the repository, if the App is installed there."""
    return await conn.fetchval(
        """SELECT i.id FROM installations i
             LEFT JOIN installation_repositories r
                    ON r.installation_id = i.id AND r.repository_id = $1
            WHERE i.deleted_at IS NULL AND NOT i.suspended
              AND (r.repository_id IS NOT NULL OR lower(i.account_login) = lower($2))
            ORDER BY (r.repository_id IS NOT NULL) DESC, i.id LIMIT 1""",
        github_repo_id, owner)


async def any_installation(conn: asyncpg.Connection | asyncpg.Pool) -> int | None:
    """Some live installation: its token reads public repositories (and counts against
    the App's rate limit rather than the anonymous one)."""
    return await conn.fetchval("SELECT id FROM installations WHERE deleted_at IS NULL "
                               "AND NOT suspended ORDER BY id LIMIT 1")


def _iso(value: Any) -> Any:
    return value.isoformat() if value is not None and hasattr(value, "isoformat") else value


def log_view(row: asyncpg.Record) -> dict[str, Any]:
    return {**dict(row), "created_at": _iso(row["created_at"])}


def public_view(row: asyncpg.Record) -> dict[str, Any]:
    """A mirror as the REST API and the CLI show it."""
    return {
        "id": row["id"],
        "github": {
            "id": row["github_repo_id"], "full_name": row["github_full_name"],
            "url": row["github_url"], "default_branch": row["github_default_branch"],
            "private": row["github_is_private"], "size_kb": row["github_size_kb"],
        },
        "onedev": {
            "project_id": row["onedev_project_id"], "path": row["onedev_project_path"],
            "url": row["onedev_url"], "adopted": row["onedev_adopted"],
        },
        "sync_status": row["sync_status"],
        "retry_count": row["retry_count"],
        "last_synced_at": _iso(row["last_synced_at"]),
        "refs": len(row["last_synced_refs"] or {}),
        "error_message": row["error_message"],
        "source": row["source"],
        "unstarred_at": _iso(row["unstarred_at"]),
        "deleted_at": _iso(row["deleted_at"]),
        "created_at": _iso(row["created_at"]),
        "updated_at": _iso(row["updated_at"]),
    }
