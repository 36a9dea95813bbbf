"""What a request's transition does besides its rows: notifications and metrics.

The executor gives each transaction an ``Effects`` built from the settings its caller
threads in. Notifications are queued on the transaction's connection, so a transition
that rolls back notifies nobody and one that commits always does; each carries a
dedup key (the request, what happened, and how many times it happened before), so
the same transition queued twice is sent once. Metrics are per-process counters that
cannot roll back: they are kept until ``committed()``, which the executor calls after
the transaction's commit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg

from app import metrics
from app.console.config import ConsoleSettings
from app.notify import Notification, enabled, notify

# Step statuses a step ends in, for the step-duration metric.
STEP_ENDED = ("completed", "failed", "cancelled")
REQUEST_ENDED = ("completed", "failed", "cancelled")


def _what(req: Mapping[str, Any]) -> str:
    if req["catalog_bundle"]:
        return f"bundle {req['catalog_bundle']} {req['catalog_version']}"
    return f"{req['catalog_item']} {req['catalog_version']}"


def _fields(req: Mapping[str, Any]) -> dict[str, str]:
    found = {"request": req["request_id"], "for": _what(req), "requester": req["requester_user_id"]}
    if req["requester_team"]:
        found["team"] = req["requester_team"]
    return found


def request_link(settings: Any, request_id: str) -> str | None:
    """The request's console page, when PAO knows its public address (``PAO_PUBLIC_URL``)."""
    console = (getattr(settings, "extra", None) or {}).get("console")
    public = console.public_url if isinstance(console, ConsoleSettings) else None
    return f"{public.rstrip('/')}/requests/{request_id}" if public else None


def status_notification(req: Mapping[str, Any], before: str, after: str, actor: str,
                        link: str | None) -> Notification:
    """Pure: a request went from ``before`` to ``after``."""
    shown = after.replace("_", " ")
    return Notification(
        "request.status_changed", f"Request {req['request_id']} is {shown}",
        f"{_what(req)}, requested by {req['requester_user_id']}: {before.replace('_', ' ')} → {shown}.",
        {**_fields(req), "status": after, "by": actor}, link=link, team=req["requester_team"])


def step_failed_notification(req: Mapping[str, Any], step: Mapping[str, Any], error: Mapping[str, Any],
                             link: str | None) -> Notification:
    """Pure: a step of the request failed (for good: no automatic attempt follows)."""
    return Notification(
        "request.step_failed", f"Request {req['request_id']}: step {step['step_id']} failed",
        str(error.get("message") or error.get("type") or "the step failed")[:1000],
        {**_fields(req), "step": step["step_id"], "type": step["step_type"],
         "error": str(error.get("type", "")), "retry": f"pao requests retry {req['request_id']} "
                                                       f"{step['step_id']}"},
        link=link, team=req["requester_team"])


def ticket_notification(req: Mapping[str, Any], step: Mapping[str, Any], system: str, ticket_id: str,
                        url: str | None) -> Notification:
    """Pure: a manual step opened a ticket and now waits on a person."""
    return Notification(
        "request.manual_ticket_opened", f"Request {req['request_id']} waits on {system} ticket {ticket_id}",
        f"Step {step['step_id']} of {_what(req)} needs a person: resolve the ticket to go on.",
        {**_fields(req), "step": step["step_id"], "ticket": ticket_id,
         **({"ticket_url": url} if url else {})},
        link=url, team=req["requester_team"])


async def _times(conn: asyncpg.Connection, request_pk: int, step_id: str | None, to_status: str,
                 event: str) -> int:
    """How many transitions to ``to_status`` the request (or its step) has had, this one included."""
    return int(await conn.fetchval(
        """SELECT count(*) FROM request_events WHERE request_id = $1 AND event = $2
              AND to_status = $3 AND step_id IS NOT DISTINCT FROM $4""",
        request_pk, event, to_status, step_id))


def _seconds(since: datetime | None) -> float | None:
    return None if since is None else max((datetime.now(UTC) - since).total_seconds(), 0.0)


@dataclass
class Effects:
    """One transaction's notifications (queued at once, on its connection) and metrics (kept)."""

    settings: Any
    pending: list[Callable[[], None]] = field(default_factory=list)

    async def status_changed(self, conn: asyncpg.Connection, req: Mapping[str, Any], before: str,
                             after: str, actor: str) -> None:
        """Call after the request's ``status`` event is written, in the same transaction."""
        if after in REQUEST_ENDED:
            seconds = _seconds(req["created_at"]) or 0.0
            self.pending.append(lambda: metrics.observe_request(after, seconds))
        if self.settings is None or not enabled(self.settings):
            return
        times = await _times(conn, req["id"], None, after, "status")
        await notify(conn, self.settings, status_notification(
            req, before, after, actor, request_link(self.settings, req["request_id"])),
            dedup_key=f"{req['request_id']}:{after}:{times}")

    async def step_changed(self, conn: asyncpg.Connection, req: Mapping[str, Any], step: Mapping[str, Any],
                           status: str, error: Mapping[str, Any] | None) -> None:
        """Call after the step's ``step_status`` event is written, in the same transaction."""
        seconds = _seconds(step["started_at"])
        if status in STEP_ENDED and seconds is not None:
            kind = str(step["step_type"])
            self.pending.append(lambda: metrics.observe_request_step(kind, status, seconds))
        if status != "failed" or self.settings is None or not enabled(self.settings):
            return
        times = await _times(conn, req["id"], step["step_id"], "failed", "step_status")
        await notify(conn, self.settings, step_failed_notification(
            req, step, error or {}, request_link(self.settings, req["request_id"])),
            dedup_key=f"{req['request_id']}:{step['step_id']}:{times}")

    async def ticket_opened(self, conn: asyncpg.Connection, req: Mapping[str, Any], step: Mapping[str, Any],
                            system: str, ticket_id: str, url: str | None) -> None:
        if self.settings is None or not enabled(self.settings):
            return
        await notify(conn, self.settings, ticket_notification(req, step, system, ticket_id, url),
                     dedup_key=f"{req['request_id']}:{step['step_id']}:{system}:{ticket_id}")

    def committed(self) -> None:
        """The transaction committed: record its metrics (once)."""
        pending, self.pending = self.pending, []
        for observe in pending:
            observe()
