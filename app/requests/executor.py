"""Runs a request's steps on the job queue (filled in by the executor slice)."""

from __future__ import annotations

import asyncpg


async def start_request(conn: asyncpg.Connection, row: asyncpg.Record) -> asyncpg.Record:
    """Queue the steps that depend on nothing; called in the submission's transaction."""
    return row
