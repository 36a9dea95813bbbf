"""Migration 010: deliveries stored as jsonb become the text column intake now writes.

Existing rows must survive it: their payloads read back as the same JSON, rows without
a payload stay without, and the console can still redeliver a migrated delivery.
"""

from __future__ import annotations

import json
import shutil
import uuid

import asyncpg

from app import db
from tests.conftest import _with_database

PAYLOAD = {"zen": "Design for failure.", "hook_id": 2**64 + 1, "ratio": 1.5,
           "hook": {"events": ["push"], "name": "web"}}


async def test_jsonb_payloads_migrate_to_text_that_reads_back_the_same(pg_server_dsn, tmp_path):
    name = f"pao_migration_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(pg_server_dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        conn = await db.connect(_with_database(pg_server_dsn, name))
        try:
            before = tmp_path / "sql"
            before.mkdir()
            for path in sorted(db.SQL_DIR.glob("*.sql")):
                if int(path.name.split("_", 1)[0]) < 10:
                    shutil.copy(path, before)
            await db.migrate(conn, before)
            await conn.execute(
                """INSERT INTO webhook_events (delivery_id, event, signature_valid, payload, status)
                   VALUES ('kept', 'ping', true, $1, 'processed'),
                          ('forged', 'ping', false, NULL, 'rejected')""", PAYLOAD)

            assert 10 in [m.version for m in await db.migrate(conn)]  # later ones may follow

            rows = {r["delivery_id"]: r for r in await conn.fetch(
                "SELECT delivery_id, payload, payload::jsonb->>'hook_id' AS hook_id FROM webhook_events")}
            assert json.loads(rows["kept"]["payload"]) == PAYLOAD
            assert rows["kept"]["hook_id"] == str(2**64 + 1)
            assert rows["forged"]["payload"] is None
        finally:
            await conn.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
