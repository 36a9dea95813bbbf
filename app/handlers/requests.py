"""``issues`` closed: a GitHub issue PAO opened for a manual step was closed; complete the step."""

from __future__ import annotations

from typing import Any

from gidgethub import routing
from gidgethub.sansio import Event

from app.intake import Intake, require
from app.requests.executor import RESOLVE_TASK
from app.requests.tickets.github import ticket_id

router = routing.Router()


@router.register("issues", action="closed")
async def issue_closed(event: Event, gh: Any, *args: Any, intake: Intake, **kwargs: Any) -> None:
    repository = require(event.data, "repository.full_name", str)
    number = require(event.data, "issue.number", int)
    ticket = ticket_id(repository, number)
    conn = await intake.connection()
    known = await conn.fetchval(
        "SELECT 1 FROM manual_tickets WHERE ticket_system = 'github' AND ticket_id = $1 AND status = 'open'",
        ticket)
    if not known:
        intake.ignore(f"{ticket} is not an open PAO ticket")
        return
    await intake.enqueue(RESOLVE_TASK, {"system": "github", "ticket_id": ticket},
                         queueing_lock=f"request-resolve:github:{ticket}")
