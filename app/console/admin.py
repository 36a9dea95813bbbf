"""Admin pages: webhook deliveries (redeliver), jobs (retry failed ones), sync runs, mirrors.

Every page and action is for admins only (``admin_only``); every action is a POST
carrying the session's CSRF token.
"""

from __future__ import annotations

import logging

import asyncpg
from aiohttp import web

from app.api.params import whole_number
from app.api.sync import runs_with_errors
from app.console.render import error_page, page
from app.console.session import admin_only, csrf_checked_form, csrf_refused, current_user
from app.jobs import queries as job_queries
from app.mirror import store as mirror_store
from app.state import RUNTIME
from app.webhooks import INTAKE_WRITER, parse_json, routed_delivery

log = logging.getLogger(__name__)
routes = web.RouteTableDef()

PAGE_ROWS = 100
DELIVERY_STATUSES = ("received", "queued", "ignored", "rejected", "processed", "failed")
JOB_STATUSES = ("todo", "doing", "succeeded", "failed", "cancelled")
MIRROR_LOGS = 5


def _status_filter(request: web.Request, allowed: tuple[str, ...], default: str | None) -> str | None:
    value = request.query.get("status", default or "")
    return value if value in allowed else None


def _row_id(request: web.Request) -> int | None:
    text = request.match_info["id"]
    return whole_number(text)


@routes.get("/admin/deliveries")
@admin_only
async def deliveries(request: web.Request) -> web.Response:
    status = _status_filter(request, DELIVERY_STATUSES, None)
    rows = await request.app[RUNTIME].pool.fetch(
        """SELECT id, delivery_id, attempt, event, action, repository, status, reason, error,
                  received_at, payload IS NOT NULL AS has_payload
             FROM webhook_events WHERE ($1::text IS NULL OR status = $1)
            ORDER BY id DESC LIMIT $2""", status, PAGE_ROWS)
    notice = None
    if request.query.get("redelivered", "").isdigit():
        # Only an id comes back in the URL: the words are ours, not the link's.
        notice = "Redelivered: the new attempt is at the top of the list."
    return page(request, "admin_deliveries.html", rows=rows, status_filter=status, statuses=DELIVERY_STATUSES,
                notice=notice)


@routes.post("/admin/deliveries/{id}/redeliver")
@admin_only
async def redeliver(request: web.Request) -> web.StreamResponse:
    """Run the stored delivery through intake again: a new attempt of the same delivery id."""
    if await csrf_checked_form(request) is None:
        return csrf_refused(request)
    row_id = _row_id(request)
    rt = request.app[RUNTIME]
    row = await rt.pool.fetchrow("SELECT delivery_id, event, payload FROM webhook_events WHERE id = $1",
                                 row_id) if row_id is not None else None
    if row is None:
        return error_page(request, 404, "no such delivery")
    if row["payload"] is None:
        return error_page(request, 409, "PAO did not keep this delivery's payload (it was rejected); "
                                        "redeliver it from the App's settings on GitHub (Advanced).")
    # Stored as GitHub sent it, and only once read as a JSON object: it parses again.
    delivery = routed_delivery(row["delivery_id"], row["event"], parse_json(row["payload"].encode()),
                               request.app[INTAKE_WRITER].router)
    done = await request.app[INTAKE_WRITER].submit(delivery)
    user = current_user(request)
    log.info("delivery %s redelivered by %s: %s", row["delivery_id"], user.login if user else "?",
             done.status)
    raise web.HTTPSeeOther(f"/admin/deliveries?redelivered={row_id}")


@routes.get("/admin/jobs")
@admin_only
async def jobs(request: web.Request) -> web.Response:
    status = _status_filter(request, JOB_STATUSES, "failed")
    rows = await request.app[RUNTIME].pool.fetch(job_queries.LIST, status, None, PAGE_ROWS)
    retried = request.query.get("retried", "")
    notice = f"Job {retried} is queued again." if retried.isdigit() else None
    return page(request, "admin_jobs.html", rows=rows, status_filter=status, statuses=JOB_STATUSES,
                notice=notice)


@routes.post("/admin/jobs/{id}/retry")
@admin_only
async def retry_job(request: web.Request) -> web.StreamResponse:
    if await csrf_checked_form(request) is None:
        return csrf_refused(request)
    job_id = _row_id(request)
    if job_id is None:
        return error_page(request, 404, "no such job")
    try:
        done = await request.app[RUNTIME].pool.fetchval(job_queries.RETRY_FAILED, job_id)
    except asyncpg.UniqueViolationError:
        return error_page(request, 409, f"Job {job_id} was not queued: the same work is already waiting.")
    if done is None:
        return error_page(request, 409, f"Job {job_id} is not failed or cancelled (or does not exist).")
    raise web.HTTPSeeOther(f"/admin/jobs?retried={job_id}")


@routes.get("/admin/sync")
@admin_only
async def sync_runs(request: web.Request) -> web.Response:
    pool = request.app[RUNTIME].pool
    rows = await pool.fetch("SELECT * FROM catalog_sync_runs ORDER BY id DESC LIMIT 30")
    return page(request, "admin_sync.html", runs=await runs_with_errors(pool, list(rows)))


@routes.get("/admin/mirrors")
@admin_only
async def mirrors(request: web.Request) -> web.Response:
    pool = request.app[RUNTIME].pool
    rows = await mirror_store.page(pool, status=None, after_id=0, limit=PAGE_ROWS)
    logs = await mirror_store.recent_logs_of(pool, [row["id"] for row in rows], MIRROR_LOGS)
    entries = [{"repo": row, "logs": logs[row["id"]]} for row in rows]
    return page(request, "admin_mirrors.html", entries=entries)
