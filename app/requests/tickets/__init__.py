"""Ticket systems for manual fulfillment, one module each (``open_ticket(ctx) -> Ticket``)."""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.requests.steps.base import StepContext


def ticket_text(ctx: StepContext, text: str, known: Collection[str]) -> str:
    """A ticket's text: ``text``, the template's keys the system has no field for, the request and step."""
    template = ctx.config.get("template") or {}
    extra = {k: v for k, v in template.items() if k not in known}
    if extra:
        text += "\n" + "\n".join(f"{k}: {v}" for k, v in extra.items())
    return text + f"\n\nPAO request {ctx.request_id}, step {ctx.step_id}."
