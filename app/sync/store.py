"""The sync's database reads and writes: file records, item/bundle rows, run bookkeeping.

Reads touch only the rows a sync's changes name (indexed lookups by path and
by name); writes are set-based (``unnest`` arrays), one statement per table.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson

from app.catalog.parse import ParsedFile
from app.db import RawJson
from app.sync.plan import EntryState, FileRecord, NameKey, Plan, Upsert, entry_columns

TABLES = {"item": "catalog_items", "bundle": "catalog_bundles"}
# Advisory-lock namespace for "a sync of repository X is committing".
SYNC_LOCK_NS = 0x5041


@dataclass(frozen=True)
class SyncState:
    last_processed_sha: str | None
    last_run_id: int | None


async def get_state(conn: asyncpg.Connection | asyncpg.Pool, repository: str, branch: str) -> SyncState:
    row = await conn.fetchrow(
        "SELECT last_processed_sha, last_run_id FROM catalog_sync_state"
        " WHERE repository = $1 AND branch = $2", repository, branch)
    if row is None:
        return SyncState(None, None)
    return SyncState(row["last_processed_sha"], row["last_run_id"])


async def start_run(pool: asyncpg.Pool, *, repository: str, branch: str, triggered_by: str,
                    delivery_id: str | None, job_id: int | None) -> int:
    """Record a running sync. Runs of this repository left 'running' by a dead worker end as failed."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            """UPDATE catalog_sync_runs SET status = 'failed', completed_at = now(),
                      error = 'interrupted: the sync stopped before committing; nothing was written'
                WHERE repository = $1 AND branch = $2 AND status = 'running'""",
            repository, branch)
        return await conn.fetchval(
            """INSERT INTO catalog_sync_runs (repository, branch, triggered_by, delivery_id, job_id)
               VALUES ($1, $2, $3, $4, $5) RETURNING id""",
            repository, branch, triggered_by, delivery_id, job_id)


async def fail_run(pool: asyncpg.Pool, run_id: int, error: str) -> None:
    await pool.execute(
        """UPDATE catalog_sync_runs SET status = 'failed', completed_at = now(), error = $2
            WHERE id = $1 AND status = 'running'""", run_id, error)


async def all_file_oids(conn: asyncpg.Connection | asyncpg.Pool, repository: str) -> dict[str, str]:
    """Every recorded file of the repository: path -> blob id (full loads and reconciles only)."""
    rows = await conn.fetch("SELECT path, blob_oid FROM catalog_files WHERE repository = $1", repository)
    return {r["path"]: r["blob_oid"] for r in rows}


def _record(r: asyncpg.Record) -> FileRecord:
    return FileRecord(r["path"], r["blob_oid"], r["kind"], r["identifier"], r["error"])


async def load_files(conn: asyncpg.Connection | asyncpg.Pool, repository: str,
                     paths: Iterable[str]) -> dict[str, FileRecord]:
    rows = await conn.fetch(
        "SELECT path, blob_oid, kind, identifier, error FROM catalog_files"
        " WHERE repository = $1 AND path = ANY($2::text[])", repository, list(paths))
    return {r["path"]: _record(r) for r in rows}


async def load_claimants(conn: asyncpg.Connection | asyncpg.Pool, repository: str,
                         keys: Iterable[NameKey]) -> dict[NameKey, list[FileRecord]]:
    keys = list(keys)
    out: dict[NameKey, list[FileRecord]] = {k: [] for k in keys}
    if not keys:
        return out
    rows = await conn.fetch(
        """SELECT f.path, f.blob_oid, f.kind, f.identifier, f.error
             FROM unnest($2::text[], $3::text[]) AS k(kind, identifier)
             JOIN catalog_files f ON f.repository = $1 AND f.kind = k.kind
                                 AND f.identifier = k.identifier""",
        repository, [k for k, _ in keys], [n for _, n in keys])
    for r in rows:
        out[(r["kind"], r["identifier"])].append(_record(r))
    return out


async def load_current(conn: asyncpg.Connection | asyncpg.Pool,
                       keys: Iterable[NameKey]) -> dict[NameKey, EntryState]:
    by_kind: dict[str, list[str]] = {}
    for kind, name in keys:
        by_kind.setdefault(kind, []).append(name)
    out: dict[NameKey, EntryState] = {}
    for kind, names in by_kind.items():
        rows = await conn.fetch(
            f"SELECT name, source_file_path, source_file_hash, is_active FROM {TABLES[kind]}"
            " WHERE name = ANY($1::text[])", names)
        for r in rows:
            out[(kind, r["name"])] = EntryState(r["source_file_path"], r["source_file_hash"],
                                                r["is_active"])
    return out


async def lock_repository(conn: asyncpg.Connection, repository: str) -> None:
    await conn.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))", SYNC_LOCK_NS, repository)


_FILE_COLUMNS = ("path", "blob_oid", "kind", "identifier", "error")


def _upsert_files_sql(source: str) -> str:
    """The upsert of file records from ``source``: "unnest" (text array parameters
    $2..$6, in ``_FILE_COLUMNS`` order) or a staged table's name."""
    if source == "unnest":
        source = f"unnest({', '.join(f'${i + 2}::text[]' for i in range(len(_FILE_COLUMNS)))})"
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in _FILE_COLUMNS if c != "path")
    return f"""
INSERT INTO catalog_files (repository, {", ".join(_FILE_COLUMNS)})
SELECT $1, * FROM {source}
ON CONFLICT (repository, path) DO UPDATE SET {updates}
"""

