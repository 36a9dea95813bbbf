"""The start page, and the catalog: items and bundles searched by name, text and tag; one entry's fields."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from multidict import MultiDict

from app.api.catalog import KINDS, fetch_entry, fetch_page
from app.api.params import BadParameter, parse_list_query
from app.console.forms import describe_constraints, ordered
from app.console.render import error_page, page
from app.console.session import signed_in
from app.state import RUNTIME

routes = web.RouteTableDef()

# The list endpoint's parameters the catalog page passes through.
SEARCH_PARAMETERS = ("q", "tags", "cursor")


def _kind(value: str | None) -> str | None:
    return value if value in KINDS else None


def field_rows(specs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The fields of a form as the detail page lists them."""
    return [{"name": f.get("name"), "type": f.get("type"), "required": bool(f.get("required")),
             "constraints": describe_constraints(f), "help_text": f.get("help_text") or ""}
            for f in ordered(specs)]


def bundle_members(definition: dict[str, Any]) -> list[dict[str, Any]]:
    members = [{"catalog_item": m.get("catalog_item"), "version": m.get("version"), "included": "always"}
               for m in definition.get("required_items") or []]
    members += [{"catalog_item": m.get("catalog_item"), "version": m.get("version"),
                 "included": "optional, on by default" if m.get("default_enabled") else "optional"}
                for m in definition.get("optional_items") or []]
    return members


@routes.get("/")
async def home(request: web.Request) -> web.Response:
    """The catalog; or, while PAO has no GitHub App, its set-up."""
    rt = request.app[RUNTIME]
    raise web.HTTPFound("/catalog" if rt.settings.app_mode or rt.settings.repo_token else "/setup")


@routes.get("/catalog")
@signed_in
async def catalog_list(request: web.Request) -> web.Response:
    kind = _kind(request.query.get("kind", "items"))
    if kind is None:
        return error_page(request, 400, "kind must be items or bundles")
    query = MultiDict((k, v) for k, v in request.query.items() if k in SEARCH_PARAMETERS and v.strip())
    context: dict[str, Any] = {"kind": kind, "q": request.query.get("q", ""),
                               "tags": request.query.get("tags", ""), "entries": [],
                               "next_cursor": None, "next_href": "", "problem": None}
    try:
        rows, next_cursor = await fetch_page(request.app[RUNTIME].pool, kind, parse_list_query(query))
    except BadParameter as exc:
        context["problem"] = exc.text and _detail(exc.text)
        return page(request, "catalog_list.html", status=400, **context)
    context["entries"] = rows
    if next_cursor:
        kept = [(k, v) for k, v in query.items() if k != "cursor"]
        context["next_cursor"] = next_cursor
        context["next_href"] = "/catalog?" + urlencode([("kind", kind), *kept, ("cursor", next_cursor)])
    return page(request, "catalog_list.html", **context)


def _detail(body: str) -> str:
    return str(json.loads(body).get("detail", "invalid search"))


@routes.get("/catalog/{kind}/{name}")
@signed_in
async def catalog_entry(request: web.Request) -> web.Response:
    kind = _kind(request.match_info["kind"])
    name = request.match_info["name"]
    if kind is None or "\x00" in name:
        return error_page(request, 404, "no such catalog page")
    label = KINDS[kind][1]
    row = await fetch_entry(request.app[RUNTIME].pool, kind, name)
    if row is None:
        return error_page(request, 404, f"no {label} named {name!r}")
    presentation = row["presentation"] or {}
    specs = presentation.get("bundle_fields" if kind == "bundles" else "fields") or []
    members = bundle_members(row["bundle_definition"] or {}) if kind == "bundles" else []
    return page(request, "catalog_detail.html", kind=kind, label=label, entry=row,
                fields=field_rows(specs), members=members)
