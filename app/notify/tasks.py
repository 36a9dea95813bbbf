"""The ``notify.send`` job: post one notification to one target, with retries."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from typing import Any

import aiohttp

from app import metrics
from app.jobs import JobContext, PermanentJobError, RetryJob, task
from app.log import scrub
from app.notify import SEND_TASK
from app.notify.config import notify_settings
from app.notify.messages import Notification, generic_body, slack_body

log = logging.getLogger(__name__)

TIMEOUT = aiohttp.ClientTimeout(total=15)


def _kind(target: str) -> str:
    return "webhook" if target == "webhook" else "slack"


@task(SEND_TASK, max_attempts=6, retry_base=5.0, retry_cap=300.0)
async def send(ctx: JobContext, target: str, notification: dict[str, Any]) -> dict[str, Any]:
    ns = notify_settings(ctx.settings)
    url = ns.url(target)
    if url is None:
        return {"skipped": f"{target} is no longer configured"}
    n = Notification.from_args(notification)
    kind = _kind(target)
    body = json.dumps(generic_body(n) if kind == "webhook" else slack_body(n)).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "pao-notify"}
    if kind == "webhook" and ns.webhook_secret:
        digest = hmac.new(ns.webhook_secret.encode(), body, hashlib.sha256).hexdigest()
        headers["X-PAO-Signature-256"] = f"sha256={digest}"
        headers["X-PAO-Event"] = n.event
    try:
        async with ctx.http.post(url, data=body, headers=headers, timeout=TIMEOUT) as resp:
            status = resp.status
            answer = (await resp.text())[:200]
            retry_after = resp.headers.get("Retry-After", "")
    except (aiohttp.ClientError, TimeoutError) as exc:
        # Never the URL in the message: for Slack it is the credential.
        metrics.NOTIFICATIONS.labels(kind, "retry").inc()
        raise ConnectionError(f"{target} notification: {type(exc).__name__}: "
                              f"{scrub(str(exc))}") from None
    if 200 <= status < 300:
        metrics.NOTIFICATIONS.labels(kind, "sent").inc()
        return {"target": target, "event": n.event, "status": status}
    detail = f"{target} notification answered {status}: {scrub(' '.join(answer.split()))}"
    if status == 429 or status >= 500:
        metrics.NOTIFICATIONS.labels(kind, "retry").inc()
        delay = float(retry_after) if retry_after.isascii() and retry_after.isdigit() else None
        raise RetryJob(detail, delay)
    metrics.NOTIFICATIONS.labels(kind, "failed").inc()
    raise PermanentJobError(detail + " (check the URL in the PAO_NOTIFY_* variable)")
