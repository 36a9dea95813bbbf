"""REST: ``/api/v1/requests``: submit, validate, list, show, steps, outputs, events.

The requester is the token's identity; an admin token may submit for someone else.
Users see their own and their team's requests; admins see all. Anything else is a 404,
so request ids of other teams cannot be probed.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from app.api.auth import CALLER, Caller
from app.api.params import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    BadParameter,
    decode_cursor,
    encode_cursor,
    single,
    text,
    whole_number,
)
from app.pgtext import json_problem
from app.requests import events_stream, executor, store, views
from app.requests.batch import SUBMISSIONS
from app.requests.config import request_settings
from app.requests.plan import Plan, manual_for
from app.requests.submit import plan_answer
from app.state import RUNTIME

routes = web.RouteTableDef()

STATUSES = ("submitted", "in_progress", "waiting_manual", "completed", "failed", "cancelled")
LIST_FILTERS = ("status", "item", "bundle", "requester", "team")
MAX_BODY = 256 * 1024
MAX_IDEMPOTENCY_KEY = 255


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda v: json.dumps(v, default=str))


async def _body(request: web.Request) -> dict[str, Any]:
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_BODY, actual_size=request.content_length)
    raw = await request.read()
    if len(raw) > MAX_BODY:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_BODY, actual_size=len(raw))
    try:
        # NaN, Infinity and 1e999 parse as floats here; json_problem below names where they are.
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise _fail(400, "invalid JSON", "the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise _fail(400, "invalid JSON", "the body must be a JSON object")
    unstorable = json_problem(body)
    if unstorable:
        raise _fail(400, "invalid JSON", f"{unstorable[0]}: {unstorable[1]}")
    return body


def _fail(status: int, message: str, detail: Any = None, **extra: Any) -> web.HTTPException:
    body: dict[str, Any] = {"error": message, **extra}
    if detail is not None:
        body["detail"] = detail
    cls = {400: web.HTTPBadRequest, 403: web.HTTPForbidden, 404: web.HTTPNotFound,
           409: web.HTTPConflict, 422: web.HTTPUnprocessableEntity,
           503: web.HTTPServiceUnavailable}[status]
    return cls(text=json.dumps(body), content_type="application/json")


def _requester(caller: Caller, body: dict[str, Any]) -> dict[str, Any]:
    """Who the request is for: the token's identity, or (admin tokens only) ``body.requester``."""
    given = body.get("requester")
    own = {"user_id": caller.user_id, "team": caller.team, "email": caller.email}
    if given is None:
        return own
    if not isinstance(given, dict) or not isinstance(given.get("user_id"), str) or not given["user_id"]:
        raise _fail(422, "validation failed", errors=[{
            "path": "requester.user_id", "code": "required", "message": "requester needs a user_id"}])
    if caller.is_admin:
        return {"user_id": given["user_id"], "team": given.get("team"), "email": given.get("email")}
    if given["user_id"] != caller.user_id or given.get("team", caller.team) != caller.team:
        raise _fail(403, "forbidden", "only an admin token may submit a request on someone else's "
                    "behalf; the requester is your token's identity")
    return own


async def _plan(request: web.Request, body: dict[str, Any]) -> Plan:
    plan = await plan_answer(request.app[RUNTIME].pool, body, request.app[SUBMISSIONS].entries)
    if isinstance(plan, tuple):
        status, answer = plan
        raise _fail(status, answer.pop("error"), answer.pop("detail", None), **answer)
    return plan


def _visible(caller: Caller, row: Any) -> bool:
    return store.may_see(row, user_id=caller.user_id, team=caller.team, is_admin=caller.is_admin)


async def visible_request(request: web.Request) -> Any:
    """The request in the path, if the caller may see it; else 404."""
    request_id = text("request_id", request.match_info["request_id"])
    row = await store.get_request(request.app[RUNTIME].pool, request_id)
    if row is None or not _visible(request[CALLER], row):
        raise _fail(404, "not found", f"no request {request_id!r}")
    return row


