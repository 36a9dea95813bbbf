"""The ``catalog_check`` job: one ``PAO catalog`` check run for a pull request's head.

Flow: read the newest request for the PR -> create the check run (in_progress) on
its head SHA -> fetch base and head into the bare cache -> parse the head catalog
(only blobs not parsed before) and the base versions of the changed files ->
evaluate -> PATCH the output, 50 annotations per request, the last one completing
the run. A retried job reuses its check run; a head already checked is skipped
unless the check was rerequested.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, NoReturn

from gidgethub import BadRequest

from app.catalog.parse import ParsedFile, is_catalog_path
from app.checks import output
from app.checks.evaluate import Evaluation, ParseCache, evaluate
from app.git.catalog import RepoCache
from app.git.run import GitAuthError, GitNotFoundError
from app.jobs import JobContext, JobSuperseded, PermanentJobError, RetryJob, task
from app.sync.parsing import collector_paused
from app.sync.source import catalog_source, full_name_of
from app.sync.store import SyncedFile, load_synced_files

log = logging.getLogger(__name__)

TASK = "catalog_check"
_cache = ParseCache()
# Below this many files to parse, parsing is quicker than asking PostgreSQL.
SYNCED_MIN_FILES = 200

SyncedLookup = Callable[[list[str]], Awaitable[Mapping[str, SyncedFile]]]


def queue_key(repository: str, pr_number: int) -> str:
    return f"catalog_check:{repository.lower()}#{pr_number}"


def repository_name(url: str | None) -> str | None:
    """``owner/name`` of a repository URL or path (``.git`` stripped), lowercased."""
    name = full_name_of(url) if url else None
    return name.lower() if name else None


def is_catalog_repository(settings: Any, full_name: str | None) -> bool:
    """True when ``full_name`` is the catalog repository (PAO_REPO_URL)."""
    wanted = repository_name(getattr(settings, "repo_url", None))
    return bool(wanted and full_name and full_name.lower() == wanted)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


REQUEST = """
SELECT repository, pr_number, installation_id, head_sha, head_ref, base_ref, rerun
FROM catalog_check_requests WHERE repository = $1 AND pr_number = $2
"""
LATEST_RUN = """
SELECT id, check_run_id, status FROM catalog_check_runs
WHERE repository = $1 AND pr_number = $2 AND head_sha = $3 ORDER BY id DESC LIMIT 1
"""


@task(TASK, max_attempts=5, retry_base=5.0, timeout=900.0)
async def catalog_check(ctx: JobContext, repository: str, pr_number: int) -> dict[str, Any]:
    req = await ctx.pool.fetchrow(REQUEST, repository, pr_number)
    if req is None:
        return {"skipped": "no check requested"}
    head_sha = req["head_sha"]
    run = await ctx.pool.fetchrow(LATEST_RUN, repository, pr_number, head_sha)
    if run is not None and run["status"] == "completed" and not req["rerun"]:
        return {"skipped": f"{head_sha[:12]} already checked"}
    api = await ctx.github.api(req["installation_id"])
    owner_repo = {"owner": repository.split("/")[0], "repo": repository.split("/")[1]}
    await _close_superseded(ctx, api, owner_repo, repository, pr_number, head_sha)
    external_id = f"{repository}#{pr_number}"
    current: dict[str, Any] | None = None
    if run is not None and run["status"] == "in_progress" and run["check_run_id"]:
        row_id, check_run_id = run["id"], run["check_run_id"]  # a retry: keep the same run
        current = await api.getitem("/repos/{owner}/{repo}/check-runs/{check_run_id}",
                                    url_vars={**owner_repo, "check_run_id": str(check_run_id)})
    else:
        if run is not None and run["status"] == "in_progress":
            row_id = run["id"]
        else:
            # Recorded before asking GitHub, so a retry knows a run may already exist.
            row_id = await ctx.pool.fetchval(
                "INSERT INTO catalog_check_runs (repository, pr_number, head_sha, job_id)"
                " VALUES ($1, $2, $3, $4) RETURNING id",
                repository, pr_number, head_sha, ctx.job_id)
        try:
            if run is not None and run["status"] == "in_progress":
                # An earlier attempt asked GitHub for the run but never learnt its id.
                current = await _started_run(api, owner_repo, head_sha, external_id)
            if current is None:
                current = await api.post(
                    "/repos/{owner}/{repo}/check-runs", url_vars=owner_repo,
                    data={"name": output.CHECK_NAME, "head_sha": head_sha, "status": "in_progress",
                          "started_at": _now(), "external_id": external_id},
                )
        except BadRequest as exc:
            if not commit_gone(exc):
                raise
            if not ctx.last_attempt:
                raise RetryJob(f"{repository}#{pr_number} head {head_sha}: GitHub answered {exc}; looking "
                               "again, unless a newer head supersedes it") from None
            await _head_gone(ctx, api, None, row_id, repository, pr_number, head_sha)
        check_run_id = int(current["id"])
        await ctx.pool.execute("UPDATE catalog_check_runs SET check_run_id = $2 WHERE id = $1",
                               row_id, check_run_id)
    # An earlier attempt may have sent some annotation batches before failing.
    already_sent = int(((current or {}).get("output") or {}).get("annotations_count") or 0)
    run_vars = {**owner_repo, "check_run_id": str(check_run_id)}
    try:
        ev, base_sha = await _evaluate(ctx, req)
    except (GitAuthError, GitNotFoundError, PermanentJobError) as exc:
        await _give_up(api, run_vars, row_id, ctx, f"PAO could not fetch the repository: {exc}")
        raise PermanentJobError(str(exc)) from None
    except Exception as exc:
        if ctx.last_attempt:
            # The head may have been force-pushed away since this run was opened.
            if await _is_gone(api, owner_repo, head_sha, external_id):
                await _head_gone(ctx, api, run_vars, row_id, repository, pr_number, head_sha)
            await _give_up(api, run_vars, row_id, ctx, f"PAO could not check this change: {exc}")
        raise
    for body in output.completion_requests(ev, head_sha=head_sha, completed_at=_now(),
                                           already_sent=already_sent):
        await api.patch("/repos/{owner}/{repo}/check-runs/{check_run_id}", url_vars=run_vars, data=body)
    async with ctx.pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "UPDATE catalog_check_runs SET status = 'completed', conclusion = $2, base_sha = $3,"
            " files = $4, errors = $5, warnings = $6, notices = $7, completed_at = now(), error = NULL"
            " WHERE id = $1",
            row_id, output.conclusion(ev), base_sha, len(ev.reported), ev.count("error"),
            ev.count("warning"), ev.count("notice"))
        await conn.execute(
            "UPDATE catalog_check_requests SET rerun = false"
            " WHERE repository = $1 AND pr_number = $2 AND head_sha = $3",
            repository, pr_number, head_sha)
    return {"check_run_id": check_run_id, "conclusion": output.conclusion(ev),
            "errors": ev.count("error"), "files": len(ev.reported)}


SUPERSEDED = """
SELECT id, check_run_id FROM catalog_check_runs
WHERE repository = $1 AND pr_number = $2 AND head_sha <> $3 AND status = 'in_progress'
"""


async def _close_superseded(ctx: JobContext, api: Any, owner_repo: dict[str, str],
                            repository: str, pr_number: int, head_sha: str) -> None:
    """Complete runs an earlier, failed attempt left open on older heads of this PR:
    nothing will finish them now that a newer head is checked."""
    for old in await ctx.pool.fetch(SUPERSEDED, repository, pr_number, head_sha):
        if old["check_run_id"] is not None:
            await _cancel_run(api, {**owner_repo, "check_run_id": str(old["check_run_id"])},
                              f"Check superseded by a newer push ({head_sha[:12]}).")
        await ctx.pool.execute(
            "UPDATE catalog_check_runs SET status = 'completed', conclusion = 'cancelled',"
            " completed_at = now(), error = 'superseded' WHERE id = $1", old["id"])


async def _cancel_run(api: Any, run_vars: dict[str, str], summary: str) -> None:
    """Complete a check run as cancelled ("Superseded"): nothing will finish it."""
    await api.patch("/repos/{owner}/{repo}/check-runs/{check_run_id}", url_vars=run_vars, data={
        "status": "completed", "conclusion": "cancelled", "completed_at": _now(),
        "output": {"title": "Superseded", "summary": summary}})


def commit_gone(exc: BaseException) -> bool:
    """GitHub's answer about a commit it does not have: 422 "No commit found for SHA"."""
    return (isinstance(exc, BadRequest) and exc.status_code == 422
            and str(exc).startswith("No commit found for SHA"))


