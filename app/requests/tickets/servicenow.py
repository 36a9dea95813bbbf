"""ServiceNow tickets through the Table API: ``POST /api/now/table/{table}`` (default ``incident``).

The record's ``correlation_id`` names the request and step; before creating, PAO queries
for it, so a retried attempt never creates a second record. A record is resolved once it
is no longer ``active`` (every task table, incident included, clears it on closing).
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import quote

import aiohttp

from app.requests.config import RequestSettings
from app.requests.steps.base import StepContext, StepFailed, Ticket
from app.requests.tickets import ticket_text

KNOWN = ("summary", "description", "table")
DEFAULT_TABLE = "incident"


def _auth(s: RequestSettings) -> dict[str, str]:
    if s.servicenow_user:
        raw = f"{s.servicenow_user}:{s.servicenow_password or ''}".encode()
        return {"Authorization": "Basic " + base64.b64encode(raw).decode()}
    return {"Authorization": f"Bearer {s.servicenow_token}"}


async def _call(http: aiohttp.ClientSession, s: RequestSettings, method: str, path: str,
                **kwargs: Any) -> Any:
    try:
        async with http.request(method, f"{s.servicenow_url}{path}",
                                headers={**_auth(s), "Accept": "application/json"},
                                timeout=aiohttp.ClientTimeout(total=s.http_timeout), **kwargs) as resp:
            body = await resp.json(content_type=None)
            if resp.status >= 500 or resp.status == 429:
                raise StepFailed("ticket_error", f"ServiceNow answered {resp.status} to {method} {path}",
                                 retryable=True)
            if resp.status >= 400:
                detail = ((body or {}).get("error") or {}).get("message") or resp.reason
                raise StepFailed("ticket_error", f"ServiceNow refused {method} {path} ({resp.status}): "
                                 f"{detail}", {"status": resp.status})
            return body
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise StepFailed("ticket_error", f"ServiceNow unreachable: {type(exc).__name__}",
                         retryable=True) from None


def _query(field: str, value: str) -> str:
    return f"sysparm_query={quote(f'{field}={value}')}&sysparm_limit=1"


async def open_ticket(ctx: StepContext) -> Ticket:
    s = ctx.settings
    if not s.servicenow_url:
        raise StepFailed("not_configured", "the item's manual system is servicenow and "
                         "PAO_SERVICENOW_URL is unset")
    template = ctx.config.get("template") or {}
    table = str(template.get("table") or DEFAULT_TABLE)
    found = await _call(ctx.http, s, "GET", f"/api/now/table/{table}?{_query('correlation_id', ctx.label)}")
    records = (found or {}).get("result") or []
    if records:
        record = records[0]
    else:
        description = ticket_text(ctx, str(template.get("description") or ""), KNOWN)
        created = await _call(ctx.http, s, "POST", f"/api/now/table/{table}", json={
            "short_description": str(template["summary"])[:160], "description": description,
            "correlation_id": ctx.label, "correlation_display": "PAO"})
        record = created["result"]
    return Ticket("servicenow", f"{table}:{record['number']}",
                  f"{s.servicenow_url}/nav_to.do?uri={table}.do?sys_id={record['sys_id']}")


async def is_resolved(http: aiohttp.ClientSession, settings: RequestSettings, ticket: str,
                      github: Any = None) -> bool:
    table, _, number = ticket.partition(":")
    found = await _call(http, settings, "GET", f"/api/now/table/{table}?{_query('number', number)}")
    records = (found or {}).get("result") or []
    return bool(records) and str(records[0].get("active")).lower() == "false"
