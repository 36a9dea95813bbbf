"""What every step type shares: its context, its result, and its typed errors."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from app.log import scrub
from app.pgtext import json_problem, storable_copy
from app.requests.config import RequestSettings


class StepFailed(Exception):
    """A typed step error: ``type`` (http_error, timeout, render_error...), message, details."""

    def __init__(self, type: str, message: str, details: dict[str, Any] | None = None, *,
                 retryable: bool = False):
        super().__init__(message)
        self.type = type
        self.message = message
        self.details = details or {}
        self.retryable = retryable

    def as_dict(self) -> dict[str, Any]:
        """The error as stored and shown, with every known secret (secret fields too) scrubbed."""
        details = json.loads(scrub(json.dumps(self.details, default=str)))
        # What a remote system answered may hold text PostgreSQL refuses (a NUL, NaN): made storable.
        return {"type": self.type, "message": storable_copy(scrub(self.message)),
                "details": storable_copy(details)}


class StepWaiting(Exception):
    """The step's external work (a workflow run, a pull request) goes on: check again in ``delay`` s.

    The step stays ``running``; a webhook saying the work finished runs the check sooner.
    """

    def __init__(self, reason: str, delay: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.delay = delay


@dataclass
class Ticket:
    system: str
    ticket_id: str
    url: str | None = None


@dataclass
class StepResult:
    outputs: dict[str, Any] = field(default_factory=dict)
    ticket: Ticket | None = None  # set: the step waits for the ticket to be resolved


@dataclass
class StepContext:
    request_id: str
    step_id: str
    config: dict[str, Any]  # rendered
    outputs_declared: list[str]
    http: aiohttp.ClientSession
    settings: RequestSettings
    tracking: dict[str, Any] | None  # what an earlier attempt saved (e.g. a poll URL)
    save_tracking: Callable[[dict[str, Any]], Awaitable[None]]
    github: Any = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def idempotency_key(self) -> str:
        return f"{self.request_id}/{self.step_id}"

    @property
    def label(self) -> str:
        """A ticket label naming this step, so a retry finds the ticket it already opened."""
        return "pao-" + "".join(c if c.isalnum() or c in "-_" else "-" for c in self.idempotency_key)


def declared_outputs(ctx: StepContext, body: Any) -> dict[str, Any]:
    """The declared outputs from a JSON object; a missing one fails the step."""
    if not ctx.outputs_declared:
        return {}
    if not isinstance(body, dict):
        raise StepFailed("missing_output", "the answer is not a JSON object, so it has none of the "
                         f"declared outputs {', '.join(ctx.outputs_declared)}")
    missing = [n for n in ctx.outputs_declared if n not in body]
    if missing:
        raise StepFailed("missing_output", f"the answer lacks the declared output(s) {', '.join(missing)}",
                         {"missing": missing})
    outputs = {n: body[n] for n in ctx.outputs_declared}
    unstorable = json_problem(outputs)
    if unstorable:  # stored as jsonb, rendered into later steps: refused, never half-stored
        raise StepFailed("bad_output", f"output {unstorable[0]} {unstorable[1]}", {"output": unstorable[0]})
    return outputs


Runner = Callable[[StepContext], Awaitable[StepResult]]
