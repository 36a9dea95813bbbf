"""What webhook handlers see of intake: the delivery's ``Intake`` and typed payload reads.

Kept apart from ``app.webhooks`` (the HTTP side) so that handlers, and the modules
they use, import this small module and never the intake machinery that imports them.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from asyncpg.transaction import Transaction

from app import jobs


class PayloadError(Exception):
    """The payload lacks a field, or a field has the wrong type, that a handler needs."""

    def __init__(self, field_path: str, problem: str = "is missing"):
        self.field_path = field_path
        super().__init__(f"payload field '{field_path}' {problem}")


# PostgreSQL's bigint and integer: ids are stored as the former, PR numbers as the latter.
BIGINT_MAX = 2**63 - 1
INTEGER_MAX = 2**31 - 1

_MISSING = object()
_PART = re.compile(r"([^.\[\]]+)((?:\[\d+\])*)")


@functools.lru_cache(maxsize=1024)
def _steps(path: str) -> tuple[tuple[str | int, str], ...]:
    """``path``'s steps (keys and list indexes), each with the path walked once it is taken.

    Cached: handlers read the same few paths from every delivery, and parsing them was
    a quarter of a push's handler time.
    """
    steps: list[tuple[str | int, str]] = []
    walked = ""
    for part in path.split("."):
        match = _PART.fullmatch(part)
        if match is None:
            raise ValueError(f"bad payload path {path!r}")
        walked = f"{walked}.{match[1]}" if walked else match[1]
        steps.append((match[1], walked))
        for index in map(int, re.findall(r"\d+", match[2])):
            walked = f"{walked}[{index}]"
            steps.append((index, walked))
    return tuple(steps)


def _walk(data: Any, path: str) -> Any:
    """The value at ``path`` (``"a.b"``, ``"a[0].b"``), or ``_MISSING`` if absent or null.

    A step into something that is not an object (or list) is a PayloadError naming it.
    """
    value, walked = data, ""
    for step, after in _steps(path):
        if isinstance(step, str):
            if not isinstance(value, dict):
                raise PayloadError(walked, f"has the wrong type (expected object, got "
                                           f"{_json_type(value)})")
            value = value.get(step)
        else:
            if not isinstance(value, list):
                raise PayloadError(walked, f"has the wrong type (expected array, got "
                                           f"{_json_type(value)})")
            value = value[step] if step < len(value) else None
        if value is None:
            return _MISSING
        walked = after
    return value


def _typed(value: Any, path: str, kind: type | tuple[type, ...] | None,
           minimum: int | None, maximum: int | None) -> Any:
    if kind is None:
        return value
    kinds = kind if isinstance(kind, tuple) else (kind,)
    # JSON true/false are bools, which Python counts as ints: a bool is never a number here.
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        names = " or ".join(_JSON_TYPE.get(k, k.__name__) for k in kinds)
        raise PayloadError(path, f"has the wrong type (expected {names}, got {_json_type(value)})")
    if isinstance(value, int) and not isinstance(value, bool):
        low = -BIGINT_MAX - 1 if minimum is None else minimum
        high = BIGINT_MAX if maximum is None else maximum
        if not low <= value <= high:
            raise PayloadError(path, f"is out of range (expected {low}..{high})")
    return value


_JSON_TYPE = {dict: "object", list: "array", str: "string", int: "integer", bool: "boolean",
              float: "number"}


def _json_type(value: Any) -> str:
    return "null" if value is None else _JSON_TYPE.get(type(value), type(value).__name__)


def require(data: Any, path: str, kind: type | tuple[type, ...] | None = None, *,
            minimum: int | None = None, maximum: int | None = None) -> Any:
    """``data[a][b]...`` for ``path`` ``"a.b"`` (``"a[0].b"`` for lists), of type ``kind``.

    A missing (or null) field, a value of another type, or an integer outside
    ``minimum..maximum`` (by default PostgreSQL's bigint, where ids are kept) is a
    ``PayloadError`` naming the field: intake answers it 400 and stores the delivery.
    """
    value = _walk(data, path)
    if value is _MISSING:
        raise PayloadError(path)
    return _typed(value, path, kind, minimum, maximum)


def optional(data: Any, path: str, kind: type | tuple[type, ...], default: Any = None, *,
             minimum: int | None = None, maximum: int | None = None) -> Any:
    """Like ``require`` but a missing (or null) field is ``default``; a wrong type still fails."""
    value = _walk(data, path)
    if value is _MISSING:
        return default
    return _typed(value, path, kind, minimum, maximum)


def entries(data: Any, path: str) -> range:
    """The indexes of the list at ``path`` (empty when missing), for ``f"{path}[{i}]..."`` reads."""
    return range(len(optional(data, path, list, [])))


class OnDemandTransaction:
    """A pooled connection whose transaction begins when a handler first asks for it.

    Shared by the deliveries of one intake batch: if no handler needs the database (a
    push to another repository, an event nobody acts on), intake writes the batch's
    rows with one statement in its own implicit transaction, sparing the BEGIN and
    COMMIT round trips (a third of intake's CPU time per delivery).
    """

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self._transaction: Transaction | None = None

    async def connection(self) -> asyncpg.Connection:
        """The connection, inside the transaction (begun now if it was not)."""
        if self._transaction is None:
            transaction = self.conn.transaction()
            await transaction.start()
            self._transaction = transaction
        return self.conn

    async def commit(self) -> None:
        if self._transaction is not None:
            await self._transaction.commit()

    async def rollback(self) -> None:
        if self._transaction is not None:
            await self._transaction.rollback()


@dataclass
class Intake:
    """One delivery as the handlers see it: its transaction and what they decided."""

    transaction: OnDemandTransaction
    settings: Any
    delivery_id: str
    event: str
    job_ids: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)

    async def connection(self) -> asyncpg.Connection:
        """The database connection, in the transaction this delivery commits in (with its
        ``webhook_events`` row and the rest of its batch): a handler's writes are durable
        exactly when the delivery is."""
        return await self.transaction.connection()

    async def enqueue(self, task: str, args: dict[str, Any], **options: Any) -> int:
        """Queue a job in this delivery's transaction; returns its id (or its waiting twin's)."""
        queued = await jobs.enqueue(await self.connection(), task, args,
                                    delivery_id=self.delivery_id, **options)
        if queued.job_id not in self.job_ids:
            self.job_ids.append(queued.job_id)
        return queued.job_id

    def ignore(self, reason: str) -> None:
        """Say why this delivery needs no work (shown in the 200 response and stored)."""
        self.ignored.append(reason)

    def handled(self, note: str) -> None:
        """Say the handler did its (cheap) work inline; no job was needed."""
        self.notes.append(note)
