"""A signed-in person's requests: their team's list, each request's page, and its live events.

What a person may see is the API's rule (``store.may_see``): their own and their team's
requests; admins any. Anything else is a 404, so other teams' request ids cannot be probed.
The list filters by status, item and bundle (query parameters, kept in its links). The
request page works without JavaScript (a refresh link); with it, the page follows the
request's Server-Sent Events (``events_stream``, the API's stream) and redraws itself.
Cancel and Retry are the API's actions under the API's rule (``store.may_control``): a
POST with the session's CSRF token, answered by a redirect to the page with a notice. The
notice's words are the page's own, chosen by a code in the URL and the request's state now,
so a link can never make the page say something else.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

import asyncpg
from aiohttp import web

from app.api.params import whole_number
from app.console.render import error_page, page
from app.console.session import Identity, csrf_checked_form, csrf_refused, current_user, signed_in
from app.requests import events_stream, executor, store
from app.requests.store import TERMINAL
from app.state import RUNTIME

routes = web.RouteTableDef()

PAGE_SIZE = 50
# The event names the requests service writes (``event:`` lines of the stream), for the page's script.
EVENT_NAMES = ("submitted", "status", "step_status", "ticket_resolved")
STATUSES = ("submitted", "in_progress", "waiting_manual", "completed", "failed", "cancelled")
# What the page says after an action (?done=) or a refusal (?refused=): the words are ours.
DONE = {"cancelled": "Request cancelled: its unfinished steps will not run.",
        "retried": "Step {step} is queued to run again."}
MAX_NAME = 200


def is_link(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(("https://", "http://"))


async def _visible_request(request: web.Request) -> tuple[Identity, asyncpg.Record] | web.Response:
    user = current_user(request)
    assert user is not None
    request_id = request.match_info["request_id"]
    row = None
    if request_id.isprintable() and len(request_id) <= 100:
        row = await store.get_request(request.app[RUNTIME].pool, request_id)
    if row is None or not store.may_see(row, user_id=user.login, team=user.team, is_admin=user.is_admin):
        return error_page(request, 404, f"No request {request_id!r} that you may see.")
    return user, row


def list_filters(query: Any) -> dict[str, str | None] | str:
    """The list's filters (``status``, ``item``, ``bundle``) from the query; a message when one is wrong."""
    found: dict[str, str | None] = {}
    for name in ("status", "item", "bundle"):
        value = query.get(name, "").strip() or None
        if value is not None and name == "status" and value not in STATUSES:
            return f"status: expected one of {', '.join(STATUSES)}"
        if value is not None and (len(value) > MAX_NAME or not value.isprintable()):
            return f"{name}: expected a catalog {name} name"
        found[name] = value
    return found


def list_link(filters: dict[str, str | None], **more: Any) -> str:
    """``/requests`` with the filters in force (and ``more``), for links that keep them."""
    query = {k: v for k, v in {**filters, **more}.items() if v is not None}
    return "/requests" + ("?" + urlencode(query) if query else "")


@routes.get("/requests")
@signed_in
async def request_list(request: web.Request) -> web.Response:
    user = current_user(request)
    assert user is not None
    filters = list_filters(request.query)
    if isinstance(filters, str):
        return error_page(request, 400, filters)
    before_text = request.query.get("before", "")
    before = whole_number(before_text) if before_text else None
    if before_text and before is None:
        return error_page(request, 400, "before: expected a position this page linked to")
    pool = request.app[RUNTIME].pool
    visible = (user.login, user.team)
    rows = await store.list_requests(pool, filters=filters, visible_to=visible,
                                     before=before, limit=PAGE_SIZE + 1)
    older = list_link(filters, before=rows[PAGE_SIZE - 1]["id"]) if len(rows) > PAGE_SIZE else None
    items, bundles = await store.requested_entries(pool, visible_to=visible)
    return page(request, "request_list.html", rows=rows[:PAGE_SIZE], older=older, filters=filters,
                statuses=STATUSES, items=items, bundles=bundles, filtered=any(filters.values()),
                all_link=list_link({}))


