"""Pure: what a notification says, and its Slack and generic JSON bodies."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

# The events PAO notifies about; the generic webhook's ``event`` field.
EVENTS = (
    "sync.failed",
    "sync.completed_with_errors",
    "mirror.failed",
    "request.status_changed",
    "request.step_failed",
    "request.manual_ticket_opened",
)


@dataclass(frozen=True)
class Notification:
    event: str
    title: str
    text: str
    fields: dict[str, str] = field(default_factory=dict)
    link: str | None = None
    team: str | None = None

    def as_args(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_args(cls, args: Mapping[str, Any]) -> Notification:
        return cls(event=args["event"], title=args["title"], text=args["text"],
                   fields=dict(args.get("fields") or {}), link=args.get("link"), team=args.get("team"))


def _escape(text: str) -> str:
    """Slack's three control characters in message text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_body(n: Notification) -> dict[str, Any]:
    """An incoming-webhook body: ``text`` (what Slack-compatible servers read) plus blocks."""
    lines = [f"*{_escape(n.title)}*", _escape(n.text)]
    lines += [f"*{_escape(k)}:* {_escape(v)}" for k, v in n.fields.items()]
    if n.link:
        lines.append(f"<{n.link}|details>")
    text = "\n".join(line for line in lines if line)
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": f"PAO · `{n.event}`"}]},
    ]
    return {"text": text, "blocks": blocks}


def generic_body(n: Notification) -> dict[str, Any]:
    """The generic JSON webhook body: every field, as data."""
    return {"source": "pao", **n.as_args()}
