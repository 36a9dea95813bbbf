"""Notifications to Slack-compatible incoming webhooks and generic JSON webhooks.

``notify(conn, settings, Notification(...))`` queues one ``notify.send`` job per
configured target; the job (``tasks.py``) posts with retries. Call it from anywhere
that has a connection: inside a transaction, the notification is sent only if that
transaction commits. It never raises: a notification must not block what triggered it.

Targets: ``PAO_NOTIFY_SLACK_URL`` and ``PAO_NOTIFY_WEBHOOK_URL`` get every event; a
notification with ``team=`` also goes to that team's channel in
``PAO_NOTIFY_TEAM_SLACK_URLS``.
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
    return found


async def notify(conn: Any, settings: Any, notification: Notification) -> list[int]:
    """Queue ``notification`` for every configured target; the job ids. Never raises."""
    from app import jobs

    if notification.event not in EVENTS:
        log.error("not notifying an unknown event %r", notification.event)
        return []
    ids = []
    for target in targets(settings, notification):
        try:
            # A savepoint: a failed enqueue leaves the caller's transaction usable.
            async with conn.transaction() if hasattr(conn, "transaction") else nullcontext():
                queued = await jobs.enqueue(conn, SEND_TASK,
                                            {"target": target, "notification": notification.as_args()})
            ids.append(queued.job_id)
        except Exception as exc:
            log.warning("could not queue the %s notification for %s: %s", notification.event,
                        target, exc)
    return ids

