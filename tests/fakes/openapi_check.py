"""Check requests (and the fake's responses) against GitHub's official OpenAPI description.

The subset in ``openapi/github-subset.json`` is written by
``scripts/refresh_github_openapi.py`` and holds only the operations PAO calls.
``request_problems`` lists what is wrong with a request (empty when valid);
``assert_request_valid`` raises with that list. The fake runs every API request
it receives through ``request_problems``.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

SUBSET = Path(__file__).with_name("openapi") / "github-subset.json"


@functools.cache
def _subset() -> dict[str, Any]:
    return json.loads(SUBSET.read_text())


@functools.cache
def _root_validator() -> Draft202012Validator:
    return Draft202012Validator(_subset())


@functools.cache
def _templates() -> list[tuple[re.Pattern[str], str]]:
    compiled = []
    for key in _subset()["operations"]:
        method, template = key.split(" ", 1)
        # {ref} may hold slashes (heads/main); other parameters are one path segment.
        pattern = re.sub(r"\\\{(\w+)\\\}",
                         lambda m: f"(?P<{m.group(1)}>{'.+' if m.group(1) in ('ref', 'path') else '[^/]+'})",
                         re.escape(template))
        compiled.append((re.compile(f"{method} {pattern}"), key))
    # Literal segments beat parameters (/repos/{o}/{r}/installation vs /repos/{o}/{r}).
    compiled.sort(key=lambda item: item[1].count("{"))
    return compiled


def find_operation(method: str, path: str) -> tuple[str, dict[str, str]] | None:
    """The subset's ``"METHOD /template"`` key matching a request, with its path parameters."""
    for pattern, key in _templates():
        match = pattern.fullmatch(f"{method.upper()} {path}")
        if match:
            return key, match.groupdict()
    return None


def _errors(schema: Any, instance: Any) -> list[str]:
    validator = _root_validator().evolve(schema=schema)
    return [f"{'/'.join(map(str, e.absolute_path)) or '(body)'}: {e.message}"
            for e in sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))]


def _coerce(value: str, schema: Mapping[str, Any]) -> Any:
    """A query/path string as the type its schema wants (so "30" checks as an integer)."""
    kinds = schema.get("type")
    kinds = kinds if isinstance(kinds, list) else [kinds]
    if "integer" in kinds and re.fullmatch(r"-?\d+", value):
        return int(value)
    if "boolean" in kinds and value in ("true", "false"):
        return value == "true"
    return value


def request_problems(method: str, path: str, query: Mapping[str, str] | None = None,
                     body: Any = None) -> list[str]:
    """What GitHub's description says is wrong with this request (empty list when valid)."""
    found = find_operation(method, path)
    if found is None:
        return [f"{method} {path} is not an operation in the OpenAPI subset "
                "(add it to scripts/refresh_github_openapi.py)"]
    key, path_params = found
    op = _subset()["operations"][key]
    problems = []
    query = dict(query or {})
    for param in op["parameters"]:
        where, name = param["in"], param["name"]
        if where == "path":
            value = path_params.get(name)
        elif where == "query":
            value = query.pop(name, None)
        else:
            continue
        if value is None:
            if param["required"]:
                problems.append(f"missing required {where} parameter {name!r}")
            continue
        problems += [f"{where} parameter {name}: {e}"
                     for e in _errors(param["schema"], _coerce(value, param["schema"]))]
    problems += [f"unknown query parameter {name!r}" for name in query]
    request_body = op.get("requestBody")
    if request_body is None:
        if body is not None:
            problems.append("this operation takes no request body")
    elif body is None:
        if request_body["required"]:
            problems.append("missing required JSON request body")
    else:
        problems += _errors(request_body["schema"], body)
    return problems


def assert_request_valid(method: str, path: str, body: Any = None,
                         query: Mapping[str, str] | None = None) -> None:
    """Raise AssertionError listing the problems if GitHub's description rejects the request."""
    problems = request_problems(method, path, query, body)
    assert not problems, f"{method} {path} violates GitHub's OpenAPI description:\n" + "\n".join(problems)


def response_problems(method: str, path: str, status: int, body: Any) -> list[str]:
    """What is wrong with a response body for its operation and status (the fake's self-check)."""
    found = find_operation(method, path)
    if found is None:
        return [f"{method} {path} is not an operation in the OpenAPI subset"]
    schema = _subset()["operations"][found[0]]["responses"].get(str(status))
    if schema is None:
        return [f"status {status} is not a documented JSON response of {found[0]}"]
    return _errors(schema, body)