@routes.post("/api/v1/requests")
async def submit_request(request: web.Request) -> web.Response:
    caller: Caller = request[CALLER]
    key = request.headers.get("Idempotency-Key")
    if key is not None and not (0 < len(key) <= MAX_IDEMPOTENCY_KEY and key.isprintable()):
        raise _fail(400, "invalid header", f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} "
                    "printable characters")
    body = await _body(request)
    requester = _requester(caller, body)
    secret_key = request_settings(request.app[RUNTIME].settings).secret_key
    status, answer = await request.app[SUBMISSIONS].submit(
        body, requester=requester, submitted_by=caller.user_id, secret_key=secret_key,
        idempotency_key=key)
    return _json(answer, status)


@routes.post("/api/v1/requests/validate")
async def validate_request(request: web.Request) -> web.Response:
    body = await _body(request)
    _requester(request[CALLER], body)
    plan = await _plan(request, body)
    target = {"catalog_bundle": plan.name} if plan.kind == "bundle" else {"catalog_item": plan.name}
    return _json({"valid": True, **target, "version": plan.version,
                  "parameters": {"bundle_parameters": plan.bundle_values,
                                 "item_parameters": plan.item_values},
                  "steps": [s.as_dict() for s in plan.steps]})


def _fingerprint(filters: dict[str, str | None]) -> str:
    return json.dumps([filters.get(k) for k in LIST_FILTERS])


@routes.get("/api/v1/requests")
async def list_requests(request: web.Request) -> web.Response:
    caller: Caller = request[CALLER]
    allowed = {*LIST_FILTERS, "limit", "cursor"}
    for name in request.query:
        if name not in allowed:
            raise BadParameter(name, f"unknown parameter; known: {', '.join(sorted(allowed))}")
    filters = {k: single(request.query, k) for k in LIST_FILTERS}
    if filters["status"] is not None and filters["status"] not in STATUSES:
        raise BadParameter("status", f"must be one of {', '.join(STATUSES)}; got {filters['status']!r}")
    limit = DEFAULT_LIMIT
    if (limit_text := single(request.query, "limit")) is not None:
        number = whole_number(limit_text)
        if number is None or number > MAX_LIMIT:
            raise BadParameter("limit", f"must be a whole number from 1 to {MAX_LIMIT}")
        limit = number
    before = None
    if cursor := single(request.query, "cursor"):
        before = whole_number(decode_cursor(cursor, _fingerprint(filters)))
        if before is None:
            raise BadParameter("cursor", "not a cursor this API returned")
    rows = await store.list_requests(
        request.app[RUNTIME].pool, filters=filters, before=before, limit=limit + 1,
        visible_to=None if caller.is_admin else (caller.user_id, caller.team))
    has_more = len(rows) > limit
    rows = rows[:limit]
    return _json({"requests": [views.summary(r) for r in rows], "pagination": {
        "next_cursor": encode_cursor(str(rows[-1]["id"]), _fingerprint(filters)) if has_more else None,
        "has_more": has_more}})


@routes.get("/api/v1/requests/{request_id}")
async def get_request(request: web.Request) -> web.Response:
    row = await visible_request(request)
    steps = await store.get_steps(request.app[RUNTIME].pool, row["id"])
    return _json(views.detail(row, steps))


@routes.get("/api/v1/requests/{request_id}/steps/{step_id}")
async def get_step(request: web.Request) -> web.Response:
    row = await visible_request(request)
    pool = request.app[RUNTIME].pool
    step_id = text("step_id", request.match_info["step_id"])
    step = await store.get_step(pool, row["id"], step_id)
    if step is None:
        raise _fail(404, "not found", f"request {row['request_id']} has no step {step_id!r}")
    has_manual = manual_for(row["snapshot"], step["owner_name"]) is not None
    return _json(views.step_detail(row, step, await store.get_attempts(pool, step["id"]),
                                   await store.get_tickets(pool, step["id"]), has_manual=has_manual))