@routes.get("/requests/{request_id}")
@signed_in
async def request_detail(request: web.Request) -> web.Response:
    found = await _visible_request(request)
    if isinstance(found, web.Response):
        return found
    user, row = found
    pool = request.app[RUNTIME].pool
    steps = await store.get_steps(pool, row["id"])
    events = await store.get_events(pool, row["id"])
    controls = store.may_control(row, user_id=user.login, is_admin=user.is_admin)
    open_request = row["status"] not in ("completed", "cancelled")
    return page(request, "request_detail.html", req=row, steps=steps, events=events,
                last_event=events[-1]["id"] if events else 0, is_link=is_link,
                finished=row["status"] in TERMINAL and row["status"] != "failed",
                event_names=EVENT_NAMES, notice=_notice(request.query, row, steps),
                may_cancel=controls and open_request, may_retry=controls and open_request)


def _notice(query: Any, row: asyncpg.Record, steps: list[asyncpg.Record]) -> tuple[str, str] | None:
    """(kind, words) to show after an action, from ``?done=`` / ``?refused=`` and the state now."""
    step_id = query.get("step", "")
    step = next((s for s in steps if s["step_id"] == step_id), None)
    done, refused = query.get("done"), query.get("refused")
    if done == "cancelled":
        return "ok", DONE["cancelled"]
    if done == "retried" and step is not None:
        return "ok", DONE["retried"].format(step=step["step_id"])
    if refused == "cancel":
        return "error", (f"The request was not cancelled: it is already {row['status']}. "
                         "Only a request that has not ended can be cancelled.")
    if refused == "retry" and step is not None:
        return "error", (f"Step {step['step_id']} was not retried: it is {step['status'].replace('_', ' ')} "
                         f"and the request is {row['status'].replace('_', ' ')}. Only a failed step of a "
                         "request that has not ended can be retried.")
    return None


async def _control(request: web.Request, action: str) -> web.StreamResponse:
    """Cancel the request or retry a step as the API does, then back to the page with a notice."""
    found = await _visible_request(request)
    if isinstance(found, web.Response):
        return found
    if await csrf_checked_form(request) is None:
        return csrf_refused(request)
    user, row = found
    if not store.may_control(row, user_id=user.login, is_admin=user.is_admin):
        return error_page(request, 403, "Only the requester or a PAO admin may cancel this request or "
                                        "retry its steps; your team may read it.")
    rt = request.app[RUNTIME]
    back = f"/requests/{quote(row['request_id'], safe='')}"
    step_id = request.match_info.get("step_id", "")
    try:
        if action == "cancel":
            await executor.cancel_request(rt.pool, row["id"], user.login, settings=rt.settings)
            raise web.HTTPSeeOther(back + "?done=cancelled")
        await executor.retry_step(rt.pool, row["id"], step_id, user.login, settings=rt.settings)
        raise web.HTTPSeeOther(back + "?" + urlencode({"done": "retried", "step": step_id}))
    except LookupError:
        return error_page(request, 404, f"Request {row['request_id']} has no step {step_id!r}.")
    except executor.TransitionError:
        more = {"step": step_id} if action == "retry" else {}
        raise web.HTTPSeeOther(back + "?" + urlencode({"refused": action, **more})) from None


@routes.post("/requests/{request_id}/cancel")
@signed_in
async def cancel_request(request: web.Request) -> web.StreamResponse:
    return await _control(request, "cancel")


@routes.post("/requests/{request_id}/steps/{step_id}/retry")
@signed_in
async def retry_step(request: web.Request) -> web.StreamResponse:
    return await _control(request, "retry")


@routes.get("/requests/{request_id}/events")
@signed_in
async def request_events(request: web.Request) -> web.StreamResponse:
    """The request's live events for the page's script, with the session instead of a token."""
    found = await _visible_request(request)
    if isinstance(found, web.Response):
        return found
    _, row = found
    after = whole_number(request.headers.get("Last-Event-ID") or request.query.get("after") or "0",
                         minimum=0)
    if after is None:
        return error_page(request, 400, "after: expected an event id")
    return await events_stream.stream(request, row, after)
