"""Every SQL statement about service requests, and the events each transition writes."""

from __future__ import annotations

import secrets as pysecrets
from datetime import UTC, datetime
from typing import Any

import asyncpg

from app.requests.plan import Plan

TERMINAL = ("completed", "failed", "cancelled")
_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


def new_request_id(now: datetime | None = None) -> str:
    """``req-YYYYMMDD-`` and 8 random characters (as in seed 003, with more randomness)."""
    day = (now or datetime.now(UTC)).strftime("%Y%m%d")
    # One draw for all eight characters: a draw is a system call, and eight were a fifth of
    # planning a submission.
    n = pysecrets.randbelow(len(_ID_ALPHABET) ** 8)
    chars = []
    for _ in range(8):
        n, digit = divmod(n, len(_ID_ALPHABET))
        chars.append(_ID_ALPHABET[digit])
    return f"req-{day}-" + "".join(chars)


async def add_event(conn: asyncpg.Connection, request_pk: int, event: str, *, step_id: str | None = None,
                    from_status: str | None = None, to_status: str | None = None,
                    actor: str | None = None, detail: dict[str, Any] | None = None) -> None:
    await conn.execute(
        """INSERT INTO request_events (request_id, step_id, event, from_status, to_status, actor, detail)
           VALUES ($1, $2, $3, $4, $5, $6, $7)""",
        request_pk, step_id, event, from_status, to_status, actor, detail)


async def add_step_events(conn: asyncpg.Connection, request_pk: int, step_ids: list[str],
                          from_status: str, to_status: str, actor: str | None) -> None:
    """One ``step_status`` event per step, in one round trip."""
    if step_ids:
        await conn.executemany(
            """INSERT INTO request_events (request_id, step_id, event, from_status, to_status, actor)
               VALUES ($1, $2, 'step_status', $3, $4, $5)""",
            [(request_pk, sid, from_status, to_status, actor) for sid in step_ids])


# The request, its steps and its "submitted" event in one statement: one round trip
# where five were (a savepoint, three inserts, its release), ~30% of a submission.
INSERT_REQUEST = """
WITH r AS (
    INSERT INTO service_requests
      (request_id, catalog_item, catalog_bundle, catalog_version, bundle_parameters,
       item_parameters, secrets, snapshot, requester_user_id, requester_team,
       requester_email, submitted_by, idempotency_key, body_hash)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
    ON CONFLICT (submitted_by, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
    RETURNING *
), steps AS (
    INSERT INTO request_steps (request_id, step_id, owner_name, name, step_type, config,
                               depends_on, outputs_declared, on_failure, position)
    SELECT r.id, s.step_id, s.owner_name, s.name, s.step_type, s.config, s.depends_on,
           s.outputs_declared, s.on_failure, s.position
      FROM r, jsonb_to_recordset($15::jsonb) AS s(step_id text, owner_name text, name text,
           step_type text, config jsonb, depends_on text[], outputs_declared text[],
           on_failure text, position integer)
), submitted AS (
    INSERT INTO request_events (request_id, event, to_status, actor, detail)
    SELECT r.id, 'submitted', 'submitted', $12, $16 FROM r
)
SELECT * FROM r
"""


class RequestIdTaken(Exception):
    """The random request id drawn is already in use: draw another (in a new transaction)."""


async def insert_request(conn: asyncpg.Connection, plan: Plan, *, requester: dict[str, Any],
                         submitted_by: str, secrets: bytes | None, idempotency_key: str | None,
                         body_hash: str | None) -> asyncpg.Record | None:
    """Insert the request and its steps; None when the idempotency key is already taken.

    Raises RequestIdTaken when the random id collides (the transaction is then aborted).
    """
    steps = [{"step_id": s.step_id, "owner_name": s.owner, "name": s.name, "step_type": s.type,
              "config": s.config, "depends_on": s.depends_on, "outputs_declared": s.outputs,
              "on_failure": s.on_failure, "position": i + 1} for i, s in enumerate(plan.steps)]
    try:
        return await conn.fetchrow(
            INSERT_REQUEST,
            new_request_id(), plan.name if plan.kind == "item" else None,
            plan.name if plan.kind == "bundle" else None, plan.version, plan.bundle_values,
            plan.item_values, secrets, plan.snapshot, requester["user_id"], requester.get("team"),
            requester.get("email"), submitted_by, idempotency_key, body_hash, steps,
            {"steps": len(plan.steps)})
    except asyncpg.UniqueViolationError as exc:
        if exc.constraint_name == "service_requests_request_id_key":
            raise RequestIdTaken() from None
        raise


