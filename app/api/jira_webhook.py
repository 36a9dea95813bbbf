"""``POST /api/v1/webhooks/jira``: Jira tells PAO a ticket changed; a resolved one completes its step.

Jira signs the body with the webhook's secret (``X-Hub-Signature: sha256=<hex HMAC>``);
PAO checks it against PAO_JIRA_WEBHOOK_SECRET and refuses anything unsigned.
"""

from __future__ import annotations

import hashlib
import hmac
import json

from aiohttp import web

from app.httpbody import read_capped
from app.pgtext import text_problem
from app.requests.config import request_settings
from app.requests.executor import resolve_ticket
from app.requests.tickets.jira import resolved_issue
from app.state import RUNTIME
from app.webhooks import error

routes = web.RouteTableDef()

MAX_BODY = 1024 * 1024
MAX_KEY = 255  # Jira keys are PROJECT-123; manual_tickets.ticket_id holds what PAO created


@routes.post("/api/v1/webhooks/jira")
async def jira_webhook(request: web.Request) -> web.Response:
    secret = request_settings(request.app[RUNTIME].settings).jira_webhook_secret
    if not secret:
        return error(404, "not found", "Jira webhooks are off: PAO_JIRA_WEBHOOK_SECRET is unset")
    body = await read_capped(request.content, MAX_BODY)
    if len(body) > MAX_BODY:
        return error(413, "payload too large")
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    # Bytes: compare_digest refuses a str with non-ASCII characters (a TypeError, a 500).
    given = request.headers.get("X-Hub-Signature", "").encode("utf-8", "surrogateescape")
    if not hmac.compare_digest(given, expected.encode()):
        return error(401, "invalid signature", "X-Hub-Signature does not match PAO_JIRA_WEBHOOK_SECRET")
    try:
        payload = json.loads(body)
        issue = payload["issue"]
        key = issue["key"]
    except (ValueError, KeyError, TypeError, RecursionError):
        return error(400, "invalid payload", "expected a Jira issue event with issue.key")
    if not isinstance(key, str) or not 0 < len(key) <= MAX_KEY or text_problem(key):
        return error(400, "invalid payload", f"issue.key must be a Jira issue key (text, 1 to {MAX_KEY} "
                                             "characters)")
    if not resolved_issue(issue):
        return web.json_response({"status": "ignored", "detail": f"{key} is not resolved"})
    steps = await resolve_ticket(request.app[RUNTIME].pool, "jira", key, actor="jira",
                                 settings=request.app[RUNTIME].settings)
    return web.json_response({"status": "resolved", "steps_completed": steps})