async def _head_gone(ctx: JobContext, api: Any, run_vars: dict[str, str] | None, row_id: int,
                     repository: str, pr_number: int, head_sha: str) -> NoReturn:
    """End the job as superseded: the head is no longer on GitHub (force-pushed away).

    Not PAO's error, so no failure: the run PAO opened on it (``run_vars``) is completed as
    cancelled, if GitHub still takes an update for it. Without ``run_vars`` no run of PAO's
    is open on the commit: creating one is what GitHub refused, or, when an earlier
    attempt's create went unanswered, finding it, and a commit GitHub no longer has has
    nothing left to update.
    """
    where = f"{repository}#{pr_number} head {head_sha}"
    if run_vars is None:
        closed = "and no check run on it to complete"
    else:
        try:
            await _cancel_run(api, run_vars, f"Commit {head_sha} is no longer on GitHub: nothing to check.")
            closed = f"its check run {run_vars['check_run_id']} completed as cancelled"
        except BadRequest as exc:
            closed = f"its check run {run_vars['check_run_id']} could not be updated either ({exc})"
    reason = f"{where} is no longer on GitHub (force-pushed away?): nothing to check, {closed}"
    await ctx.pool.execute(
        "UPDATE catalog_check_runs SET status = 'completed', conclusion = 'cancelled', completed_at = now(),"
        " error = $2 WHERE id = $1 AND status = 'in_progress'", row_id, reason)
    raise JobSuperseded(reason)


