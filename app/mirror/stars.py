"""Stars reconciliation: poll ``GET /users/{user}/starred`` and mirror what is new.

GitHub sends ``watch`` only for repositories where the App is installed, so the
poll catches the rest. gidgethub's cache (``GitHubClients.http_cache``) makes
the poll conditional: an unchanged list costs one 304 per page.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from app.mirror import requests, store
from app.mirror.config import MirrorSettings
from app.mirror.store import GitHubRepo

log = logging.getLogger("app.mirror")


@dataclass
class PollResult:
    user: str
    stars: int = 0
    queued: list[str] = field(default_factory=list)
    unstarred: list[str] = field(default_factory=list)


async def _api_for(github: Any, pool: asyncpg.Pool, user: str) -> Any:
    """A client for the public stars list: an installation on the user's account if any."""
    installation_id = None
    if github.app_mode:
        installation_id = await pool.fetchval(
            """SELECT id FROM installations WHERE deleted_at IS NULL AND NOT suspended
               ORDER BY (lower(account_login) = lower($1)) DESC, id LIMIT 1""", user)
    return await github.api(installation_id)


async def starred(github: Any, pool: asyncpg.Pool, user: str) -> list[dict[str, Any]]:
    gh = await _api_for(github, pool, user)
    return [repo async for repo in gh.getiter("/users/{user}/starred", {"user": user})]


async def reconcile(pool: asyncpg.Pool, ms: MirrorSettings, user: str,
                    stars: list[dict[str, Any]], enqueue: requests.Enqueue | None = None
                    ) -> PollResult:
    """Queue a mirror for every star not seen before; apply the unstar policy to the
    stars that disappeared. One transaction: a crash leaves the previous state."""
    result = PollResult(user, stars=len(stars))
    current = {int(r["id"]): GitHubRepo.from_payload(r) for r in stars if "id" in r}
    async with pool.acquire() as conn, conn.transaction():
        queue = enqueue or requests.pool_enqueue(conn)
        seen = {r["github_repo_id"]: r["full_name"] for r in await conn.fetch(
            "SELECT github_repo_id, full_name FROM mirror_stars WHERE user_login = $1", user)}
        for repo_id, repo in current.items():
            if repo_id in seen:
                if seen[repo_id] != repo.full_name:  # renamed or transferred on GitHub
                    row = await store.by_github_id(conn, repo_id)
                    if row is not None:
                        await store.refresh_identity(conn, row["id"], repo)
                continue
            installation_id = await store.installation_for(conn, repo_id, repo.owner)
            decision = await requests.request_mirror(
                conn, queue, repo, installation_id=installation_id, source="poll",
                starred_by=user)
            if decision.outcome == "queued":
                result.queued.append(repo.full_name)
        for repo_id, full_name in seen.items():
            if repo_id in current:
                continue
            still_starred = await conn.fetchval(
                "SELECT 1 FROM mirror_stars WHERE github_repo_id = $1 AND user_login <> $2",
                repo_id, user)
            if not still_starred and await requests.request_unstar(
                    conn, queue, repo_id, policy=ms.on_unstar, event="unstar"):
                result.unstarred.append(full_name)
        await conn.execute(
            "DELETE FROM mirror_stars WHERE user_login = $1 AND NOT (github_repo_id = ANY($2))",
            user, list(current))
        await conn.execute(
            """INSERT INTO mirror_stars (user_login, github_repo_id, full_name)
               SELECT $1, r.id, r.name FROM unnest($2::bigint[], $3::text[]) AS r(id, name)
               ON CONFLICT (user_login, github_repo_id) DO UPDATE
                   SET full_name = EXCLUDED.full_name, seen_at = now()""",
            user, list(current), [r.full_name for r in current.values()])
    log.info("stars poll for %s: %d stars, %d queued, %d unstarred", user, result.stars,
             len(result.queued), len(result.unstarred))
    return result


async def poll_all(pool: asyncpg.Pool, github: Any, ms: MirrorSettings) -> list[PollResult]:
    return [await reconcile(pool, ms, user, await starred(github, pool, user))
            for user in ms.users]