async def by_idempotency_key(conn: asyncpg.Connection | asyncpg.Pool, submitted_by: str,
                             key: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM service_requests WHERE submitted_by = $1 AND idempotency_key = $2",
        submitted_by, key)


async def get_request(conn: asyncpg.Connection | asyncpg.Pool, request_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM service_requests WHERE request_id = $1", request_id)


async def get_steps(conn: asyncpg.Connection | asyncpg.Pool, request_pk: int) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT * FROM request_steps WHERE request_id = $1 ORDER BY position",
                            request_pk)


async def get_step(conn: asyncpg.Connection | asyncpg.Pool, request_pk: int,
                   step_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM request_steps WHERE request_id = $1 AND step_id = $2",
                               request_pk, step_id)


async def get_attempts(conn: asyncpg.Connection | asyncpg.Pool, step_pk: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT * FROM request_step_attempts WHERE step_pk = $1 ORDER BY attempt_number", step_pk)


async def get_tickets(conn: asyncpg.Connection | asyncpg.Pool, step_pk: int) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT * FROM manual_tickets WHERE step_pk = $1 ORDER BY id", step_pk)


async def get_events(conn: asyncpg.Connection | asyncpg.Pool, request_pk: int, *,
                     after: int = 0, limit: int = 500) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT * FROM request_events WHERE request_id = $1 AND id > $2 ORDER BY id LIMIT $3",
        request_pk, after, limit)


def may_see(row: asyncpg.Record, *, user_id: str, team: str | None, is_admin: bool) -> bool:
    """Whether someone may see a request: their own, their team's, or (admins) any; as ``list_requests``."""
    return is_admin or user_id in (row["requester_user_id"], row["submitted_by"]) or (
        team is not None and team == row["requester_team"])


def may_control(row: asyncpg.Record, *, user_id: str, is_admin: bool) -> bool:
    """Whether someone may cancel a request or retry its steps: the requester, the submitter, admins.

    Teammates may only read (``may_see``). The REST API and the console apply this one rule.
    """
    return is_admin or user_id in (row["requester_user_id"], row["submitted_by"])


def _visible_clause(visible_to: tuple[str, str | None], arg: Any) -> str:
    user, team = visible_to
    return (f"(requester_user_id = {arg(user)} OR submitted_by = {arg(user)}"
            + (f" OR requester_team = {arg(team)})" if team else ")"))


async def requested_entries(conn: asyncpg.Connection | asyncpg.Pool, *,
                            visible_to: tuple[str, str | None] | None) -> tuple[list[str], list[str]]:
    """The items and the bundles (names, sorted) that the requests someone may see were for."""
    args: list[Any] = []

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    where = f" WHERE {_visible_clause(visible_to, arg)}" if visible_to is not None else ""
    rows = await conn.fetch(
        f"SELECT DISTINCT catalog_item, catalog_bundle FROM service_requests{where}", *args)
    return (sorted({r["catalog_item"] for r in rows if r["catalog_item"]}),
            sorted({r["catalog_bundle"] for r in rows if r["catalog_bundle"]}))


async def list_requests(conn: asyncpg.Connection | asyncpg.Pool, *, filters: dict[str, str | None],
                        visible_to: tuple[str, str | None] | None, before: int | None,
                        limit: int) -> list[asyncpg.Record]:
    """Newest first. ``visible_to`` (user, team): only their own and their team's requests."""
    clauses: list[str] = []
    args: list[Any] = []

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    columns = {"status": "status", "item": "catalog_item", "bundle": "catalog_bundle",
               "requester": "requester_user_id", "team": "requester_team"}
    for key, column in columns.items():
        if filters.get(key) is not None:
            clauses.append(f"{column} = {arg(filters[key])}")
    if visible_to is not None:
        clauses.append(_visible_clause(visible_to, arg))
    if before is not None:
        clauses.append(f"id < {arg(before)}")
    where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
    return await conn.fetch(f"SELECT * FROM service_requests{where} ORDER BY id DESC LIMIT {limit}", *args)