_COMMON = ("name", "display_name", "version", "description", "owner", "tags", "category", "document")
_COLUMNS = {"item": _COMMON, "bundle": (*_COMMON, "bundle_definition")}
_JSON = {"tags", "document", "bundle_definition"}
# Columns that are sections of the stored document, taken from it by the database
# so each document's JSON is built and parsed once.
_SECTIONS = ("presentation", "fulfillment")

# From this many rows on, a table's rows go through COPY into a temporary table and
# one INSERT ... SELECT. asyncpg encodes an array parameter element by element, testing
# each for nesting: 10,000 rows' arrays took ~0.4 s to encode, COPY's records ~0.1 s.
# Fewer rows (a push) keep the one-statement unnest: a temporary table costs its own.
COPY_FROM = 500


def _upsert_sql(kind: str, source: str) -> str:
    """The upsert of ``kind`` rows from ``source``: "unnest" (array parameters) or a
    staged table's name (text columns, JSON as text)."""
    cols = _COLUMNS[kind]
    n = len(cols)
    targets = (*cols, *_SECTIONS, "source_file_path", "source_file_hash", "source_repository",
               "last_seen_sha")
    values = (*(f"u.{c}" for c in cols), *(f"u.document->'{c}'" for c in _SECTIONS), "u.path",
              "u.hash", f"${n + 3}", f"${n + 4}")
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in targets if c != "name")
    if source == "unnest":
        arrays = ", ".join(f"${i + 1}::{'jsonb' if c in _JSON else 'text'}[]" for i, c in enumerate(cols))
        arrays += f", ${n + 1}::text[], ${n + 2}::text[]"
        rows = f"unnest({arrays}) AS u({', '.join(cols)}, path, hash)"
        prefix = ""
    else:
        # Materialised: each JSON text is parsed once, not once per column taken from it.
        casts = ", ".join(f"s.{c}::jsonb AS {c}" if c in _JSON else f"s.{c}" for c in cols)
        prefix = f"WITH u AS MATERIALIZED (SELECT {casts}, s.path, s.hash FROM {source} s)\n"
        rows = "u"
        values = (*values[:-2], "$1", "$2")
    return f"""{prefix}
INSERT INTO {TABLES[kind]} ({", ".join(targets)})
SELECT {", ".join(values)} FROM {rows}
ON CONFLICT (name) DO UPDATE SET {updates}, is_active = true, updated_at = now()
"""


def _json_text(value: Any) -> RawJson | None:
    # default=str: YAML values JSON has no type for (dates) are stored as text.
    return None if value is None else RawJson(orjson.dumps(value, default=str).decode())


