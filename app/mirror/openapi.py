"""The mirror endpoints' part of the OpenAPI document, composed in ``app.api.openapi``."""

from __future__ import annotations

from typing import Any

from app.api import schema as doc

STR, INT, TIME = doc.STR, doc.INT, doc.TIME
NSTR = doc.nullable("string")
NTIME = doc.nullable("string", format="date-time")
NINT = doc.nullable("integer")
STATUS = {"enum": ["pending", "in_progress", "completed", "failed"]}

MIRROR_PROPS: dict[str, Any] = {
        "id": INT,
        "github": doc.obj({"id": INT, "full_name": STR, "url": STR, "default_branch": NSTR,
                            "private": {"type": "boolean"}, "size_kb": INT}),
        "onedev": doc.obj({"project_id": NINT, "path": NSTR, "url": NSTR,
                           # true: a project PAO did not create (PAO_MIRROR_ON_CONFLICT=adopt)
                           "adopted": {"type": "boolean"}}),
        "sync_status": STATUS, "retry_count": INT, "last_synced_at": NTIME, "refs": INT,
        "error_message": NSTR, "source": {"enum": ["star", "poll", "manual"]},
        "unstarred_at": NTIME, "deleted_at": NTIME, "created_at": TIME, "updated_at": TIME,
}

SCHEMAS: dict[str, Any] = {
    "Mirror": doc.obj(MIRROR_PROPS),
    "SyncLog": doc.obj({
        "id": INT, "event_type": STR, "status": {"enum": ["success", "retrying", "failed",
                                                           "recorded"]},
        "duration_seconds": doc.nullable("number"), "refs_pushed": NINT, "bytes_fetched": NINT,
        "job_id": NINT, "error": NSTR, "created_at": TIME,
        # Refs OneDev refused in a sync that otherwise succeeded.
        "refs_refused": doc.nullable("array", items=STR),
    }),
    "MirrorList": doc.obj({"mirrors": {"type": "array", "items": doc.ref("Mirror")},
                            "pagination": doc.ref("Pagination")}),
    "MirrorDetail": doc.obj({**MIRROR_PROPS,
                              "sync_logs": {"type": "array", "items": doc.ref("SyncLog")}}),
    "MirrorQueued": doc.obj({"mirror": doc.ref("Mirror"), "job_id": NINT,
                              "outcome": {"enum": ["queued", "already_mirrored", "in_progress"]},
                              "message": STR}),
}

OWNER_REPO = [{"name": "owner", "in": "path", "required": True, "schema": STR},
              {"name": "repo", "in": "path", "required": True, "schema": STR}]
ERR = doc.json_body("Error", "See detail")

PATHS: dict[str, Any] = {
    "/api/v1/mirrors": {
        "get": {"summary": "Mirrors of GitHub repositories in OneDev, by id",
                "operationId": "list_mirrors",
                "parameters": [doc.query("status", "Only mirrors in this state", STATUS),
                               doc.query("limit", "Page size", {"type": "integer", "minimum": 1,
                                                                 "maximum": 200, "default": 50}),
                               doc.query("cursor", "Opaque `next_cursor` of the previous page",
                                          STR)],
                "responses": {"200": doc.json_body("MirrorList", "A page of mirrors"), **doc.ERRORS}},
        "post": {"summary": "Mirror a GitHub repository now (admin token); body "
                            '{"repository": "OWNER/REPO"}',
                 "operationId": "add_mirror",
                 "requestBody": {"required": True, "content": {"application/json": {"schema": {
                     "type": "object", "required": ["repository"],
                     "properties": {"repository": {"type": "string",
                                                   "description": "OWNER/REPO"}}}}}},
                 "responses": {"202": doc.json_body("MirrorQueued", "Sync queued"),
                               "200": doc.json_body("MirrorQueued", "Already mirrored or syncing"),
                               "403": ERR, "404": doc.json_body("Error", "No such GitHub repository"),
                               "409": doc.json_body("Error", "Mirroring is off (PAO_ONEDEV_URL)"),
                               "502": ERR, "503": ERR, **doc.ERRORS}},
    },
    "/api/v1/mirrors/{owner}/{repo}": {
        "get": {"summary": "One mirror with its recent sync logs", "operationId": "get_mirror",
                "parameters": OWNER_REPO,
                "responses": {"200": doc.json_body("MirrorDetail", "The mirror"),
                              "404": doc.json_body("Error", "Not mirrored"), **doc.ERRORS}},
    },
    "/api/v1/mirrors/{owner}/{repo}/sync": {
        "post": {"summary": "Queue an update of a mirror", "operationId": "sync_mirror",
                 "parameters": OWNER_REPO,
                 "responses": {"202": doc.json_body("MirrorQueued", "Update queued"),
                               "404": doc.json_body("Error", "Not mirrored"),
                               "409": doc.json_body("Error", "Mirroring is off (PAO_ONEDEV_URL)"),
                               **doc.ERRORS}},
    },
}
