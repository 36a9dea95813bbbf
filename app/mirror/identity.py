"""The periodic refresh re-reads a mirrored repository's name, URLs and default branch by id.

Webhooks and the stars poll carry a repository's current name; a rename or transfer that
happened while PAO was down reaches PAO no other way until the next push. ``GET
/repositories/{id}`` finds the repository whatever its name now is, and gidgethub's cache
(``GitHubClients.http_cache``) makes it conditional: an unchanged repository is a 304.
The sync then applies ``PAO_MIRROR_ON_RENAME`` as it does after a webhook.
"""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
import asyncpg
import gidgethub

from app.github import GitHubAuthError
from app.intake import PayloadError
from app.mirror import store
from app.mirror.store import GitHubRepo

log = logging.getLogger("app.mirror")


async def installation_for_row(ctx: Any, row: asyncpg.Record) -> int | None:
    """The installation whose token reaches the mirrored repository (any, for a public one)."""
    installation_id = row["installation_id"] or await store.installation_for(
        ctx.pool, row["github_repo_id"], row["github_owner"])
    if installation_id is None and not row["github_is_private"] and ctx.github.app_mode:
        installation_id = await store.any_installation(ctx.pool)
    return installation_id


def changed(row: asyncpg.Record, repo: GitHubRepo) -> bool:
    return (row["github_full_name"], row["github_clone_url"], row["github_default_branch"],
            row["github_is_private"]) != (repo.full_name, repo.clone_url,
                                          repo.default_branch or row["github_default_branch"],
                                          repo.private)


async def reread(ctx: Any, row: asyncpg.Record) -> asyncpg.Record:
    """``row`` after taking GitHub's current identity of its repository, if it changed.

    Anything that stops the look-up (no credentials, the repository gone or hidden, GitHub
    unreachable) leaves the row as it is: the sync that follows reports what is wrong.
    """
    try:
        gh = await ctx.github.api(await installation_for_row(ctx, row))
        data = await gh.getitem("/repositories/{repository_id}",
                                {"repository_id": str(row["github_repo_id"])})
        repo = GitHubRepo.from_payload(data)
    except (GitHubAuthError, gidgethub.GitHubException, aiohttp.ClientError, TimeoutError,
            PayloadError) as exc:
        log.warning("could not re-read %s (id %s) from GitHub: %s", row["github_full_name"],
                    row["github_repo_id"], exc)
        return row
    if repo.id != row["github_repo_id"] or not changed(row, repo):
        return row
    await store.refresh_identity(ctx.pool, row["id"], repo)
    if repo.full_name != row["github_full_name"]:
        log.info("mirrored repository %s is now %s on GitHub", row["github_full_name"], repo.full_name)
    return await store.get(ctx.pool, row["id"]) or row