async def _is_gone(api: Any, owner_repo: dict[str, str], head_sha: str, external_id: str) -> bool:
    """Whether GitHub says it has no commit ``head_sha``; any other answer (or failure) is a no."""
    try:
        await _started_run(api, owner_repo, head_sha, external_id)
    except Exception as exc:  # another failure: the caller reports the error that brought it here
        return commit_gone(exc)
    return False


async def _started_run(api: Any, owner_repo: dict[str, str], head_sha: str,
                       external_id: str) -> dict[str, Any] | None:
    """Our unfinished run for this head and PR on GitHub, if an earlier attempt created one."""
    found = await api.getitem(
        "/repos/{owner}/{repo}/commits/{ref}/check-runs{?check_name,filter,per_page}",
        url_vars={**owner_repo, "ref": head_sha, "check_name": output.CHECK_NAME,
                  "filter": "all", "per_page": "100"})
    mine = [r for r in (found or {}).get("check_runs", [])
            if r.get("external_id") == external_id and r.get("status") != "completed"]
    return max(mine, key=lambda r: int(r["id"])) if mine else None


async def _give_up(api: Any, run_vars: dict[str, str], row_id: int, ctx: JobContext, message: str) -> None:
    """Complete the run as failed with the reason, so the PR does not wait forever."""
    await api.patch("/repos/{owner}/{repo}/check-runs/{check_run_id}", url_vars=run_vars, data={
        "status": "completed", "conclusion": "failure", "completed_at": _now(),
        "output": {"title": "PAO could not check this pull request",
                   "summary": output.clip(message, output.TEXT_LIMIT)},
    })
    await ctx.pool.execute(
        "UPDATE catalog_check_runs SET status = 'completed', conclusion = 'failure', completed_at = now(),"
        " error = $2 WHERE id = $1", row_id, message)


async def _evaluate(ctx: JobContext, req: Any) -> tuple[Evaluation, str]:
    settings = ctx.settings
    source = catalog_source(settings)
    if source is None:
        raise PermanentJobError("PAO_REPO_URL is not set: no catalog repository to check")
    token = None if source.is_local else await ctx.github.token(req["installation_id"])
    cache = RepoCache(source.cache_dir(settings.data_dir, "checks"), source.url, token)
    number = req["pr_number"]
    await cache.fetch_pull(number, req["base_ref"], req["head_ref"], req["head_sha"])
    head = req["head_sha"]
    base = await cache.merge_base(f"refs/pao/base/{number}", head)

    async def synced(paths: list[str]) -> Mapping[str, SyncedFile]:
        return await load_synced_files(ctx.pool, source.key, paths)

    return await evaluate_commits(cache, base, head, synced), base


