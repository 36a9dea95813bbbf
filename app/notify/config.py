"""Notification settings: ``PAO_NOTIFY_SLACK_URL``, ``PAO_NOTIFY_WEBHOOK_URL`` (+ secret), team channels.

The URLs are secrets (a Slack incoming-webhook URL is its own credential): they are
registered with the log scrubber and never stored; jobs name a target, not its URL.
``PAO_NOTIFY_{SLACK,WEBHOOK,TEAM}_EVENTS`` choose the events each kind of target gets
(event names, or a family such as ``request.*``; unset: every event).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlparse

from app.config import FEATURE_READERS, EnvReader, parse_url
from app.log import register_secret
from app.notify.messages import EVENTS

# Which events a kind of target gets: None is every event.
EventFilter = frozenset[str] | None


@dataclass(frozen=True)
class NotifySettings:
    slack_url: str | None = field(default=None, repr=False)
    webhook_url: str | None = field(default=None, repr=False)
    webhook_secret: str | None = field(default=None, repr=False)
    team_slack_urls: dict[str, str] = field(default_factory=dict, repr=False)
    slack_events: EventFilter = None
    webhook_events: EventFilter = None
    team_events: EventFilter = None

    def wants(self, target: str, event: str) -> bool:
        """Does ``target`` (``slack``, ``webhook``, ``team:NAME``) get ``event``?"""
        chosen = (self.slack_events if target == "slack" else self.webhook_events
                  if target == "webhook" else self.team_events)
        return chosen is None or event in chosen

    def url(self, target: str) -> str | None:
        """The URL of ``target`` (``slack``, ``webhook`` or ``team:NAME``), None if unset now."""
        if target == "slack":
            return self.slack_url
        if target == "webhook":
            return self.webhook_url
        if target.startswith("team:"):
            return self.team_slack_urls.get(target[5:])
        return None


def _secret_url(r: EnvReader, name: str) -> str | None:
    url = r.url(name)
    if url is not None:
        register_secret(url)
        register_secret(urlparse(url).path)  # the token-bearing part, should a message cut the URL
    return url


def _events(r: EnvReader, name: str) -> EventFilter:
    """``request.*,sync.failed``: event names or families; unset is every event."""
    chosen: set[str] = set()
    for entry in r.list(name):
        family = entry.removesuffix("*")
        found = {e for e in EVENTS if e.startswith(family)} if entry.endswith("*") else (
            {entry} & set(EVENTS))
        if not found:
            r.problems.append(f"{name}: {entry!r} is no event PAO sends; expected names or families "
                              f"(such as request.*) among {', '.join(EVENTS)}")
        chosen |= found
    return frozenset(chosen) if r.raw(name) is not None else None


def read(r: EnvReader) -> NotifySettings:
    teams: dict[str, str] = {}
    for entry in r.list("PAO_NOTIFY_TEAM_SLACK_URLS"):
        team, sep, url = entry.partition("=")
        parsed = parse_url(url.strip())
        if not sep or not team.strip() or parsed is None or parsed.scheme not in ("http", "https") \
                or not parsed.netloc:
            r.problems.append("PAO_NOTIFY_TEAM_SLACK_URLS: expected TEAM=https://... entries "
                              f"separated by commas; one entry for {team.strip() or '?'!r} is not")
            continue
        teams[team.strip()] = url.strip()
        register_secret(url.strip())
        register_secret(parsed.path)
    secret = r.raw("PAO_NOTIFY_WEBHOOK_SECRET")
    register_secret(secret)
    return NotifySettings(
        slack_url=_secret_url(r, "PAO_NOTIFY_SLACK_URL"),
        webhook_url=_secret_url(r, "PAO_NOTIFY_WEBHOOK_URL"),
        webhook_secret=secret,
        team_slack_urls=teams,
        slack_events=_events(r, "PAO_NOTIFY_SLACK_EVENTS"),
        webhook_events=_events(r, "PAO_NOTIFY_WEBHOOK_EVENTS"),
        team_events=_events(r, "PAO_NOTIFY_TEAM_EVENTS"),
    )


FEATURE_READERS["notify"] = read


def notify_settings(settings: object) -> NotifySettings:
    value = (getattr(settings, "extra", None) or {}).get("notify")
    return value if isinstance(value, NotifySettings) else NotifySettings()
