"""REST: ``/api/v1/mirrors`` (list, add), ``/api/v1/mirrors/{owner}/{repo}`` (show, sync)."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from aiohttp import web

from app.api.auth import require_admin
from app.api.params import DEFAULT_LIMIT, MAX_ID, MAX_LIMIT, BadParameter, path_text, single, text
from app.mirror import manual, store
from app.mirror.config import OFF_REASON, mirror_settings
from app.state import RUNTIME
from app.webhooks import error

routes = web.RouteTableDef()

STATUSES = ("pending", "in_progress", "completed", "failed")
ALLOWED = {"status", "limit", "cursor"}



def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda v: json.dumps(v, default=str))


def _cursor(status: str | None, after_id: int) -> str:
    # Bound to the filter, so a cursor cannot be replayed against another query.
    return base64.urlsafe_b64encode(f"{status or ''}:{after_id}".encode()).decode().rstrip("=")


def _after_id(cursor: str, status: str | None) -> int:
    padded = cursor + "=" * (-len(cursor) % 4)
    try:
        text = base64.urlsafe_b64decode(padded.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadParameter("cursor", "not a cursor this API issued") from None
    filt, _, after = text.rpartition(":")
    # isascii: str.isdigit also accepts digits int() refuses, such as '²'.
    if not (after.isascii() and after.isdigit()) or len(after) > 19 or int(after) > MAX_ID:
        raise BadParameter("cursor", "not a cursor this API issued")
    if filt != (status or ""):
        raise BadParameter("cursor", "issued for another status filter")
    return int(after)


@routes.get("/api/v1/mirrors")
async def list_mirrors(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    for name in request.query:
        if name not in ALLOWED:
            raise BadParameter(name, f"unknown parameter; known: {', '.join(sorted(ALLOWED))}")
    status = single(request.query, "status")
    if status is not None and status not in STATUSES:
        raise BadParameter("status", f"must be one of {', '.join(STATUSES)}; got {status!r}")
    limit_text = single(request.query, "limit")
    limit = DEFAULT_LIMIT
    if limit_text is not None:
        if not (limit_text.isascii() and limit_text.isdigit()) \
                or len(limit_text) > 3 or not 1 <= int(limit_text) <= MAX_LIMIT:
            raise BadParameter("limit", f"must be a whole number 1..{MAX_LIMIT}, got {limit_text!r}")
        limit = int(limit_text)
    cursor = single(request.query, "cursor")
    after = _after_id(cursor, status) if cursor else 0
    rows = await store.page(rt.pool, status=status, after_id=after, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return _json({
        "mirrors": [store.public_view(r) for r in rows],
        "pagination": {"next_cursor": _cursor(status, rows[-1]["id"]) if more else None,
                       "has_more": more},
    })


@routes.post("/api/v1/mirrors")
async def add_mirror(request: web.Request) -> web.Response:
    require_admin(request)
    rt = request.app[RUNTIME]
    if not mirror_settings(rt.settings).enabled:
        return error(409, "mirroring is off", OFF_REASON)
    try:
        body = await request.json()
    except (ValueError, RecursionError):  # not UTF-8, not JSON, or nested past the parser
        raise BadParameter("body", "malformed JSON; send {\"repository\": \"OWNER/REPO\"}") from None
    full_name = body.get("repository") if isinstance(body, dict) else None
    if not isinstance(full_name, str):
        raise BadParameter("repository", "required in the body, as a string \"OWNER/REPO\"")
    full_name = text("repository", full_name)
    try:
        decision, row = await manual.add(rt.pool, rt.github, full_name)
    except manual.AddError as exc:
        if exc.status == 400:  # the name itself is wrong
            raise BadParameter("repository", str(exc)) from None
        return error(exc.status, "cannot mirror", str(exc))
    return _json({"mirror": store.public_view(row), "outcome": decision.outcome,
                  "message": decision.message, "job_id": decision.job_id},
                 status=202 if decision.outcome == "queued" else 200)


def _full_name(request: web.Request) -> str:
    return f"{path_text(request, 'owner')}/{path_text(request, 'repo')}"


@routes.get("/api/v1/mirrors/{owner}/{repo}")
async def show_mirror(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    row = await store.by_full_name(rt.pool, _full_name(request))
    if row is None:
        return error(404, "not found", f"{_full_name(request)} is not mirrored")
    logs = await store.recent_logs(rt.pool, row["id"])
    return _json({**store.public_view(row), "sync_logs": [store.log_view(r) for r in logs]})


@routes.post("/api/v1/mirrors/{owner}/{repo}/sync")
async def sync_mirror(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    if not mirror_settings(rt.settings).enabled:
        return error(409, "mirroring is off", OFF_REASON)
    queued = await manual.sync_now(rt.pool, _full_name(request))
    if queued is None:
        return error(404, "not found", f"{_full_name(request)} is not mirrored; "
                                       "POST /api/v1/mirrors to add it")
    job_id, row = queued
    return _json({"mirror": store.public_view(row), "job_id": job_id, "outcome": "queued",
                  "message": "sync queued"}, status=202)
