"""One mirror sync: make sure the OneDev project exists, fetch from GitHub, push to OneDev.

Errors are sorted into those retrying can fix (network, timeouts, 5xx: the queue
retries with backoff) and those it cannot (401/403, not found, a name conflict
under policy ``fail``, a full disk): the latter fail the mirror at once.

A OneDev project holds one GitHub repository's mirror: PAO records the project with the
repository (by GitHub id) when it creates or adopts it, and never pushes a repository
into a project that holds another's.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from app.console.config import github_web
from app.git.run import GitAuthError, GitError, GitNotFoundError, GitTimeout
from app.github import GitHubAuthError
from app.github.hosts import on_github
from app.jobs import JobContext, PermanentJobError
from app.log import scrub
from app.mirror import git, identity, store
from app.mirror.config import MirrorSettings, mirror_settings
from app.mirror.naming import (
    changed_refs,
    described_owner,
    description,
    git_timeout,
    project_name,
    project_path,
    refs_digest,
    suffixed,
)
from app.mirror.onedev import OneDevClient, OneDevError, OneDevNameTaken, OneDevNotFound

log = logging.getLogger("app.mirror")


class MirrorConflict(Exception):
    """No OneDev project name is free for this repository under PAO_MIRROR_ON_CONFLICT."""


class MirrorUnavailable(Exception):
    """A failure worth retrying (already described for the user)."""


class ProjectGone(Exception):
    """The OneDev project PAO recorded was deleted there; the retry creates a new one."""


@dataclass(frozen=True)
class Project:
    id: int
    path: str
    adopted: bool = False


@dataclass(frozen=True)
class SyncResult:
    project_id: int
    project_path: str
    refs: dict[str, str]
    refs_pushed: int
    bytes_fetched: int
    # What OneDev holds of ours afterwards (``refs`` less what it refused), and the refusals.
    mirrored: dict[str, str] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)


class ForeignCloneUrl(Exception):
    """A private repository's clone URL is not on the configured GitHub: no token goes there."""


def onedev_client(ctx_http: Any, ms: MirrorSettings) -> OneDevClient:
    assert ms.onedev_url and ms.onedev_token
    return OneDevClient(ctx_http, ms.onedev_url, ms.onedev_token, ms.onedev_user)


def permanent(exc: BaseException) -> bool:
    """True when retrying cannot help."""
    if isinstance(exc, OneDevError):
        return not exc.retryable
    if isinstance(exc, GitAuthError | GitNotFoundError | MirrorConflict | git.DiskFull
                  | GitHubAuthError | ForeignCloneUrl):
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


HolderOf = Callable[[int], Awaitable[int | None]]


async def _parent_id(client: OneDevClient, ms: MirrorSettings) -> int | None:
    if not ms.onedev_parent:
        return None
    parent_id = await client.project_id(ms.onedev_parent)
    if parent_id is None:
        raise OneDevNotFound(f"PAO_ONEDEV_PARENT: OneDev has no project at "
                             f"'{ms.onedev_parent}'; create it or fix the path", 404)
    return parent_id


