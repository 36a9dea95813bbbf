"""Rows to the JSON the API returns (seed 003's shapes); pure, shared by the API and the CLI."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from app.requests.store import TERMINAL


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def href(request_id: str) -> str:
    return f"/api/v1/requests/{request_id}"


def target(row: asyncpg.Record) -> dict[str, Any]:
    if row["catalog_bundle"] is not None:
        return {"catalog_bundle": row["catalog_bundle"]}
    return {"catalog_item": row["catalog_item"]}


def created(row: asyncpg.Record) -> dict[str, Any]:
    """The 201 answer to a submission."""
    return {"request_id": row["request_id"], "status": row["status"], **target(row),
            "version": row["catalog_version"], "created_at": _time(row["created_at"]),
            "href": href(row["request_id"])}


def summary(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "request_id": row["request_id"], "status": row["status"], **target(row),
        "version": row["catalog_version"], "created_at": _time(row["created_at"]),
        "updated_at": _time(row["updated_at"]), "completed_at": _time(row["completed_at"]),
        "requester": {"user_id": row["requester_user_id"], "team": row["requester_team"],
                      "email": row["requester_email"]},
        "href": href(row["request_id"]),
    }


def step_summary(step: asyncpg.Record) -> dict[str, Any]:
    return {
        "step_id": step["step_id"], "name": step["name"], "type": step["step_type"],
        "item": step["owner_name"], "status": step["status"], "depends_on": list(step["depends_on"]),
        "started_at": _time(step["started_at"]), "completed_at": _time(step["completed_at"]),
        "outputs": step["outputs"], "job_tracking": step["job_tracking"], "error": step["error"],
    }


def execution_mode(steps: list[asyncpg.Record]) -> str:
    kinds = {s["step_type"] == "manual" for s in steps}
    return "mixed" if kinds == {True, False} else "manual" if kinds == {True} else "automation"


def detail(row: asyncpg.Record, steps: list[asyncpg.Record]) -> dict[str, Any]:
    return {
        **summary(row),
        "parameters": {"bundle_parameters": row["bundle_parameters"],
                       "item_parameters": row["item_parameters"]},
        "fulfillment": {"execution_mode": execution_mode(steps),
                        "steps": [step_summary(s) for s in steps]},
        "outputs": row["outputs"],
    }


def attempt(a: asyncpg.Record) -> dict[str, Any]:
    return {"attempt_number": a["attempt_number"], "status": a["status"],
            "started_at": _time(a["started_at"]), "completed_at": _time(a["completed_at"]),
            "error": a["error"]}


def ticket(t: asyncpg.Record) -> dict[str, Any]:
    return {"system": t["ticket_system"], "ticket_id": t["ticket_id"], "url": t["ticket_url"],
            "type": t["ticket_type"], "status": t["status"], "created_at": _time(t["created_at"]),
            "resolved_at": _time(t["resolved_at"])}


def step_detail(row: asyncpg.Record, step: asyncpg.Record, attempts: list[asyncpg.Record],
                tickets: list[asyncpg.Record], *, has_manual: bool) -> dict[str, Any]:
    open_request = row["status"] not in TERMINAL or row["status"] == "failed"
    return {
        "request_id": row["request_id"], **step_summary(step),
        "attempts": [attempt(a) for a in attempts],
        "tickets": [ticket(t) for t in tickets],
        "can_retry": step["status"] == "failed" and open_request,
        "manual_fallback_available": has_manual and step["step_type"] != "manual"
        and step["status"] != "completed",
    }


def event(e: asyncpg.Record) -> dict[str, Any]:
    return {"id": e["id"], "event": e["event"], "step_id": e["step_id"],
            "from_status": e["from_status"], "to_status": e["to_status"], "actor": e["actor"],
            "detail": e["detail"], "at": _time(e["created_at"])}
