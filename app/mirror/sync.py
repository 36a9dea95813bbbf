"""One mirror sync: make sure the OneDev project exists, fetch from GitHub, push to OneDev.

Errors are sorted into those retrying can fix (network, timeouts, 5xx: the queue
retries with backoff) and those it cannot (401/403, not found, a name conflict
under policy ``fail``, a full disk): the latter fail the mirror at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from app.git.run import GitAuthError, GitError, GitNotFoundError, GitTimeout
from app.github import GitHubAuthError
from app.jobs import JobContext, PermanentJobError
from app.log import scrub
from app.mirror import git, store
from app.mirror.config import MirrorSettings, mirror_settings
from app.mirror.naming import (
    changed_refs,
    git_timeout,
    project_name,
    project_path,
    refs_digest,
    timestamped,
)
from app.mirror.onedev import OneDevClient, OneDevError, OneDevNameTaken, OneDevNotFound

log = logging.getLogger("app.mirror")


class MirrorConflict(Exception):
    """The OneDev project name is taken and PAO_MIRROR_ON_CONFLICT=fail."""


class MirrorUnavailable(Exception):
    """A failure worth retrying (already described for the user)."""


class ProjectGone(Exception):
    """The OneDev project PAO recorded was deleted there; the retry creates a new one."""


@dataclass(frozen=True)
class SyncResult:
    project_id: int
    project_path: str
    refs: dict[str, str]
    refs_pushed: int
    bytes_fetched: int


def onedev_client(ctx_http: Any, ms: MirrorSettings) -> OneDevClient:
    assert ms.onedev_url and ms.onedev_token
    return OneDevClient(ctx_http, ms.onedev_url, ms.onedev_token, ms.onedev_user)


def permanent(exc: BaseException) -> bool:
    """True when retrying cannot help."""
    if isinstance(exc, OneDevError):
        return not exc.retryable
    if isinstance(exc, GitAuthError | GitNotFoundError | MirrorConflict | git.DiskFull
                  | GitHubAuthError):
        return True
    return False


def _tail(exc: GitError) -> str:
    return " / ".join(exc.output.strip().splitlines()[-3:])


def _git_command(args: list[str]) -> str:
    """The git subcommand in ``args`` (skipping ``-c name=value`` options)."""
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg == "-c":
            skip = True
        elif not arg.startswith("-"):
            return arg
    return ""


def describe(exc: BaseException) -> str:
    """A short, token-free message a user can act on."""
    command = _git_command(exc.git_args) if isinstance(exc, GitError) else ""
    side = {"fetch": "GitHub", "push": "OneDev"}.get(command)
    if isinstance(exc, GitTimeout):
        text = (f"git {command} ({side or 'local'}) {exc.output.strip()}; "
                "PAO_MIRROR_TIMEOUT sets the limit")
    elif isinstance(exc, GitAuthError):
        text = f"{side or 'remote'} refused the credentials (git {command}): {_tail(exc)}"
    elif isinstance(exc, GitNotFoundError):
        text = (f"{side or 'remote'} repository not found, or not visible to the token "
                f"(git {command}): {_tail(exc)}")
    elif isinstance(exc, GitError):
        text = f"git {command} ({side or 'local'}) failed: {_tail(exc)}"
    else:
        text = str(exc) or type(exc).__name__
    return scrub(text)[:2000]


async def ensure_project(client: OneDevClient, ms: MirrorSettings, row: asyncpg.Record,
                         now: datetime) -> tuple[int, str]:
    """The OneDev project for this mirror, created when missing, by the conflict policy."""
    parent_id = None
    if ms.onedev_parent:
        parent_id = await client.project_id(ms.onedev_parent)
        if parent_id is None:
            raise OneDevNotFound(f"PAO_ONEDEV_PARENT: OneDev has no project at "
                                 f"'{ms.onedev_parent}'; create it or fix the path", 404)
    description = f"Synced from GitHub: {row['github_full_name']}"
    name = project_name(ms.name_template, row["github_owner"], row["github_name"])
    path = project_path(ms.onedev_parent, name)
    existing = await client.project_id(path)
    if existing is None:
        try:
            return await client.create_project(name, parent_id=parent_id,
                                               description=description), path
        except OneDevNameTaken:
            existing = await client.project_id(path)
            if existing is None:
                same = [p for p in await client.find_by_name(name)
                        if p.get("parentId") == parent_id]
                existing = int(same[0]["id"]) if same else None
            if existing is None:
                raise
    project = await client.project(existing)
    if isinstance(project, dict) and project.get("description") == description:
        return existing, path  # ours, from an earlier attempt
    if ms.on_conflict == "use_existing":
        return existing, path
    if ms.on_conflict == "fail":
        raise MirrorConflict(f"OneDev project '{path}' already exists and "
                             "PAO_MIRROR_ON_CONFLICT=fail")
    name = timestamped(name, now)
    path = project_path(ms.onedev_parent, name)
    return await client.create_project(name, parent_id=parent_id, description=description), path


async def github_token(ctx: JobContext, row: asyncpg.Record) -> str | None:
    """The installation token (App mode) or PAO_REPO_TOKEN; None for a public repository
    when PAO has no credentials at all."""
    installation_id = row["installation_id"] or await store.installation_for(
        ctx.pool, row["github_repo_id"], row["github_owner"])
    if installation_id is None and not row["github_is_private"] and ctx.github.app_mode:
        installation_id = await store.any_installation(ctx.pool)
    try:
        return await ctx.github.token(installation_id)
    except GitHubAuthError:
        if row["github_is_private"]:
            raise
        return None


async def sync_repository(ctx: JobContext, ms: MirrorSettings, row: asyncpg.Record,
                          event: str = "manual") -> SyncResult:
    client = onedev_client(ctx.http, ms)
    timeout = git_timeout(ms.timeout, row["github_size_kb"])
    source = git.Remote(row["github_clone_url"], await github_token(ctx, row))
    cache = git.cache_path(ctx.settings.data_dir, row["github_repo_id"])
    last: dict[str, str] = dict(row["last_synced_refs"] or {})
    default_branch = row["github_default_branch"]

    async def project() -> tuple[int, str]:
        if row["onedev_project_id"] is not None:
            return row["onedev_project_id"], row["onedev_project_path"]
        project_id, path = await ensure_project(client, ms, row, datetime.now(UTC))
        # Remember the project at once: a retry must not create a second one.
        await store.set_project(ctx.pool, row["id"], project_id, path, client.project_url(path))
        return project_id, path

    async with git.workdir(cache, row["github_size_kb"]) as (repo, is_cache):
        before = await git.object_bytes(repo)
        # The project does not depend on the fetch: ask OneDev while git fetches.
        outcomes = await asyncio.gather(project(), git.fetch(repo, source, timeout=timeout),
                                        return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        project_id, path = outcomes[0]  # type: ignore[misc]
        fetched = max(0, await git.object_bytes(repo) - before)
        refs = await git.local_refs(repo)
        pushed = 0
        if refs and (refs_digest(refs) != row["refs_digest"] or not last):
            target = git.Remote(client.clone_url(path), ms.onedev_token, ms.onedev_user or "pao")
            try:
                await git.push(repo, target, default_branch=default_branch, refs=refs,
                               timeout=timeout)
            except GitNotFoundError:
                if row["onedev_project_id"] is None or await _project_exists(client, project_id):
                    raise
                # Deleted in OneDev after we made it: forget it, so the retry starts afresh
                # (else every retry pushes to the same missing project and fails for good).
                await store.forget_project(ctx.pool, row["id"])
                raise ProjectGone(f"OneDev project '{path}' (id {project_id}) no longer exists; "
                                  "the retry creates it again") from None
            pushed = changed_refs(last, refs)
            if default_branch and f"refs/heads/{default_branch}" in refs and (
                    not last or await client.default_branch(project_id) != default_branch):
                await client.set_default_branch(project_id, default_branch)
        if event == "refresh" and is_cache:
            await git.tidy(repo, timeout=timeout)
    return SyncResult(project_id, path, refs, pushed, fetched)


async def _project_exists(client: OneDevClient, project_id: int) -> bool:
    try:
        await client.project(project_id)
    except OneDevNotFound:
        return False
    return True


def _fields(row: asyncpg.Record, **more: Any) -> dict[str, Any]:
    return {"github_repo": row["github_full_name"], "repository_id": row["id"],
            "onedev_repo": row["onedev_project_path"], **more}


def _log(level: int, event: str, fields: dict[str, Any]) -> None:
    text = " ".join(f"{k}={v}" for k, v in fields.items() if v is not None)
    log.log(level, "%s %s", event, text, extra={"fields": {"event": event, **fields}})


async def run(ctx: JobContext, repository_id: int, event: str) -> dict[str, Any]:
    """The ``mirror.sync`` task body."""
    ms = mirror_settings(ctx.settings)
    if not ms.enabled:
        raise PermanentJobError("mirroring is off (PAO_ONEDEV_URL is unset)")
    row = await store.get(ctx.pool, repository_id)
    if row is None or row["deleted_at"] is not None:
        return {"skipped": "mirror deleted"}
    await store.mark_in_progress(ctx.pool, repository_id)
    _log(logging.INFO, "sync_initiated", _fields(row, event=event, attempt=ctx.attempt))
    started = time.monotonic()
    try:
        result = await sync_repository(ctx, ms, row, event)
    except Exception as exc:
        duration = round(time.monotonic() - started, 3)
        is_permanent = permanent(exc)
        final = is_permanent or ctx.last_attempt
        message = describe(exc)
        async with ctx.pool.acquire() as conn, conn.transaction():
            await store.mark_failed(conn, repository_id, message, final=final)
            await store.log_sync(conn, repository_id, event_type=event,
                                 status="failed" if final else "retrying", duration=duration,
                                 job_id=ctx.job_id, error=message)
        _log(logging.WARNING if not final else logging.ERROR, "sync_failed",
             _fields(row, duration_seconds=duration, error=message,
                     retry=not final, attempt=ctx.attempt))
        if is_permanent:
            raise PermanentJobError(message) from None
        raise MirrorUnavailable(message) from None
    duration = round(time.monotonic() - started, 3)
    async with ctx.pool.acquire() as conn, conn.transaction():
        await store.mark_completed(conn, repository_id, result.refs, refs_digest(result.refs),
                                   None)
        await store.log_sync(conn, repository_id, event_type=event, status="success",
                             duration=duration, refs_pushed=result.refs_pushed,
                             bytes_fetched=result.bytes_fetched, job_id=ctx.job_id)
    _log(logging.INFO, "sync_completed",
         _fields(row, onedev_repo=result.project_path, duration_seconds=duration,
                 refs=len(result.refs), refs_pushed=result.refs_pushed,
                 bytes_fetched=result.bytes_fetched))
    return {"project_id": result.project_id, "refs": len(result.refs),
            "refs_pushed": result.refs_pushed, "duration_seconds": duration}
