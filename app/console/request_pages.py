"""A signed-in person's requests: their team's list, each request's page, and its live events.

What a person may see is the API's rule (``store.may_see``): their own and their team's
requests; admins any. Anything else is a 404, so other teams' request ids cannot be probed.
The request page works without JavaScript (a refresh link); with it, the page follows the
request's Server-Sent Events (``events_stream``, the API's stream) and redraws itself.
"""

from __future__ import annotations

from typing import Any

import asyncpg
from aiohttp import web

from app.api.params import whole_number
from app.console.render import error_page, page
from app.console.session import Identity, current_user, signed_in
from app.requests import events_stream, store
from app.requests.store import TERMINAL
from app.state import RUNTIME

routes = web.RouteTableDef()

PAGE_SIZE = 50
# The event names the requests service writes (``event:`` lines of the stream), for the page's script.
EVENT_NAMES = ("submitted", "status", "step_status", "ticket_resolved")


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


@routes.get("/requests")
@signed_in
async def request_list(request: web.Request) -> web.Response:
    user = current_user(request)
    assert user is not None
    before_text = request.query.get("before", "")
    before = whole_number(before_text) if before_text else None
    if before_text and before is None:
        return error_page(request, 400, "before: expected a position this page linked to")
    rows = await store.list_requests(request.app[RUNTIME].pool, filters={},
                                     visible_to=(user.login, user.team),
                                     before=before, limit=PAGE_SIZE + 1)
    older = rows[PAGE_SIZE - 1]["id"] if len(rows) > PAGE_SIZE else None
    return page(request, "request_list.html", rows=rows[:PAGE_SIZE], older=older)


@routes.get("/requests/{request_id}")
@signed_in
async def request_detail(request: web.Request) -> web.Response:
    found = await _visible_request(request)
    if isinstance(found, web.Response):
        return found
    _, row = found
    pool = request.app[RUNTIME].pool
    steps = await store.get_steps(pool, row["id"])
    events = await store.get_events(pool, row["id"])
    return page(request, "request_detail.html", req=row, steps=steps, events=events,
                last_event=events[-1]["id"] if events else 0, is_link=is_link,
                finished=row["status"] in TERMINAL and row["status"] != "failed",
                event_names=EVENT_NAMES)


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
