"""REST: ``/api/v1/mirrors`` (list, add), ``/api/v1/mirrors/{owner}/{repo}`` (show, sync)."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from aiohttp import web

from app.api.auth import require_admin
from app.mirror import manual, store
from app.mirror.config import OFF_REASON, mirror_settings
from app.state import RUNTIME
from app.webhooks import error

routes = web.RouteTableDef()

STATUSES = ("pending", "in_progress", "completed", "failed")
MAX_LIMIT = 200


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda v: json.dumps(v, default=str))


def _cursor(after_id: int) -> str:
    return base64.urlsafe_b64encode(f"id:{after_id}".encode()).decode().rstrip("=")


def _after_id(cursor: str) -> int:
    padded = cursor + "=" * (-len(cursor) % 4)
    try:
        text = base64.urlsafe_b64decode(padded.encode()).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise ValueError("cursor is not one this API issued") from None
    if not text.startswith("id:") or not text[3:].isdigit():
        raise ValueError("cursor is not one this API issued")
    return int(text[3:])


@routes.get("/api/v1/mirrors")
async def list_mirrors(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    status = request.query.get("status")
    if status is not None and status not in STATUSES:
        return error(400, "invalid parameter", f"status must be one of {', '.join(STATUSES)}")
    try:
        limit = int(request.query.get("limit", "50"))
        if not 1 <= limit <= MAX_LIMIT:
            raise ValueError
    except ValueError:
        return error(400, "invalid parameter", f"limit must be a whole number 1..{MAX_LIMIT}")
    try:
        after = _after_id(request.query["cursor"]) if "cursor" in request.query else 0
    except ValueError as exc:
        return error(400, "invalid parameter", str(exc))
    rows = await store.page(rt.pool, status=status, after_id=after, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return _json({
        "items": [store.public_view(r) for r in rows],
        "next_cursor": _cursor(rows[-1]["id"]) if more else None,
    })


@routes.post("/api/v1/mirrors")
async def add_mirror(request: web.Request) -> web.Response:
    require_admin(request)
    rt = request.app[RUNTIME]
    if not mirror_settings(rt.settings).enabled:
        return error(409, "mirroring is off", OFF_REASON)
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return error(400, "malformed JSON", "send {\"repository\": \"OWNER/REPO\"}")
    full_name = body.get("repository") if isinstance(body, dict) else None
    if not isinstance(full_name, str):
        return error(400, "invalid body", "field 'repository' (\"OWNER/REPO\") is required")
    try:
        decision, row = await manual.add(rt.pool, rt.github, full_name)
    except manual.AddError as exc:
        return error(exc.status, "cannot mirror", str(exc))
    return _json({"mirror": store.public_view(row), "outcome": decision.outcome,
                  "message": decision.message, "job_id": decision.job_id},
                 status=202 if decision.outcome == "queued" else 200)


def _full_name(request: web.Request) -> str:
    return f"{request.match_info['owner']}/{request.match_info['repo']}"


@routes.get("/api/v1/mirrors/{owner}/{repo}")
async def show_mirror(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    row = await store.by_full_name(rt.pool, _full_name(request))
    if row is None:
        return error(404, "not found", f"{_full_name(request)} is not mirrored")
    logs = await store.recent_logs(rt.pool, row["id"])
    return _json({**store.public_view(row), "deleted_at": row["deleted_at"],
                  "sync_logs": [dict(r) for r in logs]})


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
    return _json({"mirror": store.public_view(row), "job_id": job_id}, status=202)
