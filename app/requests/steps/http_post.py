"""``HttpPost``: POST a rendered JSON body; outputs from a 2xx JSON answer, or poll a 202's Location.

Every attempt sends ``Idempotency-Key: <request>/<step>``, so an endpoint that honours it
does the work once however often PAO retries. Credentials come from PAO_HTTP_CREDENTIALS
by URL prefix, never from the catalog. 5xx, timeouts and connection errors are retried;
any other 4xx fails the step at once.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any
from urllib.parse import urljoin

import aiohttp

from app.requests.steps.base import StepContext, StepFailed, StepResult, declared_outputs

DONE = ("done", "completed", "succeeded", "success")
FAILED = ("failed", "error", "cancelled")
POLL_LIMIT = 24 * 3600.0  # an accepted job that never finishes fails after a day
SNIPPET = 300


def _headers(ctx: StepContext, url: str, extra: dict[str, Any] | None = None) -> dict[str, str]:
    headers = {str(k): str(v) for k, v in (extra or {}).items()}
    credential = ctx.settings.credential_for(url)
    if credential is not None:
        headers["Authorization"] = credential.value
    headers["Idempotency-Key"] = ctx.idempotency_key
    return headers


async def _call(ctx: StepContext, method: str, url: str, headers: dict[str, str], body: Any,
                timeout: float) -> tuple[int, dict[str, str], Any]:
    try:
        async with ctx.http.request(method, url, json=body if method == "POST" else None,
                                    headers=headers, allow_redirects=False,
                                    timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
            raw = await resp.read()
            try:
                parsed: Any = json.loads(raw) if raw else None
            except ValueError:
                parsed = raw[:SNIPPET].decode("utf-8", "replace")
            return resp.status, dict(resp.headers), parsed
    except TimeoutError:
        raise StepFailed("timeout", f"{method} {url} took longer than {timeout:g}s",
                         retryable=True) from None
    except aiohttp.ClientError as exc:
        raise StepFailed("connection_error", f"{method} {url} failed: {type(exc).__name__}",
                         retryable=True) from None


def _check_status(method: str, url: str, status: int, body: Any) -> None:
    if status >= 500 or status == 429:
        raise StepFailed("http_error", f"{method} {url} answered {status}",
                         {"status": status, "body": _snippet(body)}, retryable=True)
    if status >= 400:
        raise StepFailed("http_error", f"{method} {url} answered {status}",
                         {"status": status, "body": _snippet(body)})


def _snippet(body: Any) -> Any:
    text = body if isinstance(body, str) else json.dumps(body)
    return text[:SNIPPET]


async def run(ctx: StepContext) -> StepResult:
    cfg = ctx.config
    url = str(cfg["url"])
    timeout = float(cfg.get("timeout") or ctx.settings.http_timeout)
    poll_url = (ctx.tracking or {}).get("tracking_url")
    if poll_url is None:  # not accepted yet by an earlier attempt
        status, headers, body = await _call(ctx, "POST", url, _headers(ctx, url, cfg.get("headers")),
                                            cfg.get("body"), timeout)
        _check_status("POST", url, status, body)
        location = headers.get("Location")
        if status != 202 or not location:
            return StepResult(declared_outputs(ctx, body))
        poll_url = urljoin(url, location)
        external = body.get("id") if isinstance(body, dict) else None
        await ctx.save_tracking({"tracking_url": poll_url, "external_id": external})
    return StepResult(await _poll(ctx, poll_url, timeout))


async def _poll(ctx: StepContext, poll_url: str, timeout: float) -> dict[str, Any]:
    """GET the Location until its JSON ``status`` says done (outputs) or failed."""
    deadline = time.monotonic() + POLL_LIMIT
    while True:
        status, _, body = await _call(ctx, "GET", poll_url, _headers(ctx, poll_url), None, timeout)
        _check_status("GET", poll_url, status, body)
        state = str(body.get("status", "")).lower() if isinstance(body, dict) else ""
        if state in DONE:
            outputs = body.get("outputs") if isinstance(body.get("outputs"), dict) else body
            return declared_outputs(ctx, outputs)
        if state in FAILED:
            message = body.get("error") or body.get("message") or f"the job says {state}"
            raise StepFailed("remote_failed", f"{poll_url}: {str(message)[:SNIPPET]}", {"status": state})
        if time.monotonic() > deadline:
            raise StepFailed("timeout", f"{poll_url} did not finish within {POLL_LIMIT / 3600:g}h")
        await asyncio.sleep(ctx.settings.http_poll_interval)
