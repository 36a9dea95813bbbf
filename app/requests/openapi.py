"""The service-request endpoints' part of the OpenAPI document, composed in ``app.api.openapi``."""

from __future__ import annotations

from typing import Any

from app.api import schema as doc

STR, INT, TIME = doc.STR, doc.INT, doc.TIME
NSTR = doc.nullable("string")
NTIME = doc.nullable("string", format="date-time")
NOBJ = {"type": ["object", "null"]}
STRS = {"type": "array", "items": STR}
REQUEST_STATUS = {"enum": ["submitted", "in_progress", "waiting_manual", "completed", "failed",
                           "cancelled"]}
STEP_STATUS = {"enum": ["pending", "queued", "running", "waiting_manual", "completed", "failed",
                        "cancelled"]}
STEP_ERROR = {"type": ["object", "null"], "required": ["type", "message"],
              "properties": {"type": STR, "message": STR, "details": {"type": "object"}}}

SUMMARY_PROPS: dict[str, Any] = {
    "request_id": STR, "status": REQUEST_STATUS, "version": STR, "created_at": TIME,
    "updated_at": TIME, "completed_at": NTIME, "href": STR,
    "requester": doc.obj({"user_id": STR, "team": NSTR, "email": NSTR}),
}
TARGET = {"catalog_item": STR, "catalog_bundle": STR}
STEP_PROPS: dict[str, Any] = {
    "step_id": STR, "name": STR, "type": STR, "item": STR, "status": STEP_STATUS, "depends_on": STRS,
    "started_at": NTIME, "completed_at": NTIME, "outputs": NOBJ, "job_tracking": NOBJ,
    "error": STEP_ERROR,
}
PARAMETERS = doc.obj({"bundle_parameters": {"type": "object"}, "item_parameters": {"type": "object"}})
PLANNED_STEP = doc.obj({"step_id": STR, "name": STR, "type": STR, "depends_on": STRS, "outputs": STRS,
                        "on_failure": {"enum": ["fail", "manual"]}})


def _with_target(props: dict[str, Any]) -> dict[str, Any]:
    """A closed object that names exactly one of catalog_item / catalog_bundle."""
    return {"type": "object", "required": sorted(props), "additionalProperties": False,
            "properties": {**props, **TARGET},
            "oneOf": [{"required": ["catalog_item"]}, {"required": ["catalog_bundle"]}]}


SCHEMAS: dict[str, Any] = {
    "RequestSubmission": {
        "type": "object", "additionalProperties": False,
        "properties": {**TARGET, "version": STR, "parameters": {"type": "object"},
                       "bundle_parameters": {"type": "object"},
                       "item_parameters": {"type": "object", "additionalProperties": {"type": "object"}},
                       "requester": {"type": "object", "required": ["user_id"],
                                     "properties": {"user_id": STR, "team": STR, "email": STR}}},
        "description": "catalog_item with parameters, or catalog_bundle with bundle_parameters and "
                       "item_parameters (optional items: `enabled`). requester: admin tokens only.",
    },
    "RequestCreated": _with_target({"request_id": STR, "status": REQUEST_STATUS, "version": STR,
                                    "created_at": TIME, "href": STR}),
    "RequestValidation": _with_target({"valid": {"const": True}, "version": STR,
                                       "parameters": PARAMETERS,
                                       "steps": {"type": "array", "items": PLANNED_STEP}}),
    "ValidationErrors": doc.obj({"error": {"const": "validation failed"}, "errors": {
        "type": "array", "items": doc.obj({"path": STR, "code": STR, "message": STR})}}),
    "RequestSummary": _with_target(SUMMARY_PROPS),
    "RequestStep": doc.obj(STEP_PROPS),
    "Request": _with_target({
        **SUMMARY_PROPS, "parameters": PARAMETERS, "outputs": NOBJ,
        "fulfillment": doc.obj({"execution_mode": {"enum": ["automation", "manual", "mixed"]},
                                "steps": {"type": "array", "items": doc.ref("RequestStep")}})}),
    "RequestList": doc.obj({"requests": {"type": "array", "items": doc.ref("RequestSummary")},
                            "pagination": doc.ref("Pagination")}),
    "RequestStepDetail": doc.obj({
        **STEP_PROPS, "request_id": STR, "can_retry": {"type": "boolean"},
        "manual_fallback_available": {"type": "boolean"},
        "attempts": {"type": "array", "items": doc.obj({
            "attempt_number": INT, "status": STR, "started_at": TIME, "completed_at": NTIME,
            "error": STEP_ERROR})},
        "tickets": {"type": "array", "items": doc.obj({
            "system": STR, "ticket_id": NSTR, "url": NSTR, "type": STR, "status": STR,
            "created_at": TIME, "resolved_at": NTIME})},
    }),
    "RequestEvent": doc.obj({"id": INT, "event": STR, "step_id": NSTR, "from_status": NSTR,
                             "to_status": NSTR, "actor": NSTR, "detail": NOBJ, "at": TIME}),
    "RequestEvents": doc.obj({"request_id": STR,
                              "events": {"type": "array", "items": doc.ref("RequestEvent")}}),
    "RequestOutputs": doc.obj({"request_id": STR, "status": REQUEST_STATUS,
                               "outputs": {"type": "object"}}),
}

