"""One catalog sync, start to finish: fetch, find changes, read, parse, plan, commit.

The database changes and the run's final record commit in one transaction; a
crash before it leaves the previous state and the retried job does it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from app.aio import uncancellable
from app.catalog.model import unstorable_path
from app.catalog.parse import Finding, ParsedFile
from app.git.catalog import GitCache
from app.sync import store
from app.sync.changes import Change, changes_from_diff, changes_from_trees, files_changed, split_unstorable
from app.sync.config import default_parse_processes
from app.sync.parsing import PARALLEL_FROM, OnChunk, collector_paused, parse_many, storable_text, warm_up
from app.sync.plan import Plan, affected_names, plan_sync
from app.sync.source import CatalogSource

log = logging.getLogger(__name__)


class SyncRaced(Exception):
    """Another sync committed between our reads and our write; run again from the new state."""


@dataclass
class SyncResult:
    run_id: int
    status: str
    mode: str
    from_sha: str | None
    to_sha: str
    files_changed: int
    counts: dict[str, int]
    errors: list[Finding] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)  # seconds per phase

    def summary(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "status": self.status, "mode": self.mode,
                "from_sha": self.from_sha, "to_sha": self.to_sha,
                "files_changed": self.files_changed, **self.counts,
                "errors": len(self.errors),
                "timings_ms": {k: round(v * 1000, 1) for k, v in self.timings.items()}}


async def _read(cache: GitCache, wanted: Mapping[str, str], processes: int,
                on_chunk: OnChunk | None = None) -> tuple[dict[str, ParsedFile], dict[str, str]]:
    """Read blobs (path -> oid) in one cat-file process and parse them off the event loop."""
    if processes > 1 and len(wanted) >= PARALLEL_FROM:
        # The parsing processes' server (its first start imports the validator, ~0.2 s)
        # starts while git reads the blobs.
        warming = asyncio.ensure_future(asyncio.to_thread(warm_up))
        try:
            blobs = await cache.read_blobs(wanted.values())
        finally:
            # A server that could not start is the pool's to report (it then parses here).
            await uncancellable(asyncio.gather(warming, return_exceptions=True))
    else:
        blobs = await cache.read_blobs(wanted.values())
    missing = [p for p, oid in wanted.items() if oid not in blobs]
    if missing:
        raise RuntimeError(f"git cache lacks blobs for {', '.join(missing[:5])}")
    return await parse_many({p: blobs[oid] for p, oid in wanted.items()}, processes=processes,
                            on_chunk=on_chunk)


async def sync_repository(
    pool: asyncpg.Pool,
    source: CatalogSource,
    cache: GitCache,
    token: str | None,
    *,
    triggered_by: str = "manual",
    delivery_id: str | None = None,
    job_id: int | None = None,
    full: bool = False,
    parse_processes: int | None = None,
) -> SyncResult:
    """Bring the catalog tables to the branch head; record the run. Git errors propagate.

    ``parse_processes``: processes that parse a big batch of files (default: one per CPU).
    """
    processes = parse_processes if parse_processes is not None else default_parse_processes()
    run_id = await store.start_run(pool, repository=source.key, branch=source.branch,
                                   triggered_by=triggered_by, delivery_id=delivery_id, job_id=job_id)
    try:
        # The sync holds every document it reads until it commits; rescanning them on
        # each collection cost a full load of 10,000 files about a third of its time.
        with collector_paused():
            return await _sync(pool, source, cache, token, run_id, full=full, processes=processes)
    except BaseException as exc:
        # Cancelled or crashed mid-way: nothing of the sync was committed.
        await asyncio.shield(store.fail_run(pool, run_id, f"{type(exc).__name__}: {exc}"[:2000]))
        raise


async def _sync(pool: asyncpg.Pool, source: CatalogSource, cache: GitCache, token: str | None,
                run_id: int, *, full: bool, processes: int) -> SyncResult:
    clock = _Clock()
    head = await cache.fetch(token)
    clock.lap("fetch")
    state = await store.get_state(pool, source.key, source.branch)
    last = state.last_processed_sha
    changes: list[Change]
    recorded = True  # whether catalog_files may hold records of this repository
    if last is None or full:
        mode = "full" if last is None else "reconcile"
    elif last == head:
        mode = "noop"
    elif await cache.is_ancestor(last, head):
        mode = "incremental"
    else:
        mode = "reconcile"  # force push or rebase: the old commit is gone or off the branch
        log.warning("last processed %s is not an ancestor of %s; full reconcile", last[:12], head[:12])

    if mode in ("full", "reconcile"):
        head_files = await cache.list_catalog(head)
        known = await store.all_file_oids(pool, source.key)
        recorded = bool(known)
        changes = changes_from_trees(head_files, known)
    elif mode == "incremental":
        assert last is not None
        changes = changes_from_diff(await cache.diff(last, head))
    else:
        changes = []
    changes, bad_paths = split_unstorable(changes)
    clock.lap("changes")

    wanted = {c.path: c.oid for c in changes if c.oid is not None}
    async with contextlib.AsyncExitStack() as writing:
        staging = None
        if len(wanted) >= store.COPY_FROM:
            # A big sync opens its transaction first and stages rows as chunks are parsed,
            # so the database works while the parse goes on (a full load of 10,000 files
            # spent ~0.6 s writing after it).
            conn = await _write_transaction(writing, pool, source)
            staging = store.Staging(conn)
        parsed, hashes = await _read(cache, wanted, processes,
                                     staging.stage if staging is not None else None)
        clock.lap("read_parse")
        # A first load has no file records to read: asking for 10,000 paths and names
        # anyway cost two round trips of 10,000-element arrays.
        before = await store.load_files(pool, source.key, [c.path for c in changes]) if recorded else {}
        keys = affected_names(changes, before, parsed)
        claimants = (await store.load_claimants(pool, source.key, keys) if recorded
                     else {k: [] for k in keys})
        current = await store.load_current(pool, keys)
        # Unchanged files that may take over a name (the holder left) or lose one: read them
        # too (a file that lost its name has it as its error, so errors are no filter).
        changed_paths = {c.path for c in changes}
        extra = {r.path: r.blob_oid for rs in claimants.values() for r in rs
                 if r.path not in changed_paths}
        if extra:
            more_parsed, more_hashes = await _read(cache, extra, processes)
            parsed.update(more_parsed)
            hashes.update(more_hashes)
        plan = plan_sync(changes, parsed, hashes, before, claimants, current)
        plan.errors.extend(dataclasses.replace(f, path=storable_text(p)) for p in bad_paths
                           if (f := unstorable_path(p)) is not None)
        clock.lap("plan")

        if staging is None:
            conn = await _write_transaction(writing, pool, source)
        again = await store.get_state(conn, source.key, source.branch)
        if again.last_processed_sha != last:
            raise SyncRaced(f"another sync moved {source.key} to {again.last_processed_sha}")
        await store.apply_plan(conn, source.key, head, plan, staging)
        clock.lap("write_rows")
        swept: dict[str, list[str]] = {}
        if mode in ("full", "reconcile"):
            swept = await store.sweep_unclaimed(conn, source.key)
        clock.lap("sweep")
        counts = _counts(plan, swept)
        status = "completed_with_errors" if plan.errors else "completed"
        n_files = files_changed(changes)
        await store.finish_run(conn, run_id, repository=source.key, branch=source.branch,
                               from_sha=last, to_sha=head, mode=mode, status=status,
                               files_changed=n_files, counts=counts, plan=plan)
    if mode in ("full", "reconcile"):
        # Thousands of rows just arrived: without fresh statistics the planner still
        # sees empty tables and reads them by nested loops (a PR check's read of
        # 10,000 files took 1-2.8 s instead of 0.2 s) until autovacuum comes round.
        await store.refresh_statistics(pool)
    clock.lap("write")
    result = SyncResult(run_id, status, mode, last, head, n_files, counts, plan.errors, clock.laps)
    log.info("catalog sync %s %s..%s (%s): %s", source.key, (last or "")[:12], head[:12], mode,
             ", ".join(f"{k}={v}" for k, v in counts.items() if v) or "no changes")
    return result


async def _write_transaction(stack: contextlib.AsyncExitStack, pool: asyncpg.Pool,
                             source: CatalogSource) -> asyncpg.Connection:
    """A connection in the sync's write transaction (ended with ``stack``), holding the
    repository's sync lock: one sync of a repository commits at a time."""
    conn = await stack.enter_async_context(pool.acquire())
    await stack.enter_async_context(conn.transaction())
    await store.lock_repository(conn, source.key)
    return conn


class _Clock:
    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = now - self._last
        self._last = now


def _counts(plan: Plan, swept: Mapping[str, list[str]]) -> dict[str, int]:
    out = {}
    for kind, label in (("item", "items"), ("bundle", "bundles")):
        out[f"{label}_added"] = plan.count(kind, "added")
        out[f"{label}_updated"] = plan.count(kind, "updated")
        out[f"{label}_removed"] = plan.count(kind, "removed") + len(swept.get(kind, []))
    return out