def _copy_record(kind: str, row: dict[str, Any], path: str, content_hash: str) -> tuple[Any, ...]:
    """An item or bundle row as COPY takes it into a staged table: its columns (JSON as
    text), then ``path`` and ``hash``."""
    return (*(_json_text(row[c]) if c in _JSON else row[c] for c in _COLUMNS[kind]), path, content_hash)


async def _staged(conn: asyncpg.Connection, name: str, columns: tuple[str, ...],
                  records: list[tuple[Any, ...]]) -> str:
    """``records`` COPYed into a temporary table of text columns, dropped at commit."""
    await conn.execute(f"CREATE TEMPORARY TABLE {name} ({', '.join(f'{c} text' for c in columns)})"
                       " ON COMMIT DROP")
    await conn.copy_records_to_table(name, records=records, columns=list(columns))
    return name


class Staging:
    """Item and bundle rows COPYed into temporary tables while the files are still being
    parsed (a big sync): ``apply_plan`` then takes the plan's rows from there.

    Every file that validates and names itself is staged; the plan decides which of them
    are written (not an unchanged one, not the later path of a name held twice). The
    rows are the ones ``Upsert.row`` makes of the same parsed file; their JSON reaches the
    database as text (asyncpg's binary COPY has no jsonb encoder) and is parsed chunk by
    chunk. Use inside the sync's transaction: the tables go at its end.
    """

    def __init__(self, conn: asyncpg.Connection):
        self.conn = conn
        self.paths: dict[str, set[str]] = {kind: set() for kind in TABLES}

    @staticmethod
    def table(kind: str) -> str:
        return f"pao_staged_{kind}s"

    async def stage(self, parsed: Mapping[str, ParsedFile], hashes: Mapping[str, str]) -> None:
        """Stage the rows of the sound files among ``parsed`` (one chunk of a parse)."""
        for kind in TABLES:
            files = [(path, p) for path, p in parsed.items()
                     if p.kind == kind and p.ok and p.identifier and p.document is not None]
            if not files:
                continue
            cols = (*_COLUMNS[kind], "path", "hash")
            table = self.table(kind)
            if not self.paths[kind]:
                await self.conn.execute(
                    f"CREATE TEMPORARY TABLE {table} ("
                    + ", ".join(f"{c} {'jsonb' if c in _JSON else 'text'}" for c in cols)
                    + f") ON COMMIT DROP; CREATE TEMPORARY TABLE {table}_text ("
                    + ", ".join(f"{c} text" for c in cols) + ") ON COMMIT DROP")
            records = [_copy_record(kind, entry_columns(kind, p.identifier, path, p.document,
                                                        getattr(p, "display_name", None)),
                                    path, hashes[path]) for path, p in files]
            await self.conn.copy_records_to_table(f"{table}_text", records=records, columns=list(cols))
            # The JSON is parsed now, while the next chunks are parsed, not in the final write.
            await self.conn.execute(
                f"WITH moved AS (DELETE FROM {table}_text RETURNING *) INSERT INTO {table} SELECT "
                + ", ".join(f"{c}::jsonb" if c in _JSON else c for c in cols) + " FROM moved")
            self.paths[kind].update(path for path, _ in files)

    async def write(self, kind: str, ups: list[Upsert], repository: str, sha: str) -> list[Upsert]:
        """Write the upserts of ``kind`` whose rows are staged; return the others."""
        staged = self.paths[kind]
        here = [u for u in ups if u.path in staged]
        if here:
            if len(here) < len(staged):
                await self.conn.execute(f"DELETE FROM {self.table(kind)} WHERE NOT path = ANY($1::text[])",
                                        [u.path for u in here])
            await self.conn.execute(_upsert_sql(kind, self.table(kind)), repository, sha)
        return [u for u in ups if u.path not in staged]


