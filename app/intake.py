"""What webhook handlers see of intake: the delivery's ``Intake`` and typed payload reads.

Kept apart from ``app.webhooks`` (the HTTP side) so that handlers, and the modules
they use, import this small module and never the intake machinery that imports them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import asyncpg

from app import jobs


class PayloadError(Exception):
    """The payload lacks a field, or a field has the wrong type, that a handler needs."""

    def __init__(self, field_path: str, problem: str = "is missing"):
        self.field_path = field_path
        super().__init__(f"payload field '{field_path}' {problem}")


def require(data: Any, path: str, kind: type | tuple[type, ...] | None = None) -> Any:
    """``data[a][b]...`` for ``path`` ``"a.b"``, or PayloadError naming the missing field."""
    value = data
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value or value[part] is None:
            raise PayloadError(path)
        value = value[part]
    if kind is not None and not isinstance(value, kind):
        raise PayloadError(path, "has the wrong type")
    return value


@dataclass
class Intake:
    """One delivery as the handlers see it: the open transaction and what they decided."""

    conn: asyncpg.Connection
    settings: Any
    delivery_id: str
    event: str
    job_ids: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)

    async def enqueue(self, task: str, args: dict[str, Any], **options: Any) -> int:
        """Queue a job in this delivery's transaction; returns its id (or its waiting twin's)."""
        queued = await jobs.enqueue(self.conn, task, args, delivery_id=self.delivery_id, **options)
        if queued.job_id not in self.job_ids:
            self.job_ids.append(queued.job_id)
        return queued.job_id

    def ignore(self, reason: str) -> None:
        """Say why this delivery needs no work (shown in the 200 response and stored)."""
        self.ignored.append(reason)

    def handled(self, note: str) -> None:
        """Say the handler did its (cheap) work inline; no job was needed."""
        self.notes.append(note)
