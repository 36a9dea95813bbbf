"""Notifications to Slack-compatible incoming webhooks and generic JSON webhooks.

``notify(conn, settings, Notification(...))`` queues one ``notify.send`` job per
configured target; the job (``tasks.py``) posts with retries. Call it from anywhere
that has a connection: inside a transaction, the notification is sent only if that
transaction commits. It never raises: a notification must not block what triggered it.

Targets: ``PAO_NOTIFY_SLACK_URL`` and ``PAO_NOTIFY_WEBHOOK_URL`` get every event (or
those their ``PAO_NOTIFY_*_EVENTS`` filter names); a notification with ``team=`` also
goes to that team's channel in ``PAO_NOTIFY_TEAM_SLACK_URLS``.

``dedup_key`` names what a notification is about (a request id and the status it
reached...): a second notification with the same event and key is never queued again
for a target that already has it, so a replayed transition notifies once. The key is
recorded in ``notification_keys`` in the caller's transaction, with the job.
"""

from __future__ import annotations

import logging
from contextlib import nullcontext
from typing import Any

from app.notify.config import notify_settings
from app.notify.messages import EVENTS, Notification

log = logging.getLogger(__name__)

SEND_TASK = "notify.send"

__all__ = ["EVENTS", "Notification", "enabled", "notify", "targets"]


def enabled(settings: Any) -> bool:
    """Is any notification target configured? (Lets callers skip building a message.)"""
    ns = notify_settings(settings)
    return bool(ns.slack_url or ns.webhook_url or ns.team_slack_urls)


def targets(settings: Any, notification: Notification) -> list[str]:
    """The targets configured for ``notification``: ``slack``, ``webhook``, ``team:NAME``."""
    ns = notify_settings(settings)
    found = [name for name, url in (("slack", ns.slack_url), ("webhook", ns.webhook_url)) if url]
    if notification.team and notification.team in ns.team_slack_urls:
        found.append(f"team:{notification.team}")
    return [name for name in found if ns.wants(name, notification.event)]


def _connection(conn: Any) -> Any:
    """A connection to run on: ``conn`` itself, or one acquired from it when it is a pool."""
    return nullcontext(conn) if hasattr(conn, "transaction") else conn.acquire()


# Claims (target, event + key) for each target; the targets returned did not have it yet.
CLAIM_KEYS = """
INSERT INTO notification_keys (target, dedup_key)
SELECT target, $2 FROM unnest($1::text[]) AS target
ON CONFLICT DO NOTHING RETURNING target
"""


async def notify(conn: Any, settings: Any, notification: Notification, *,
                 dedup_key: str | None = None) -> list[int]:
    """Queue ``notification`` for every configured target that wants it; the job ids. Never raises.

    With ``dedup_key``, a target that was already given this event and key gets nothing.
    """
    from app import jobs

    if notification.event not in EVENTS:
        log.error("not notifying an unknown event %r", notification.event)
        return []
    wanted = targets(settings, notification)
    if not wanted:
        return []
    try:
        # One savepoint in the caller's transaction (a failed enqueue leaves it usable), or a
        # transaction of its own on a pool: the keys and the jobs are written together.
        async with _connection(conn) as c, c.transaction():
            if dedup_key is not None:
                claimed = {r["target"] for r in await c.fetch(
                    CLAIM_KEYS, wanted, f"{notification.event}:{dedup_key}")}
                wanted = [t for t in wanted if t in claimed]
            return [(await jobs.enqueue(c, SEND_TASK, {"target": target,
                                                       "notification": notification.as_args()})).job_id
                    for target in wanted]
    except Exception as exc:
        log.warning("could not queue the %s notification for %s: %s", notification.event,
                    ", ".join(wanted), exc)
        return []