async def apply_plan(conn: asyncpg.Connection, repository: str, sha: str, plan: Plan,
                     staging: Staging | None = None) -> None:
    """Write the plan's rows (call inside the sync's transaction), the staged ones from ``staging``."""
    if plan.file_deletes:
        await conn.execute("DELETE FROM catalog_files WHERE repository = $1 AND path = ANY($2::text[])",
                           repository, plan.file_deletes)
    if plan.file_upserts:
        fu = plan.file_upserts
        if len(fu) >= COPY_FROM:
            staged = await _staged(conn, "pao_sync_files", _FILE_COLUMNS,
                                   [(f.path, f.blob_oid, f.kind, f.identifier, f.error) for f in fu])
            await conn.execute(_upsert_files_sql(staged), repository)
        else:
            await conn.execute(_upsert_files_sql("unnest"), repository, [f.path for f in fu],
                               [f.blob_oid for f in fu], [f.kind for f in fu], [f.identifier for f in fu],
                               [f.error for f in fu])
    for kind, table in TABLES.items():
        gone = [name for k, name in plan.deactivations if k == kind]
        if gone:
            await conn.execute(f"UPDATE {table} SET is_active = false, updated_at = now()"
                               " WHERE name = ANY($1::text[]) AND is_active", gone)
        ups = [u for u in plan.upserts if u.kind == kind]
        if staging is not None:
            ups = await staging.write(kind, ups, repository, sha)
        if not ups:
            continue
        cols = _COLUMNS[kind]
        if len(ups) >= COPY_FROM:
            staged = await _staged(conn, f"pao_sync_{kind}s", (*cols, "path", "hash"),
                                   [_copy_record(kind, u.row(), u.path, u.content_hash) for u in ups])
            await conn.execute(_upsert_sql(kind, staged), repository, sha)
            continue
        rows = [u.row() for u in ups]
        # JSON goes as text: asyncpg would read a list inside the array as a dimension.
        columns: list[list[Any]] = [
            [_json_text(r[c]) if c in _JSON else r[c] for r in rows] for c in cols]
        await conn.execute(_upsert_sql(kind, "unnest"), *columns, [u.path for u in ups],
                           [u.content_hash for u in ups], repository, sha)


async def sweep_unclaimed(conn: asyncpg.Connection, repository: str) -> dict[str, list[str]]:
    """Deactivate active rows that no recorded file of ``repository`` claims (full loads and reconciles).

    The catalog is one repository's: rows and file records another repository
    left (``PAO_REPO_URL`` changed, say from the example catalog) go too.
    """
    await conn.execute("DELETE FROM catalog_files WHERE repository <> $1", repository)
    out: dict[str, list[str]] = {}
    for kind, table in TABLES.items():
        # EXCEPT, not NOT EXISTS: rows written earlier in this transaction have no
        # statistics yet, and the planner would pick a nested loop over them.
        rows = await conn.fetch(
            f"""UPDATE {table} SET is_active = false, updated_at = now()
                 WHERE name IN (SELECT name FROM {table} WHERE is_active
                                EXCEPT
                                SELECT identifier FROM catalog_files
                                 WHERE repository = $1 AND kind = $2 AND identifier IS NOT NULL)
             RETURNING name""", repository, kind)
        out[kind] = [r["name"] for r in rows]
    return out


async def finish_run(conn: asyncpg.Connection, run_id: int, *, repository: str, branch: str,
                     from_sha: str | None, to_sha: str, mode: str, status: str,
                     files_changed: int, counts: dict[str, int], plan: Plan) -> None:
    """Close the run record and move the repository's last processed SHA, in the sync's transaction."""
    await conn.execute(
        """UPDATE catalog_sync_runs SET from_sha = $2, to_sha = $3, mode = $4, status = $5,
                  files_changed = $6, items_added = $7, items_updated = $8, items_removed = $9,
                  bundles_added = $10, bundles_updated = $11, bundles_removed = $12,
                  completed_at = now(), error = NULL
            WHERE id = $1""",
        run_id, from_sha, to_sha, mode, status, files_changed,
        counts["items_added"], counts["items_updated"], counts["items_removed"],
        counts["bundles_added"], counts["bundles_updated"], counts["bundles_removed"])
    if plan.errors:
        e = plan.errors
        await conn.execute(
            """INSERT INTO catalog_sync_errors (run_id, path, line, col, code, message)
               SELECT $1, * FROM unnest($2::text[], $3::int[], $4::int[], $5::text[], $6::text[])""",
            run_id, [f.path for f in e], [f.line for f in e], [f.col for f in e],
            [f.code for f in e], [f.message for f in e])
    # The tables now hold this repository and branch only: another's last processed
    # SHA would make a later switch back diff from a state that is no longer there.
    await conn.execute("DELETE FROM catalog_sync_state WHERE repository <> $1 OR branch <> $2",
                       repository, branch)
    await conn.execute(
        """INSERT INTO catalog_sync_state (repository, branch, last_processed_sha, processed_at, last_run_id)
           VALUES ($1, $2, $3, now(), $4)
           ON CONFLICT (repository, branch) DO UPDATE SET last_processed_sha = EXCLUDED.last_processed_sha,
               processed_at = now(), last_run_id = EXCLUDED.last_run_id""",
        repository, branch, to_sha, run_id)


