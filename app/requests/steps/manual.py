"""Manual steps (and ``on_failure: manual``): open a ticket in the item's system and wait for it."""

from __future__ import annotations

import importlib

from app.requests.steps.base import StepContext, StepFailed, StepResult

# One module per ticket system under app/requests/tickets/, each with ``async def open(ctx)``.
SYSTEMS = {"jira": "app.requests.tickets.jira", "email": "app.requests.tickets.email",
           "github": "app.requests.tickets.github", "servicenow": "app.requests.tickets.servicenow"}


async def run(ctx: StepContext) -> StepResult:
    system = ctx.config.get("system")
    module = SYSTEMS.get(str(system))
    if module is None:
        raise StepFailed("not_supported", f"manual tickets in {system!r} are not supported yet; "
                         f"supported: {', '.join(sorted(SYSTEMS))}. Complete the step by hand with "
                         "POST .../complete")
    ticket = await importlib.import_module(module).open_ticket(ctx)
    return StepResult(ticket=ticket)
