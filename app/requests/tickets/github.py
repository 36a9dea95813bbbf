"""GitHub issues as tickets: an issue in the template's ``repository``, opened through the App.

The issue carries a label naming the request and step; before opening one, PAO lists the
repository's issues with that label, so a retried attempt never opens a second. It is
resolved when closed: the ``issues`` webhook (``app/handlers/requests.py``) or polling.
"""

from __future__ import annotations

from typing import Any

import aiohttp
from gidgethub import BadRequest, GitHubBroken, RateLimitExceeded
from gidgethub.abc import GitHubAPI

from app.requests.config import RequestSettings
from app.requests.steps.base import StepContext, StepFailed, Ticket
from app.sync.tasks import repository_installation


async def _api(github: Any, repository: str) -> GitHubAPI:
    if github.app_mode:
        installation = await repository_installation(github, repository)
        if installation is None:
            raise StepFailed("not_configured", f"the GitHub App is not installed on {repository}")
        return await github.api(installation)
    return await github.api(None)


def ticket_id(repository: str, number: int) -> str:
    return f"{repository}#{number}"


async def _guarded(call: Any) -> Any:
    """Run a GitHub call; 5xx, rate limits and network errors are retryable, other 4xx are not."""
    try:
        return await call
    except RateLimitExceeded:
        raise StepFailed("ticket_error", "GitHub rate limit reached", retryable=True) from None
    except BadRequest as exc:
        status = int(exc.status_code)
        raise StepFailed("ticket_error", f"GitHub refused the issue call ({status}): {exc}",
                         {"status": status}, retryable=status == 429) from None
    except (GitHubBroken, aiohttp.ClientError, TimeoutError) as exc:
        raise StepFailed("ticket_error", f"GitHub unreachable: {type(exc).__name__}",
                         retryable=True) from None


async def open_ticket(ctx: StepContext) -> Ticket:
    template = ctx.config.get("template") or {}
    repository = str(template["repository"])
    api = await _guarded(_api(ctx.github, repository))
    label = ctx.label

    async def existing() -> dict[str, Any] | None:
        async for issue in api.getiter(f"/repos/{repository}/issues?labels={label}&state=all"):
            return issue
        return None

    issue = await _guarded(existing())
    if issue is None:
        body = str(template.get("body") or template.get("description") or "")
        body += f"\n\nPAO request `{ctx.request_id}`, step `{ctx.step_id}`."
        issue = await _guarded(api.post(f"/repos/{repository}/issues", data={
            "title": str(template["summary"])[:256], "body": body,
            "labels": [label, *[str(x) for x in template.get("labels") or []]]}))
    return Ticket("github", ticket_id(repository, issue["number"]), issue["html_url"])


async def is_resolved(http: aiohttp.ClientSession, settings: RequestSettings, ticket: str,
                      github: Any = None) -> bool:
    repository, _, number = ticket.rpartition("#")
    api = await _guarded(_api(github, repository))
    issue = await _guarded(api.getitem(f"/repos/{repository}/issues/{number}"))
    return issue.get("state") == "closed"
