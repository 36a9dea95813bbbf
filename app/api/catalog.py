"""``/api/v1/catalog``: items and bundles as the sync stored them, with filters and cursor pages."""

from __future__ import annotations

from typing import Any

import asyncpg
from aiohttp import web

from app.api.params import (
    BadParameter,
    ListQuery,
    encode_cursor,
    like_pattern,
    parse_bool,
    parse_list_query,
    path_text,
)
from app.state import RUNTIME
from app.webhooks import error

routes = web.RouteTableDef()

KINDS = {
    "items": ("catalog_items", "item"),
    "bundles": ("catalog_bundles", "bundle"),
}
LIST_COLUMNS = "name, display_name, version, description, owner, tags, category, is_active, updated_at"


def _where(q: ListQuery) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    args: list[Any] = []

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    if not q.include_inactive:
        clauses.append("is_active")
    if q.tags:
        clauses.append(f"tags @> {arg(q.tags)}::jsonb")
    if q.owner:
        clauses.append(f"owner = {arg(q.owner)}")
    if q.category:
        clauses.append(f"category = {arg(q.category)}")
    if q.q:
        p = arg(like_pattern(q.q))
        clauses.append(f"(name ILIKE {p} OR description ILIKE {p} OR coalesce(display_name, '') ILIKE {p}"
                       f" OR EXISTS (SELECT 1 FROM jsonb_array_elements_text(tags) t WHERE t ILIKE {p}))")
    if q.after is not None:
        clauses.append(f"name > {arg(q.after)}")
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", args


def _summary(kind: str, r: Any) -> dict[str, Any]:
    return {
        "name": r["name"], "display_name": r["display_name"], "version": r["version"],
        "description": r["description"], "owner": r["owner"], "tags": r["tags"],
        "category": r["category"], "is_active": r["is_active"],
        "updated_at": r["updated_at"].isoformat(),
        "href": f"/api/v1/catalog/{kind}/{r['name']}",
    }


async def fetch_page(pool: asyncpg.Pool, kind: str, q: ListQuery) -> tuple[list[asyncpg.Record], str | None]:
    """One page of ``kind`` ("items" or "bundles") by name, and the cursor of the next page (or None)."""
    table, _ = KINDS[kind]
    where, args = _where(q)
    # One row more than the page tells whether another page exists.
    rows = await pool.fetch(
        f"SELECT {LIST_COLUMNS} FROM {table}{where} ORDER BY name LIMIT {q.limit + 1}", *args)
    has_more = len(rows) > q.limit
    rows = rows[:q.limit]
    return rows, encode_cursor(rows[-1]["name"], q.fingerprint()) if has_more else None


async def fetch_entry(pool: asyncpg.Pool, kind: str, name: str) -> asyncpg.Record | None:
    """The whole row of one item or bundle, active or not."""
    table, _ = KINDS[kind]
    return await pool.fetchrow(f"SELECT * FROM {table} WHERE name = $1", name)


async def _list(request: web.Request, kind: str) -> web.Response:
    q = parse_list_query(request.query)
    rows, next_cursor = await fetch_page(request.app[RUNTIME].pool, kind, q)
    has_more = next_cursor is not None
    return web.json_response({
        kind: [_summary(kind, r) for r in rows],
        "pagination": {"next_cursor": next_cursor, "has_more": has_more},
    })


def _detail(kind: str, r: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": r["name"], "display_name": r["display_name"], "version": r["version"],
        "description": r["description"], "owner": r["owner"], "tags": r["tags"],
    }
    if kind == "bundles":
        definition = r["bundle_definition"] or {}
        body["bundle"] = {"required_items": definition.get("required_items") or [],
                          "optional_items": definition.get("optional_items") or []}
    body.update({
        "presentation": r["presentation"],
        "fulfillment": r["fulfillment"],
        "category": r["category"],
        "is_active": r["is_active"],
        "source_file_path": r["source_file_path"],
        "source_file_hash": r["source_file_hash"],
        "last_seen_sha": r["last_seen_sha"],
        "created_at": r["created_at"].isoformat(),
        "updated_at": r["updated_at"].isoformat(),
        "href": f"/api/v1/catalog/{kind}/{r['name']}",
    })
    return body


async def _get(request: web.Request, kind: str) -> web.Response:
    _, label = KINDS[kind]
    name = path_text(request, "name")
    for key in request.query:
        if key != "include_inactive":
            raise BadParameter(key, "unknown parameter; known: include_inactive")
    inactive = request.query.get("include_inactive")
    include_inactive = parse_bool("include_inactive", inactive) if inactive is not None else False
    row = await fetch_entry(request.app[RUNTIME].pool, kind, name)
    if row is None or (not row["is_active"] and not include_inactive):
        detail = f"no {label} named {name!r}"
        if row is not None:
            detail += " is active (it was removed from the catalog; add include_inactive=true to see it)"
        return error(404, "not found", detail)
    return web.json_response(_detail(kind, row))


@routes.get("/api/v1/catalog/items")
async def list_items(request: web.Request) -> web.Response:
    return await _list(request, "items")


@routes.get("/api/v1/catalog/items/{name}")
async def get_item(request: web.Request) -> web.Response:
    return await _get(request, "items")


@routes.get("/api/v1/catalog/bundles")
async def list_bundles(request: web.Request) -> web.Response:
    return await _list(request, "bundles")


@routes.get("/api/v1/catalog/bundles/{name}")
async def get_bundle(request: web.Request) -> web.Response:
    return await _get(request, "bundles")
