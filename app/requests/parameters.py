"""Checks submitted parameters against presentation fields; pure, every problem at once.

A problem has a dotted ``path`` (``item_parameters.eks-container-app.replicas``), a stable
``code`` (``required``, ``type``, ``max_value``...) and a message that says how to fix it.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

from app.catalog.rules import MATCH_BUDGET, RegexpTooSlow, fullmatch
from app.pgtext import json_problem

SECRET = "secret"

# re.compile's own cache lookup costs more than matching a short value: remember patterns.
_compiled = functools.lru_cache(maxsize=512)(re.compile)


@dataclass(frozen=True)
class Problem:
    path: str
    code: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "code": self.code, "message": self.message}


@dataclass
class Resolved:
    """Field values after defaults; secret values kept apart so they never reach storage in clear."""

    values: dict[str, Any]
    secrets: dict[str, Any]


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _kind(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if _is_int(v):
        return "an integer"
    if isinstance(v, float):
        return "a number"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, list):
        return "a list"
    return "an object"


def _choice(value: Any, oneof: list[Any]) -> bool:
    """``value`` is one of the choices, of the same type (``True`` is not ``1``)."""
    return any(type(c) is type(value) and c == value for c in oneof)


def check_value(field: dict[str, Any], value: Any) -> tuple[str, str] | None:
    """(code, message) when ``value`` does not suit ``field``; None when it does.

    Messages never quote a secret field's value.
    """
    ftype = field.get("type")
    shown = "the value" if ftype == SECRET else repr(value)
    unstorable = json_problem(value)
    if unstorable:  # NUL, a lone surrogate, NaN: PostgreSQL would refuse to store the request
        where, why = unstorable
        return "invalid", f"{where}: {why}" if where else why
    if ftype in ("string", SECRET):
        if not isinstance(value, str):
            return "type", f"expected a string, got {_kind(value)}"
        lo, hi = field.get("min_length"), field.get("max_length")
        if _is_num(lo) and len(value) < lo:
            return "min_length", f"must be at least {lo} characters long, got {len(value)}"
        if _is_num(hi) and len(value) > hi:
            return "max_length", f"must be at most {hi} characters long, got {len(value)}"
        if isinstance(field.get("regexp"), str):
            try:
                if not fullmatch(_compiled(field["regexp"]), value):
                    return "regexp", f"{shown} does not match {field['regexp']!r}"
            except RegexpTooSlow:
                return "regexp", (f"{shown} took longer than {MATCH_BUDGET}s to match "
                                  f"{field['regexp']!r}; use a simpler value")
            except re.error:
                return "regexp", "the field's regexp does not compile; tell the item's owner"
        return None
    if ftype in ("integer", "number"):
        if not (_is_int(value) if ftype == "integer" else _is_num(value)):
            wanted = "an integer" if ftype == "integer" else "a number"
            return "type", f"expected {wanted}, got {_kind(value)}"
        lo, hi = field.get("min_value"), field.get("max_value")
        if _is_num(lo) and value < lo:
            return "min_value", f"must be at least {lo}, got {value}"
        if _is_num(hi) and value > hi:
            return "max_value", f"must be at most {hi}, got {value}"
        return None
    if ftype == "boolean":
        return None if isinstance(value, bool) else ("type", f"expected true or false, got {_kind(value)}")
    oneof = field.get("oneof") if isinstance(field.get("oneof"), list) else []
    if ftype == "selection":
        if not _choice(value, oneof):
            return "oneof", f"{shown} is not one of {oneof}"
        return None
    if ftype == "multiselect":
        if not isinstance(value, list):
            return "type", f"expected a list of choices, got {_kind(value)}"
        bad = [v for v in value if not _choice(v, oneof)]
        if bad:
            return "oneof", f"{bad[0]!r} is not one of {oneof}"
        if len({repr(v) for v in value}) != len(value):
            return "duplicate", "a choice is listed twice"
        lo, hi = field.get("min_items"), field.get("max_items")
        if _is_num(lo) and len(value) < lo:
            return "min_items", f"choose at least {lo}, got {len(value)}"
        if _is_num(hi) and len(value) > hi:
            return "max_items", f"choose at most {hi}, got {len(value)}"
        return None
    return None  # json: any JSON value


def resolve(fields: list[dict[str, Any]], given: Any, path: str, *,
            fixed: dict[str, Any] | None = None) -> tuple[Resolved, list[Problem]]:
    """Check ``given`` against ``fields``; apply defaults and ``fixed`` values (a bundle's).

    ``fixed`` values may be repeated with the same value, never overridden.
    """
    fixed = fixed or {}
    problems: list[Problem] = []
    values: dict[str, Any] = {}
    secrets: dict[str, Any] = {}
    if given is None:
        given = {}
    if not isinstance(given, dict):
        return Resolved({}, {}), [Problem(path, "type", f"expected an object, got {_kind(given)}")]
    by_name = {f.get("name"): f for f in fields if isinstance(f, dict)}
    for name in given:
        if name not in by_name:
            known = ", ".join(sorted(n for n in by_name if isinstance(n, str))) or "none"
            problems.append(Problem(f"{path}.{name}", "unknown",
                                    f"no field named {name!r}; known fields: {known}"))
    for name, field in by_name.items():
        where = f"{path}.{name}"
        if name in fixed:
            if name in given and given[name] != fixed[name]:
                problems.append(Problem(where, "fixed", f"is fixed to {fixed[name]!r} by the bundle "
                                        "and cannot be changed"))
            value = fixed[name]
        elif name in given and given[name] is not None:
            value = given[name]
        elif "default" in field:
            value = field["default"]
        elif field.get("required"):
            problems.append(Problem(where, "required", "is required"))
            continue
        else:
            continue
        bad = check_value(field, value)
        if bad is not None:
            problems.append(Problem(where, *bad))
            continue
        (secrets if field.get("type") == SECRET else values)[name] = value
    return Resolved(values, secrets), problems