# Rows ANALYZE samples per table: 300 x this target. Right after a big sync the planner
# needs the tables' sizes and the spread of names, which 3,000 rows give as well as
# 30,000; autovacuum refines them later at the server's own target. (10,000 items:
# ~30 ms instead of ~100 ms, which the sync spent before it could report done.)
STATISTICS_TARGET = 10


async def refresh_statistics(pool: asyncpg.Pool) -> None:
    """ANALYZE the catalog tables, after a sync wrote many of their rows."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(f"SET LOCAL default_statistics_target = {STATISTICS_TARGET}")
        await conn.execute("ANALYZE catalog_files, catalog_items, catalog_bundles")


# An item's outline: what cross-file rules read of an unchanged item (its version and
# its fields' names); a bundle's whole document (its references). Reading the outlines
# of 10,000 items instead of their documents takes a cold PR check from ~1 s to ~0.2 s.
SYNCED_FILES = """
SELECT f.path, f.blob_oid, f.kind, f.identifier,
       CASE WHEN f.kind = 'item' THEN
            CASE WHEN i.id IS NOT NULL THEN jsonb_build_object(
                'version', i.document->'version',
                'field_names', jsonb_path_query_array(i.document, '$.presentation.fields[*].name'))
            END
       ELSE b.document END::text AS outline,
       coalesce(i.display_name, b.display_name) AS display_name
  FROM catalog_files f
  LEFT JOIN catalog_items i ON f.kind = 'item' AND i.name = f.identifier
                           AND i.source_file_path = f.path AND i.is_active
  LEFT JOIN catalog_bundles b ON f.kind = 'bundle' AND b.name = f.identifier
                             AND b.source_file_path = f.path AND b.is_active
 WHERE f.repository = $1 AND f.path = ANY($2::text[]) AND f.error IS NULL
"""


@dataclass(frozen=True)
class SyncedFile:
    """A file as the last sync stored it: its blob and, as the holder of its name, an
    outline of its document (``outline``): everything cross-file rules read of it.

    A bundle's outline is its whole document; an item's holds only its ``version`` and
    its ``presentation.fields`` as ``{"name": ...}`` (what bundle references check).
    """

    path: str
    blob_oid: str
    kind: str
    identifier: str
    outline: dict[str, Any]
    display_name: str | None


def _outline(kind: str, stored: dict[str, Any]) -> dict[str, Any]:
    if kind != "item":
        return stored
    outline: dict[str, Any] = {"presentation": {"fields": [{"name": n} for n in stored["field_names"]]}}
    if stored.get("version") is not None:
        outline["version"] = stored["version"]
    return outline


async def load_synced_files(conn: asyncpg.Connection | asyncpg.Pool, repository: str,
                            paths: Iterable[str]) -> dict[str, SyncedFile]:
    """The valid files among ``paths`` whose item or bundle row the last sync wrote from them.

    Files with an error, or whose name another file holds, are left out: their
    stored row (if any) is not what their current blob says.
    """
    rows = await conn.fetch(SYNCED_FILES, repository, list(paths))
    # Outlines come as text, decoded with orjson: several times quicker than the
    # pool's jsonb codec for the thousands a check of a big catalog reads.
    return {r["path"]: SyncedFile(r["path"], r["blob_oid"], r["kind"], r["identifier"],
                                  _outline(r["kind"], orjson.loads(r["outline"])), r["display_name"])
            for r in rows if r["outline"] is not None and r["identifier"] is not None}
