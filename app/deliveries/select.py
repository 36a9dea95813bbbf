"""Pure logic: which of GitHub's recent deliveries PAO should ask to have redelivered."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class HookDelivery:
    """One attempt as ``GET /app/hook/deliveries`` lists it (a redelivery is another attempt)."""

    id: int
    guid: str
    delivered_at: datetime
    redelivery: bool
    status: str
    status_code: int  # 0 when GitHub got no answer (timeout, connection refused)
    event: str
    action: str | None

    @property
    def succeeded(self) -> bool:
        return 200 <= self.status_code < 300

    @classmethod
    def from_json(cls, item: Mapping[str, Any]) -> HookDelivery:
        return cls(
            id=int(item["id"]),
            guid=str(item["guid"]),
            delivered_at=datetime.fromisoformat(str(item["delivered_at"]).replace("Z", "+00:00")),
            redelivery=bool(item.get("redelivery")),
            status=str(item.get("status") or ""),
            status_code=int(item.get("status_code") or 0),
            event=str(item.get("event") or ""),
            action=item.get("action") if isinstance(item.get("action"), str) else None,
        )


@dataclass(frozen=True)
class Candidate:
    """A delivery to redeliver: its latest attempt and why."""

    attempt: HookDelivery
    reason: str  # "failed": no attempt got a 2xx; "unrecorded": 2xx, yet PAO has no record


def candidates(attempts: Iterable[HookDelivery], recorded: set[str],
               already_requested: set[str]) -> list[Candidate]:
    """Deliveries to redeliver, oldest first.

    A delivery (one GUID) is redelivered when none of its attempts succeeded, or when
    one did but PAO stored nothing under its GUID (an answer from something in front
    of PAO, or a lost write). ``recorded``: GUIDs PAO stored; ``already_requested``:
    GUIDs PAO already asked for once (never twice).
    """
    latest: dict[str, HookDelivery] = {}
    succeeded: set[str] = set()
    for attempt in attempts:
        if attempt.succeeded:
            succeeded.add(attempt.guid)
        seen = latest.get(attempt.guid)
        if seen is None or (attempt.delivered_at, attempt.id) > (seen.delivered_at, seen.id):
            latest[attempt.guid] = attempt
    chosen = []
    for guid, attempt in latest.items():
        if guid in already_requested:
            continue
        if guid not in succeeded:
            chosen.append(Candidate(attempt, "failed"))
        elif guid not in recorded:
            chosen.append(Candidate(attempt, "unrecorded"))
    chosen.sort(key=lambda c: (c.attempt.delivered_at, c.attempt.id))
    return chosen
