"""Small builders for OpenAPI 3.1 schema fragments, shared by every part of the API document."""

from __future__ import annotations

from typing import Any

STR: dict[str, Any] = {"type": "string"}
TIME: dict[str, Any] = {"type": "string", "format": "date-time"}
INT: dict[str, Any] = {"type": "integer"}
# A row id in a path: what the server accepts (PostgreSQL's bigint, from 1).
ID: dict[str, Any] = {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema_type: str, **extra: Any) -> dict[str, Any]:
    return {"type": [schema_type, "null"], **extra}


def obj(props: dict[str, Any], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """A closed object whose every listed property is required."""
    return {"type": "object", "required": sorted(props), "properties": {**props, **(extra or {})},
            "additionalProperties": False}


def json_body(schema: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": ref(schema)}}}


def query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


ERRORS: dict[str, Any] = {
    "400": json_body("BadRequest", "A parameter is invalid; `parameter` names it"),
    "401": json_body("Error", "Missing or invalid bearer token"),
}