async def ensure_project(client: OneDevClient, ms: MirrorSettings, row: asyncpg.Record,
                         holder_of: HolderOf) -> Project:
    """The OneDev project for this mirror: created, or found again after a lost answer, or
    (policy ``adopt``) an existing project PAO did not create.

    ``holder_of(project_id)`` is the GitHub repository id PAO recorded for a project. A
    project held by another repository, by PAO's records or by its description, is never
    used: the name gets a deterministic suffix (policy ``suffix``) or the sync stops
    (``fail``). Names compare case-insensitively, as OneDev compares them.
    """
    parent_id = await _parent_id(client, ms)
    github_id = row["github_repo_id"]
    text = description(row["github_full_name"], github_id)
    base = project_name(ms.name_template, row["github_owner"], row["github_name"])
    taken: list[str] = []
    for name in (base, suffixed(base, github_id)):
        path = project_path(ms.onedev_parent, name)
        existing = await client.project_id(path)
        if existing is None:
            try:
                return Project(await client.create_project(name, parent_id=parent_id,
                                                           description=text), path)
            except OneDevNameTaken:
                existing = await client.project_id(path)
                if existing is None:
                    raise
        holder = await holder_of(existing)
        marked = described_owner((await client.project(existing)).get("description"))
        if holder == github_id or (holder is None and marked in (github_id,
                                                                 row["github_full_name"])):
            return Project(existing, path)  # ours, from an earlier attempt
        if holder is not None or marked is not None:
            taken.append(f"'{path}' holds the mirror of another GitHub repository")
        elif ms.on_conflict == "adopt":
            return Project(existing, path, adopted=True)
        else:
            taken.append(f"'{path}' exists and PAO did not create it")
        if ms.on_conflict != "suffix":
            break
    raise MirrorConflict(
        f"no OneDev project for {row['github_full_name']}: {'; '.join(taken)} "
        f"(PAO_MIRROR_ON_CONFLICT={ms.on_conflict}; 'suffix' picks another name, "
        "'adopt' uses a project PAO did not create)")


async def follow_rename(client: OneDevClient, ms: MirrorSettings, row: asyncpg.Record,
                        project: Project) -> Project:
    """Under PAO_MIRROR_ON_RENAME=rename, give a project PAO created the name GitHub's new
    full name makes; a name taken in OneDev keeps the old one."""
    if ms.on_rename != "rename" or project.adopted:
        return project
    github_id = row["github_repo_id"]
    base = project_name(ms.name_template, row["github_owner"], row["github_name"])
    current = project.path.rsplit("/", 1)[-1]
    if current.lower() in (base.lower(), suffixed(base, github_id).lower()):
        return project
    try:
        await client.rename_project(project.id, base,
                                    description(row["github_full_name"], github_id))
    except OneDevNameTaken:
        log.warning("OneDev project %s keeps its name: '%s' is taken", project.path, base)
        return project
    return Project(project.id, project_path(ms.onedev_parent, base), project.adopted)