@routes.get("/api/v1/requests/{request_id}/outputs")
async def get_outputs(request: web.Request) -> web.Response:
    row = await visible_request(request)
    return _json({"request_id": row["request_id"], "status": row["status"],
                  "outputs": row["outputs"] or {}})


def _may_control(caller: Caller, row: Any) -> bool:
    """The requester, the submitter and admins may cancel or retry; teammates only read."""
    return store.may_control(row, user_id=caller.user_id, is_admin=caller.is_admin)


async def _step_action(request: web.Request, action: str) -> web.Response:
    caller: Caller = request[CALLER]
    row = await visible_request(request)
    step_id = text("step_id", request.match_info["step_id"])
    pool = request.app[RUNTIME].pool
    try:
        if action == "complete":
            if not caller.is_admin:
                raise _fail(403, "forbidden", "completing a step by hand needs an admin (operator) token")
            body = await _body(request) if request.can_read_body else {}
            outputs = body.get("outputs", {})
            if not isinstance(outputs, dict):
                raise _fail(422, "validation failed", errors=[{
                    "path": "outputs", "code": "type", "message": "expected an object of outputs"}])
            await executor.complete_step(pool, row["id"], step_id, outputs, caller.user_id,
                                         settings=request.app[RUNTIME].settings)
        else:
            if not _may_control(caller, row):
                raise _fail(403, "forbidden", "only the requester or an admin may retry a step")
            await executor.retry_step(pool, row["id"], step_id, caller.user_id,
                                      settings=request.app[RUNTIME].settings)
    except LookupError:
        raise _fail(404, "not found", f"request {row['request_id']} has no step {step_id!r}") from None
    except executor.TransitionError as exc:
        raise _fail(409, "conflict", str(exc)) from None
    except ValueError as exc:
        raise _fail(422, "validation failed", errors=[{
            "path": "outputs", "code": "missing_output", "message": str(exc)}]) from None
    return await get_step(request)


@routes.post("/api/v1/requests/{request_id}/steps/{step_id}/complete")
async def complete_step(request: web.Request) -> web.Response:
    return await _step_action(request, "complete")


@routes.post("/api/v1/requests/{request_id}/steps/{step_id}/retry")
async def retry_step(request: web.Request) -> web.Response:
    return await _step_action(request, "retry")


@routes.post("/api/v1/requests/{request_id}/cancel")
async def cancel_request(request: web.Request) -> web.Response:
    caller: Caller = request[CALLER]
    row = await visible_request(request)
    if not _may_control(caller, row):
        raise _fail(403, "forbidden", "only the requester or an admin may cancel a request")
    try:
        await executor.cancel_request(request.app[RUNTIME].pool, row["id"], caller.user_id,
                                      settings=request.app[RUNTIME].settings)
    except executor.TransitionError as exc:
        raise _fail(409, "conflict", str(exc)) from None
    return await get_request(request)


@routes.get("/api/v1/requests/{request_id}/events")
async def get_events(request: web.Request) -> web.StreamResponse:
    """The audit trail; with ``Accept: text/event-stream``, a live Server-Sent Events stream."""
    row = await visible_request(request)
    pool = request.app[RUNTIME].pool
    after_text = request.headers.get("Last-Event-ID") or single(request.query, "after") or "0"
    after = whole_number(after_text, minimum=0)
    if after is None:  # '²' passes isdigit, and a bigint overflow would be a 500
        raise BadParameter("after", "expected an event id")
    if "text/event-stream" not in request.headers.get("Accept", ""):
        return _json({"request_id": row["request_id"],
                      "events": [views.event(e) for e in await store.get_events(pool, row["id"],
                                                                                after=after)]})
    return await events_stream.stream(request, row, after)