REQUEST_ID = {"name": "request_id", "in": "path", "required": True, "schema": STR}
STEP_ID = {"name": "step_id", "in": "path", "required": True, "schema": STR}
NOT_FOUND = doc.json_body("Error", "No such request (or not visible to this token)")
READ_ERRORS = {"404": NOT_FOUND, **doc.ERRORS}
SUBMIT_ERRORS = {
    "400": doc.json_body("Error", "The body is not a JSON object"),
    "401": doc.ERRORS["401"],
    "403": doc.json_body("Error", "requester names someone else and the token is not an admin's"),
    "404": doc.json_body("Error", "No such item or bundle in the catalog"),
    "409": doc.json_body("Error", "version is not the current one (`current_version` says which), "
                         "or Idempotency-Key was used with another body"),
    "422": doc.json_body("ValidationErrors", "Every problem with the parameters"),
    "503": doc.json_body("Error", "The request has secret fields and PAO_SECRET_KEY is unset"),
}
BODY = {"required": True, "content": {"application/json": {"schema": doc.ref("RequestSubmission")}}}
IDEMPOTENCY = {"name": "Idempotency-Key", "in": "header", "required": False, "schema": STR,
               "description": "A retried submission with the same key gets the first request back"}

PATHS: dict[str, Any] = {
    "/api/v1/requests": {
        "post": {"summary": "Submit a request for an item or a bundle", "operationId": "submit_request",
                 "parameters": [IDEMPOTENCY], "requestBody": BODY,
                 "responses": {"201": doc.json_body("RequestCreated", "Submitted (or the earlier "
                                                    "submission with this Idempotency-Key)"),
                               **SUBMIT_ERRORS}},
        "get": {"summary": "Requests, newest first (own and team's; admins: all)",
                "operationId": "list_requests",
                "parameters": [doc.query("status", "Request status", REQUEST_STATUS),
                               doc.query("item", "catalog_item", STR),
                               doc.query("bundle", "catalog_bundle", STR),
                               doc.query("requester", "Requester's user id", STR),
                               doc.query("team", "Requester's team", STR),
                               doc.query("limit", "Page size", {"type": "integer", "minimum": 1,
                                                                "maximum": 200, "default": 50}),
                               doc.query("cursor", "`next_cursor` of the previous page", STR)],
                "responses": {"200": doc.json_body("RequestList", "A page of requests"), **doc.ERRORS}},
    },
    "/api/v1/requests/validate": {"post": {
        "summary": "Check a submission without storing it: resolved parameters and planned steps",
        "operationId": "validate_request", "requestBody": BODY,
        "responses": {"200": doc.json_body("RequestValidation", "Valid"),
                      **{k: v for k, v in SUBMIT_ERRORS.items() if k != "503"}}}},
    "/api/v1/requests/{request_id}": {"get": {
        "summary": "One request with its steps (outputs grouped by item when completed)",
        "operationId": "get_request", "parameters": [REQUEST_ID],
        "responses": {"200": doc.json_body("Request", "The request"), **READ_ERRORS}}},
    "/api/v1/requests/{request_id}/steps/{step_id}": {"get": {
        "summary": "One step with its attempts, typed errors and tickets",
        "operationId": "get_request_step", "parameters": [REQUEST_ID, STEP_ID],
        "responses": {"200": doc.json_body("RequestStepDetail", "The step"), **READ_ERRORS}}},
    "/api/v1/requests/{request_id}/outputs": {"get": {
        "summary": "The outputs of a request, grouped by item",
        "operationId": "get_request_outputs", "parameters": [REQUEST_ID],
        "responses": {"200": doc.json_body("RequestOutputs", "Outputs"), **READ_ERRORS}}},
}