async def github_token(ctx: JobContext, row: asyncpg.Record) -> str | None:
    """The installation token (App mode) or PAO_REPO_TOKEN; None for a public repository
    when PAO has no credentials at all.

    The clone URL was learnt from a webhook payload or an API answer: the token goes only to
    the configured GitHub's own host. Another host gets no token (a public repository still
    mirrors), and a private repository there is a permanent error naming both hosts."""
    web_url = github_web(ctx.settings)
    if not on_github(row["github_clone_url"], web_url):
        if row["github_is_private"]:
            raise ForeignCloneUrl(
                f"{row['github_full_name']}: clone URL {scrub(row['github_clone_url'])} is not on "
                f"the configured GitHub ({web_url}); PAO sends its GitHub token only there "
                "(set PAO_GITHUB_URL if GitHub's web address is not derived from PAO_GITHUB_API_URL)")
        return None
    try:
        return await ctx.github.token(await identity.installation_for_row(ctx, row))
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

    async def project() -> Project:
        if row["onedev_project_id"] is not None:
            known = Project(row["onedev_project_id"], row["onedev_project_path"],
                            row["onedev_adopted"])
            renamed = await follow_rename(client, ms, row, known)
            if renamed != known:
                await store.set_project(ctx.pool, row["id"], renamed.id, renamed.path,
                                        client.project_url(renamed.path), adopted=renamed.adopted)
            return renamed
        found = await ensure_project(client, ms, row,
                                     lambda pid: store.project_holder(ctx.pool, pid))
        # Remember the project at once: a retry must not create a second one.
        await store.set_project(ctx.pool, row["id"], found.id, found.path,
                                client.project_url(found.path), adopted=found.adopted)
        return found

    async with git.workdir(cache, row["github_size_kb"]) as (repo, is_cache):
        before = await git.object_bytes(repo)
        # The project does not depend on the fetch: ask OneDev while git fetches.
        outcomes = await asyncio.gather(project(), git.fetch(repo, source, timeout=timeout),
                                        return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        target_project: Project = outcomes[0]  # type: ignore[assignment]
        path = target_project.path
        fetched = max(0, await git.object_bytes(repo) - before)
        refs = await git.local_refs(repo)
        pushed = 0
        mirrored, refused = dict(last), []
        if refs and (refs_digest(refs) != row["refs_digest"] or not last):
            target = git.Remote(client.clone_url(path), ms.onedev_token, ms.onedev_user or "pao")
            try:
                refused = await push_in_order(client, target_project, repo, target, refs=refs,
                                              last=last, default_branch=default_branch,
                                              timeout=timeout)
            except GitNotFoundError:
                if row["onedev_project_id"] is None or await _project_exists(
                        client, target_project.id):
                    raise
                # Deleted in OneDev after we made it: forget it, so the retry starts afresh
                # (else every retry pushes to the same missing project and fails for good).
                await store.forget_project(ctx.pool, row["id"])
                raise ProjectGone(f"OneDev project '{path}' (id {target_project.id}) no longer "
                                  "exists; the retry creates it again") from None
            mirrored = {ref: sha for ref, sha in refs.items() if ref not in refused}
            # A refused update or deletion leaves the ref on OneDev as it was.
            mirrored.update({ref: last[ref] for ref in refused if ref in last})
            pushed = changed_refs(last, mirrored)
        if event == "refresh" and is_cache:
            await git.tidy(repo, timeout=timeout)
    return SyncResult(target_project.id, path, refs, pushed, fetched, mirrored, refused)


async def push_in_order(client: OneDevClient, project: Project, repo: Any, target: git.Remote, *,
                        refs: dict[str, str], last: dict[str, str], default_branch: str | None,
                        timeout: float) -> list[str]:
    """Push new and moved refs, set the default branch, then delete what GitHub deleted:
    a renamed default branch is in place and the default before its old name goes (OneDev
    refuses to delete its current branch). Returns the refs OneDev refused."""
    refused = await git.push_updates(repo, target, refs=refs, timeout=timeout)
    default_ref = f"refs/heads/{default_branch}" if default_branch else None
    if (default_ref in refs and default_ref not in refused and not project.adopted
            and (not last or await client.default_branch(project.id) != default_branch)):
        await client.set_default_branch(project.id, default_branch)  # type: ignore[arg-type]
    refused += await git.prune(repo, target, refs=refs, pushed_before=last,
                               adopted=project.adopted, timeout=timeout)
    return refused


async def _project_exists(client: OneDevClient, project_id: int) -> bool:
    try:
        await client.project(project_id)
    except OneDevNotFound:
        return False
    return True


def _refusal(refused: list[str]) -> str | None:
    if not refused:
        return None
    return scrub(f"OneDev refused {len(refused)} ref(s): {', '.join(refused)} (its receive "
                 "hook cannot take '+', '&', '=' or '%' in ref names; in an adopted project "
                 "its branch protections or default branch may refuse a deletion)")[:2000]


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
    if event == "refresh":
        # A rename or transfer missed while PAO was down; a push or star would have said so.
        row = await identity.reread(ctx, row)
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
        await store.mark_completed(conn, repository_id, result.mirrored,
                                   refs_digest(result.refs), None)
        await store.log_sync(conn, repository_id, event_type=event, status="success",
                             duration=duration, refs_pushed=result.refs_pushed,
                             bytes_fetched=result.bytes_fetched, job_id=ctx.job_id,
                             error=_refusal(result.refused), refs_refused=result.refused)
    _log(logging.INFO, "sync_completed",
         _fields(row, onedev_repo=result.project_path, duration_seconds=duration,
                 refs=len(result.refs), refs_pushed=result.refs_pushed,
                 bytes_fetched=result.bytes_fetched))
    return {"project_id": result.project_id, "refs": len(result.refs),
            "refs_pushed": result.refs_pushed, "duration_seconds": duration}