async def evaluate_commits(cache: RepoCache, base: str, head: str,
                           synced: SyncedLookup | None = None) -> Evaluation:
    """Evaluate ``head`` against ``base``: parse what the parse cache lacks, in one batch.

    With ``synced``, unchanged files whose blob the last catalog sync stored come
    from PostgreSQL instead of being parsed (a cold start on a big catalog), as
    outlines: what cross-file rules read of them, no line marks. The files an
    outline would not do for are parsed: those sharing a name with a changed file
    (the version rule compares whole documents), and those the evaluation reports
    (for their lines; the evaluation is then done again).
    """
    with collector_paused():  # thousands of documents held: collections would rescan them
        return await _evaluate_commits(cache, base, head, synced)


async def _evaluate_commits(cache: RepoCache, base: str, head: str,
                            synced: SyncedLookup | None) -> Evaluation:
    head_tree = {p: b for p, b in (await cache.tree(head)).items() if is_catalog_path(p)}
    changes = await cache.changes(base, head)
    touched = {c.path for c in changes}
    changed_base_paths = {c.old_path or c.path for c in changes if c.status != "A"}
    base_tree = {p: b for p, b in (await cache.tree(base)).items()
                 if p in changed_base_paths and is_catalog_path(p)} if changed_base_paths else {}
    # Hold every file this run needs here: the shared cache may evict while we work.
    parsed: dict[tuple[str, str], ParsedFile] = {}
    missing: list[tuple[str, str]] = []
    for blob, path in [*((b, p) for p, b in head_tree.items()), *((b, p) for p, b in base_tree.items())]:
        hit = _cache.get(blob, path)
        if hit is not None:
            parsed[(blob, path)] = hit
        else:
            missing.append((blob, path))
    outlines: dict[str, SyncedFile] = {}
    outlined: set[str] = set()  # paths evaluated from their outline
    if synced is not None and len(missing) >= SYNCED_MIN_FILES:
        unchanged = {p: b for b, p in missing if p not in touched and head_tree.get(p) == b}
        outlines = {path: row for path, row in (await synced(list(unchanged))).items()
                    if row.blob_oid == unchanged.get(path)}
        missing = [(b, p) for b, p in missing if p not in outlines]
    await _parse_missing(cache, missing, parsed)
    if outlines:
        changed_names = {(pf.kind, pf.identifier) for (_, path), pf in parsed.items()
                         if path in touched or path in base_tree}
        full = [(row.blob_oid, path) for path, row in outlines.items()
                if (row.kind, row.identifier) in changed_names]
        await _parse_missing(cache, full, parsed)
        for path, row in outlines.items():
            if (row.blob_oid, path) not in parsed:
                parsed[(row.blob_oid, path)] = ParsedFile(
                    path, row.kind, row.identifier, row.outline, [], row.display_name)
                outlined.add(path)
    head_files = {p: parsed[(b, p)] for p, b in head_tree.items()}
    # The base catalog: unchanged files are the same blobs as at head.
    base_files = {p: pf for p, pf in head_files.items() if p not in touched}
    base_files.update({p: parsed[(b, p)] for p, b in base_tree.items()})
    ev = evaluate(head_files, base_files, changes)
    unmarked = [p for p in ev.reported if p in outlined]
    if unmarked:
        await _parse_missing(cache, [(head_tree[p], p) for p in unmarked], parsed)
        for path in unmarked:
            head_files[path] = base_files[path] = parsed[(head_tree[path], path)]
        ev = evaluate(head_files, base_files, changes)
    return ev


async def _parse_missing(cache: RepoCache, wanted: list[tuple[str, str]],
                         parsed: dict[tuple[str, str], ParsedFile]) -> None:
    """Parse the (blob, path) pairs of ``wanted`` into ``parsed`` (and the parse cache)."""
    if not wanted:
        return
    contents = await cache.blobs([b for b, _ in wanted])
    for blob, path in wanted:
        parsed[(blob, path)] = _cache.parse(blob, path, contents[blob])
