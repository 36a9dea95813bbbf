"""The service as a user runs it: embedded database, migrations, health, shutdown."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import aiohttp
import asyncpg

from app import db
from tests.support import wait_for

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_migrations_apply_once_and_are_recorded(db_dsn):
    conn = await db.connect(db_dsn)
    try:
        assert await db.migrate(conn) == []  # the template already has them all
        assert await db.pending_migrations(conn) == []
        versions = [r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")]
        assert versions == [m.version for m in db.load_migrations()]
    finally:
        await conn.close()


async def test_fresh_database_is_migrated_from_scratch(pg_server_dsn):
    admin = await asyncpg.connect(pg_server_dsn)
    await admin.execute("CREATE DATABASE pao_scratch")
    await admin.close()
    dsn = pg_server_dsn.replace("/postgres?", "/pao_scratch?", 1) if "/postgres?" in pg_server_dsn \
        else pg_server_dsn.rsplit("/", 1)[0] + "/pao_scratch"
    conn = await db.connect(dsn)
    try:
        assert await db.pending_migrations(conn) == [m.version for m in db.load_migrations()]
        applied = await db.migrate(conn)
        assert [m.version for m in applied] == [m.version for m in db.load_migrations()]
        assert await conn.fetchval("SELECT to_regclass('jobs') IS NOT NULL")
    finally:
        await conn.close()
        admin = await asyncpg.connect(pg_server_dsn)
        await admin.execute("DROP DATABASE pao_scratch WITH (FORCE)")
        await admin.close()


async def test_serve_on_embedded_database_then_sigterm(tmp_path):
    """`pao serve` with no PAO_DB_URL starts its own PostgreSQL, migrates, serves, stops cleanly."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAO_")}
    env.update({"PAO_DATA_DIR": str(tmp_path / "data"), "PAO_PORT": str(port),
                "PAO_WEBHOOK_SECRET": "s3cret-value", "PAO_WORKERS": "1"})
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app", "serve", cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            async def ready():
                if proc.returncode is not None:
                    raise AssertionError(f"pao serve exited with {proc.returncode}")
                try:
                    async with session.get(url + "/readyz") as resp:
                        return resp.status == 200
                except aiohttp.ClientError:
                    return False

            await wait_for(ready, timeout=90, interval=0.2, what="pao serve to be ready")
            async with session.get(url + "/healthz") as resp:
                assert resp.status == 200
        assert (tmp_path / "data" / "pgdata").is_dir()
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    log = err.decode()
    assert "embedded PostgreSQL" in log and "s3cret-value" not in log
