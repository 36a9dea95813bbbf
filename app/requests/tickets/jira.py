"""Jira (Cloud and Data Center), REST API v2: ``POST /rest/api/2/issue``.

The ticket carries a label naming the request and step; before creating one, PAO searches
for that label, so a retried attempt never opens a second ticket.
"""

from __future__ import annotations

import base64
from typing import Any

import aiohttp

from app.requests.config import RequestSettings
from app.requests.steps.base import StepContext, StepFailed, Ticket
from app.requests.tickets import ticket_text

# Template keys that map to Jira fields; everything else goes into the description.
KNOWN = ("summary", "project", "issue_type", "description", "labels", "priority")


def _auth(s: RequestSettings) -> dict[str, str]:
    if s.jira_user:  # Cloud: e-mail address and API token
        raw = f"{s.jira_user}:{s.jira_token}".encode()
        return {"Authorization": "Basic " + base64.b64encode(raw).decode()}
    return {"Authorization": f"Bearer {s.jira_token}"}  # Data Center: personal access token


async def _call(http: aiohttp.ClientSession, settings: RequestSettings, method: str, path: str,
                **kwargs: Any) -> Any:
    url = f"{settings.jira_url}{path}"
    try:
        async with http.request(method, url, headers={**_auth(settings), "Accept": "application/json"},
                                timeout=aiohttp.ClientTimeout(total=settings.http_timeout),
                                **kwargs) as resp:
            body = await resp.json(content_type=None) if resp.content_length != 0 else None
            if resp.status >= 500 or resp.status == 429:
                raise StepFailed("ticket_error", f"Jira answered {resp.status} to {method} {path}",
                                 retryable=True)
            if resp.status >= 400:
                messages = (body or {}).get("errorMessages") or []
                errors = (body or {}).get("errors") or {}
                raise StepFailed("ticket_error", f"Jira refused {method} {path} ({resp.status}): "
                                 + "; ".join([*messages, *(f"{k}: {v}" for k, v in errors.items())]),
                                 {"status": resp.status})
            return body
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise StepFailed("ticket_error", f"Jira unreachable: {type(exc).__name__}", retryable=True) from None


async def _search(ctx: StepContext, jql: str) -> list[dict[str, Any]]:
    """Issues matching ``jql``: Cloud's ``search/jql``, or Data Center's ``search`` where that is absent."""
    query = {"jql": jql, "maxResults": 1, "fields": ["summary"]}
    try:
        found = await _call(ctx.http, ctx.settings, "POST", "/rest/api/2/search/jql", json=query)
    except StepFailed as exc:
        if exc.details.get("status") != 404:
            raise
        found = await _call(ctx.http, ctx.settings, "POST", "/rest/api/2/search", json=query)
    return (found or {}).get("issues") or []


async def open_ticket(ctx: StepContext) -> Ticket:
    if not ctx.settings.jira_url:
        raise StepFailed("not_configured", "the item's manual system is jira and PAO_JIRA_URL is unset")
    template = ctx.config.get("template") or {}
    label = ctx.label
    issues = await _search(ctx, f'labels = "{label}"')
    if issues:
        key = issues[0]["key"]
    else:
        description = ticket_text(ctx, str(template.get("description") or ""), KNOWN)
        fields: dict[str, Any] = {
            "project": {"key": str(template["project"])},
            "issuetype": {"name": str(template["issue_type"])},
            "summary": str(template["summary"])[:255],
            "description": description,
            "labels": [label, *[str(x) for x in template.get("labels") or []]],
        }
        created = await _call(ctx.http, ctx.settings, "POST", "/rest/api/2/issue", json={"fields": fields})
        key = created["key"]
    return Ticket("jira", key, f"{ctx.settings.jira_url}/browse/{key}")


async def is_resolved(http: aiohttp.ClientSession, settings: RequestSettings, ticket_id: str,
                      github: Any = None) -> bool:
    """True once the issue has a resolution (or its status is in the done category)."""
    issue = await _call(http, settings, "GET", f"/rest/api/2/issue/{ticket_id}",
                        params={"fields": "status,resolution"})
    return resolved_issue(issue)


def resolved_issue(issue: Any) -> bool:
    """Is the issue (Jira's JSON, from the REST API or a webhook) resolved? Parts of another
    shape than Jira's count as absent, never as an error."""
    def part(value: Any, key: str) -> Any:
        return value.get(key) if isinstance(value, dict) else None

    fields = part(issue, "fields")
    category = part(part(part(fields, "status"), "statusCategory"), "key")
    return part(fields, "resolution") is not None or category == "done"
