"""The OpenAPI 3.1 document of the REST API, served at ``/api/v1/openapi.json`` without a token.

Kept beside the handlers it describes; a test checks real responses against it.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from app import __version__
from app.api.schema import ERRORS, ID, INT, STR, TIME, json_body, nullable, obj, query, ref
from app.mirror import openapi as mirror_openapi
from app.requests import openapi as requests_openapi

routes = web.RouteTableDef()


ANY_OBJECT_OR_NULL = {"type": ["object", "null"]}
TAGS = {"type": "array", "items": STR}

SUMMARY_PROPS = {
    "name": STR, "display_name": nullable("string"), "version": STR, "description": STR,
    "owner": STR, "tags": TAGS, "category": nullable("string"), "is_active": {"type": "boolean"},
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
    "id": INT, "repository": STR, "branch": STR, "from_sha": nullable("string"),
    "to_sha": nullable("string"),
    "mode": {"enum": ["full", "incremental", "reconcile", "noop", None]},
    "triggered_by": {"enum": ["webhook", "manual", "startup"]},
    "delivery_id": nullable("string"), "job_id": nullable("integer"),
    "status": {"enum": ["running", "completed", "completed_with_errors", "failed"]},
    "files_changed": INT, "items_added": INT, "items_updated": INT, "items_removed": INT,
    "bundles_added": INT, "bundles_updated": INT, "bundles_removed": INT,
    "started_at": TIME, "completed_at": nullable("string", format="date-time"),
    "error": nullable("string"),
    "errors": {"type": "array", "items": ref("SyncError")},
}


SCHEMAS: dict[str, Any] = {
    "Error": {"type": "object", "required": ["error"],
              "properties": {"error": STR, "detail": {}, "parameter": STR,
                             "current_version": STR, "request_id": STR}},
    "BadRequest": {"type": "object", "required": ["error", "detail", "parameter"],
                   "properties": {"error": STR, "detail": STR, "parameter": STR}},
    "Pagination": obj({"next_cursor": nullable("string"), "has_more": {"type": "boolean"}}),
    "ItemSummary": obj(SUMMARY_PROPS),
    "BundleSummary": obj(SUMMARY_PROPS),
    "Item": obj(DETAIL_PROPS),
    "Bundle": obj({**DETAIL_PROPS, "bundle": obj({
        "required_items": {"type": "array", "items": BUNDLE_REF},
        "optional_items": {"type": "array", "items": BUNDLE_REF}})}),
    "ItemList": obj({"items": {"type": "array", "items": ref("ItemSummary")},
                      "pagination": ref("Pagination")}),
    "BundleList": obj({"bundles": {"type": "array", "items": ref("BundleSummary")},
                        "pagination": ref("Pagination")}),
    "SyncError": obj({"path": STR, "line": INT, "col": INT, "code": STR, "message": STR}),
    "SyncRun": obj(RUN_PROPS),
    "SyncStatus": obj({
        "repository": nullable("string"), "branch": STR, "last_processed_sha": nullable("string"),
        "processed_at": nullable("string", format="date-time"),
        "current_run": {"oneOf": [{"type": "null"}, ref("SyncRun")]},
        "recent_runs": {"type": "array", "items": ref("SyncRun")},
        "files_with_errors": {"type": "array", "items": obj({"path": STR, "message": STR})},
    }),
    "SyncQueued": obj({"status": {"const": "queued"}, "job_id": INT, "href": STR}),
}


LIST_PARAMS = [
    query("tags", "Comma-separated; every tag must match", STR),
    query("owner", "Owning team, exact match", STR),
    query("category", "Directory under catalog/, exact match", STR),
    query("q", "Search in name, display name, description and tags (case-insensitive)", STR),
    query("include_inactive", "Include removed entries", {"type": "boolean", "default": False}),
    query("limit", "Page size", {"type": "integer", "minimum": 1, "maximum": 200, "default": 50}),
    query("cursor", "Opaque `next_cursor` of the previous page (same filters)", STR),
]
NAME_PARAM = {"name": "name", "in": "path", "required": True, "schema": STR}
INACTIVE_PARAM = query("include_inactive", "Return the entry even if removed", {"type": "boolean"})


def _list_op(kind: str, schema: str) -> dict[str, Any]:
    return {"get": {"summary": f"List catalog {kind}", "operationId": f"list_{kind}",
                    "parameters": LIST_PARAMS,
                    "responses": {"200": json_body(schema, f"A page of {kind}, by name"), **ERRORS}}}


def _get_op(kind: str, schema: str) -> dict[str, Any]:
    return {"get": {"summary": f"One catalog {kind[:-1]}", "operationId": f"get_{kind[:-1]}",
                    "parameters": [NAME_PARAM, INACTIVE_PARAM],
                    "responses": {"200": json_body(schema, f"The {kind[:-1]}"),
                                  "404": json_body("Error", "Unknown, or removed and not asked for"),
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
        "schemas": {**SCHEMAS, **mirror_openapi.SCHEMAS, **requests_openapi.SCHEMAS},
    },
    "paths": {
        "/api/v1/catalog/items": _list_op("items", "ItemList"),
        "/api/v1/catalog/items/{name}": _get_op("items", "Item"),
        "/api/v1/catalog/bundles": _list_op("bundles", "BundleList"),
        "/api/v1/catalog/bundles/{name}": _get_op("bundles", "Bundle"),
        "/api/v1/sync/status": {"get": {
            "summary": "Catalog sync state, the running sync and recent runs with their errors",
            "operationId": "sync_status",
            "responses": {"200": json_body("SyncStatus", "Sync state"), **ERRORS}}},
        "/api/v1/sync/runs/{run_id}": {"get": {
            "summary": "One sync run with its errors", "operationId": "sync_run",
            "parameters": [{"name": "run_id", "in": "path", "required": True, "schema": ID}],
            "responses": {"200": json_body("SyncRun", "The run"),
                          "404": json_body("Error", "No such run"), **ERRORS}}},
        "/api/v1/sync": {"post": {
            "summary": "Queue a full reconcile of the catalog (admin token)",
            "operationId": "force_sync",
            "responses": {"202": json_body("SyncQueued", "Queued (or already waiting)"),
                          "403": json_body("Error", "Not an admin token"),
                          "409": json_body("Error", "No catalog repository configured"),
                          "401": ERRORS["401"]}}},
        "/api/v1/openapi.json": {"get": {
            "summary": "This document", "operationId": "openapi", "security": [],
            "responses": {"200": {"description": "OpenAPI 3.1 document",
                                  "content": {"application/json": {"schema": {"type": "object"}}}}}}},
        **mirror_openapi.PATHS,
        **requests_openapi.PATHS,
    },
}


@routes.get("/api/v1/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    return web.json_response(DOCUMENT)
