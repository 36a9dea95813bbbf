"""``/api/v1/sync``: where the catalog sync stands, its runs and their errors; admins force a sync."""

from __future__ import annotations

from typing import Any

import asyncpg
from aiohttp import web

from app.api.auth import require_admin
from app.api.params import path_id
from app.config import redact_url
from app.state import RUNTIME
from app.sync.source import catalog_source
from app.sync.tasks import queue_sync
from app.webhooks import error

routes = web.RouteTableDef()

RECENT_RUNS = 10
MAX_ERRORS = 200

RUN_COLUMNS = """id, repository, branch, from_sha, to_sha, mode, triggered_by, delivery_id, job_id,
    status, files_changed, items_added, items_updated, items_removed, bundles_added,
    bundles_updated, bundles_removed, started_at, completed_at, error"""


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


async def runs_with_errors(pool: asyncpg.Pool, rows: list[asyncpg.Record]) -> list[dict[str, Any]]:
    """Sync runs as the API shows them, each with (up to MAX_ERRORS of) its per-file errors."""
    ids = [r["id"] for r in rows]
    errors: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
    if ids:
        for e in await pool.fetch(
                """SELECT run_id, path, line, col, code, message FROM (
                       SELECT *, row_number() OVER (PARTITION BY run_id ORDER BY id) AS n
                         FROM catalog_sync_errors WHERE run_id = ANY($1::bigint[])) e
                    WHERE n <= $2 ORDER BY run_id, path, line""", ids, MAX_ERRORS):
            errors[e["run_id"]].append({k: e[k] for k in ("path", "line", "col", "code", "message")})
    out = []
    for r in rows:
        run = dict(r)
        run["started_at"], run["completed_at"] = _iso(r["started_at"]), _iso(r["completed_at"])
        run["errors"] = errors[r["id"]]
        out.append(run)
    return out


@routes.get("/api/v1/sync/status")
async def sync_status(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    source = catalog_source(rt.settings)
    if source is None:
        return web.json_response({
            "repository": None, "branch": rt.settings.repo_branch, "last_processed_sha": None,
            "processed_at": None, "current_run": None, "recent_runs": [], "files_with_errors": [],
        })
    state = await rt.pool.fetchrow(
        "SELECT last_processed_sha, processed_at FROM catalog_sync_state WHERE repository = $1"
        " AND branch = $2", source.key, source.branch)
    rows = await rt.pool.fetch(
        f"SELECT {RUN_COLUMNS} FROM catalog_sync_runs WHERE repository = $1 AND branch = $2"
        " ORDER BY id DESC LIMIT $3", source.key, source.branch, RECENT_RUNS)
    runs = await runs_with_errors(rt.pool, list(rows))
    broken = await rt.pool.fetch(
        "SELECT path, error FROM catalog_files WHERE repository = $1 AND error IS NOT NULL"
        " ORDER BY path LIMIT $2", source.key, MAX_ERRORS)
    return web.json_response({
        "repository": redact_url(source.url),
        "branch": source.branch,
        "last_processed_sha": state["last_processed_sha"] if state else None,
        "processed_at": _iso(state["processed_at"]) if state else None,
        "current_run": next((r for r in runs if r["status"] == "running"), None),
        "recent_runs": runs,
        "files_with_errors": [{"path": b["path"], "message": b["error"]} for b in broken],
    })


@routes.get("/api/v1/sync/runs/{run_id}")
async def sync_run(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    run_id = path_id(request, "run_id")
    row = await rt.pool.fetchrow(f"SELECT {RUN_COLUMNS} FROM catalog_sync_runs WHERE id = $1", run_id)
    if row is None:
        return error(404, "not found", f"no sync run {run_id}")
    [run] = await runs_with_errors(rt.pool, [row])
    return web.json_response(run)


@routes.post("/api/v1/sync")
async def force_sync(request: web.Request) -> web.Response:
    require_admin(request)
    rt = request.app[RUNTIME]
    source = catalog_source(rt.settings)
    if source is None:
        return error(409, "no catalog repository", "set PAO_REPO_URL to the catalog repository")
    job_id = await queue_sync(rt.pool, source, triggered_by="manual", full=True)
    return web.json_response({"status": "queued", "job_id": job_id,
                              "href": "/api/v1/sync/status"}, status=202)
