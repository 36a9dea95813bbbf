"""The OpenAPI 3.1 document of the REST API, served at ``/api/v1/openapi.json`` without a token.

Kept beside the handlers it describes; a test checks real responses against it.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from app import __version__

routes = web.RouteTableDef()


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema_type: str, **extra: Any) -> dict[str, Any]:
    return {"type": [schema_type, "null"], **extra}


STR = {"type": "string"}
TIME = {"type": "string", "format": "date-time"}
INT = {"type": "integer"}
ANY_OBJECT_OR_NULL = {"type": ["object", "null"]}
TAGS = {"type": "array", "items": STR}

SUMMARY_PROPS = {
    "name": STR, "display_name": _nullable("string"), "version": STR, "description": STR,
    "owner": STR, "tags": TAGS, "category": _nullable("string"), "is_active": {"type": "boolean"},
    "updated_at": TIME, "href": STR,
}
DETAIL_PROPS = {
    **SUMMARY_PROPS,
    "presentation": ANY_OBJECT_OR_NULL, "fulfillment": ANY_OBJECT_OR_NULL,
    "source_file_path": STR, "source_file_hash": STR, "last_seen_sha": STR, "created_at": TIME,
}
BUNDLE_REF = {
    "type": "object", "required": ["catalog_item"],
    "properties": {"catalog_item": STR, "version": STR, "parameters": {"type": "object"},
                   "default_enabled": {"type": "boolean"}},
}
RUN_PROPS = {
    "id": INT, "repository": STR, "branch": STR, "from_sha": _nullable("string"),
    "to_sha": _nullable("string"),
    "mode": {"enum": ["full", "incremental", "reconcile", "noop", None]},
    "triggered_by": {"enum": ["webhook", "manual", "startup"]},
    "delivery_id": _nullable("string"), "job_id": _nullable("integer"),
    "status": {"enum": ["running", "completed", "completed_with_errors", "failed"]},
    "files_changed": INT, "items_added": INT, "items_updated": INT, "items_removed": INT,
    "bundles_added": INT, "bundles_updated": INT, "bundles_removed": INT,
    "started_at": TIME, "completed_at": _nullable("string", format="date-time"),
    "error": _nullable("string"),
    "errors": {"type": "array", "items": _ref("SyncError")},
}


def _obj(props: dict[str, Any], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"type": "object", "required": sorted(props), "properties": {**props, **(extra or {})},
            "additionalProperties": False}


SCHEMAS: dict[str, Any] = {
    "Error": {"type": "object", "required": ["error"],
              "properties": {"error": STR, "detail": {}, "parameter": STR}},
    "Pagination": _obj({"next_cursor": _nullable("string"), "has_more": {"type": "boolean"}}),
    "ItemSummary": _obj(SUMMARY_PROPS),
    "BundleSummary": _obj(SUMMARY_PROPS),
    "Item": _obj(DETAIL_PROPS),
    "Bundle": _obj({**DETAIL_PROPS, "bundle": _obj({
        "required_items": {"type": "array", "items": BUNDLE_REF},
        "optional_items": {"type": "array", "items": BUNDLE_REF}})}),
    "ItemList": _obj({"items": {"type": "array", "items": _ref("ItemSummary")},
                      "pagination": _ref("Pagination")}),
    "BundleList": _obj({"bundles": {"type": "array", "items": _ref("BundleSummary")},
                        "pagination": _ref("Pagination")}),
    "SyncError": _obj({"path": STR, "line": INT, "col": INT, "code": STR, "message": STR}),
    "SyncRun": _obj(RUN_PROPS),
    "SyncStatus": _obj({
        "repository": _nullable("string"), "branch": STR, "last_processed_sha": _nullable("string"),
        "processed_at": _nullable("string", format="date-time"),
        "current_run": {"oneOf": [{"type": "null"}, _ref("SyncRun")]},
        "recent_runs": {"type": "array", "items": _ref("SyncRun")},
        "files_with_errors": {"type": "array", "items": _obj({"path": STR, "message": STR})},
    }),
    "SyncQueued": _obj({"status": {"const": "queued"}, "job_id": INT, "href": STR}),
}


def _json(schema: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(schema)}}}


ERRORS = {
    "400": _json("Error", "A parameter is invalid; `parameter` names it"),
    "401": _json("Error", "Missing or invalid bearer token"),
}


def _query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


LIST_PARAMS = [
    _query("tags", "Comma-separated; every tag must match", STR),
    _query("owner", "Owning team, exact match", STR),
    _query("category", "Directory under catalog/, exact match", STR),
    _query("q", "Search in name, display name, description and tags (case-insensitive)", STR),
    _query("include_inactive", "Include removed entries", {"type": "boolean", "default": False}),
    _query("limit", "Page size", {"type": "integer", "minimum": 1, "maximum": 200, "default": 50}),
    _query("cursor", "Opaque `next_cursor` of the previous page (same filters)", STR),
]
NAME_PARAM = {"name": "name", "in": "path", "required": True, "schema": STR}
INACTIVE_PARAM = _query("include_inactive", "Return the entry even if removed", {"type": "boolean"})


def _list_op(kind: str, schema: str) -> dict[str, Any]:
    return {"get": {"summary": f"List catalog {kind}", "operationId": f"list_{kind}",
                    "parameters": LIST_PARAMS,
                    "responses": {"200": _json(schema, f"A page of {kind}, by name"), **ERRORS}}}


def _get_op(kind: str, schema: str) -> dict[str, Any]:
    return {"get": {"summary": f"One catalog {kind[:-1]}", "operationId": f"get_{kind[:-1]}",
                    "parameters": [NAME_PARAM, INACTIVE_PARAM],
                    "responses": {"200": _json(schema, f"The {kind[:-1]}"),
                                  "404": _json("Error", "Unknown, or removed and not asked for"),
                                  **ERRORS}}}


DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "PAO API", "version": __version__,
             "description": "The platform catalog synced from git, and the state of that sync."},
    "servers": [{"url": "/"}],
    "security": [{"bearer": []}],
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                       "description": "Create one with `pao token create`"}},
        "schemas": SCHEMAS,
    },
    "paths": {
        "/api/v1/catalog/items": _list_op("items", "ItemList"),
        "/api/v1/catalog/items/{name}": _get_op("items", "Item"),
        "/api/v1/catalog/bundles": _list_op("bundles", "BundleList"),
        "/api/v1/catalog/bundles/{name}": _get_op("bundles", "Bundle"),
        "/api/v1/sync/status": {"get": {
            "summary": "Catalog sync state, the running sync and recent runs with their errors",
            "operationId": "sync_status",
            "responses": {"200": _json("SyncStatus", "Sync state"), **ERRORS}}},
        "/api/v1/sync/runs/{run_id}": {"get": {
            "summary": "One sync run with its errors", "operationId": "sync_run",
            "parameters": [{"name": "run_id", "in": "path", "required": True, "schema": INT}],
            "responses": {"200": _json("SyncRun", "The run"),
                          "404": _json("Error", "No such run"), **ERRORS}}},
        "/api/v1/sync": {"post": {
            "summary": "Queue a full reconcile of the catalog (admin token)",
            "operationId": "force_sync",
            "responses": {"202": _json("SyncQueued", "Queued (or already waiting)"),
                          "403": _json("Error", "Not an admin token"),
                          "409": _json("Error", "No catalog repository configured"),
                          "401": ERRORS["401"]}}},
        "/api/v1/openapi.json": {"get": {
            "summary": "This document", "operationId": "openapi", "security": [],
            "responses": {"200": {"description": "OpenAPI 3.1 document",
                                  "content": {"application/json": {"schema": {"type": "object"}}}}}}},
    },
}


@routes.get("/api/v1/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    return web.json_response(DOCUMENT)