CONFLICT = doc.json_body("Error", "The request or step is not in a state this action applies to")
FORBIDDEN = doc.json_body("Error", "This token may read the request but not act on it")
PATHS.update({
    "/api/v1/requests/{request_id}/steps/{step_id}/complete": {"post": {
        "summary": "Mark a manual or failed step done by hand, with its declared outputs (admin)",
        "operationId": "complete_request_step", "parameters": [REQUEST_ID, STEP_ID],
        "requestBody": {"required": False, "content": {"application/json": {"schema": {
            "type": "object", "properties": {"outputs": {"type": "object"}}}}}},
        "responses": {"200": doc.json_body("RequestStepDetail", "The step, completed"),
                      "403": FORBIDDEN, "409": CONFLICT,
                      "422": doc.json_body("ValidationErrors", "A declared output is missing"),
                      **READ_ERRORS}}},
    "/api/v1/requests/{request_id}/steps/{step_id}/retry": {"post": {
        "summary": "Run a failed step again", "operationId": "retry_request_step",
        "parameters": [REQUEST_ID, STEP_ID],
        "responses": {"200": doc.json_body("RequestStepDetail", "The step, queued"),
                      "403": FORBIDDEN, "409": CONFLICT, **READ_ERRORS}}},
    "/api/v1/requests/{request_id}/cancel": {"post": {
        "summary": "Cancel a request that has not ended", "operationId": "cancel_request",
        "parameters": [REQUEST_ID],
        "responses": {"200": doc.json_body("Request", "The request, cancelled"),
                      "403": FORBIDDEN, "409": CONFLICT, **READ_ERRORS}}},
    "/api/v1/requests/{request_id}/events": {"get": {
        "summary": "Every transition of the request; `Accept: text/event-stream` streams them live "
                   "(Server-Sent Events; resumes after `Last-Event-ID`)",
        "operationId": "request_events",
        "parameters": [REQUEST_ID, doc.query("after", "Only events with a higher id", INT)],
        "responses": {"200": {"description": "The events",
                              "content": {"application/json": {"schema": doc.ref("RequestEvents")},
                                          "text/event-stream": {"schema": STR}}},
                      **READ_ERRORS}}},
})

PATHS["/api/v1/webhooks/jira"] = {"post": {
    "summary": "Jira issue events (signed with PAO_JIRA_WEBHOOK_SECRET); a resolved ticket completes "
               "its step", "operationId": "jira_webhook", "security": [],
    "parameters": [{"name": "X-Hub-Signature", "in": "header", "required": True, "schema": STR,
                    "description": "sha256=<hex HMAC-SHA256 of the body>"}],
    "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}},
    "responses": {
        "200": {"description": "Handled", "content": {"application/json": {"schema": doc.obj(
            {"status": {"enum": ["resolved", "ignored"]}},
            {"steps_completed": STRS, "detail": STR}) | {"required": ["status"]}}}},
        "400": doc.json_body("Error", "Not an issue event"),
        "401": doc.json_body("Error", "Bad or missing signature"),
        "404": doc.json_body("Error", "Jira webhooks are off (no secret configured)")}}}
