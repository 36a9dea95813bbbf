"""What PostgreSQL can store: text without NUL or lone surrogates, JSON without NaN or Infinity.

Python accepts all of these (``json.loads`` reads ``"\\u0000"``, ``"\\ud800"``, ``NaN`` and
``1e999``); PostgreSQL refuses them in ``text`` and ``jsonb`` with an error that would
surface as a 500. Input is checked with these helpers where it enters, and refused with
a 400 or 422 naming the field.
"""

from __future__ import annotations

import math
from typing import Any

# Nesting deeper than this is refused rather than walked (and no real parameter nests so deep).
MAX_DEPTH = 200


NUL, LONE_SURROGATE = "nul", "lone surrogate"


def unstorable_kind(value: str) -> str | None:
    """What keeps PostgreSQL from storing ``value`` as text (NUL or LONE_SURROGATE), or None."""
    if "\x00" in value:
        return NUL
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return LONE_SURROGATE
    return None


_TEXT_PROBLEMS = {NUL: "must not contain a NUL character", LONE_SURROGATE: "is not valid Unicode text"}


def text_problem(value: str) -> str | None:
    """Why PostgreSQL cannot store ``value`` as text, or None (worded for an API field)."""
    kind = unstorable_kind(value)
    return None if kind is None else _TEXT_PROBLEMS[kind]


def json_problem(value: Any, path: str = "") -> tuple[str, str] | None:
    """``(path, why)`` of the first part of a parsed JSON ``value`` that PostgreSQL cannot
    store as ``jsonb`` (``path`` dotted from the given prefix), or None."""
    stack: list[tuple[Any, str, int]] = [(value, path, 0)]
    while stack:
        node, where, depth = stack.pop()
        if depth > MAX_DEPTH:
            return where, f"nests deeper than {MAX_DEPTH} levels"
        if isinstance(node, str):
            why = text_problem(node)
            if why:
                return where, why
        elif isinstance(node, float) and not math.isfinite(node):
            return where, "must be a finite number (not NaN or Infinity)"
        elif isinstance(node, dict):
            for key, item in node.items():
                child = f"{where}.{key}" if where else str(key)
                why = text_problem(str(key))
                if why:
                    return child, f"field name {why}"
                stack.append((item, child, depth + 1))
        elif isinstance(node, list):
            stack.extend((item, f"{where}[{i}]", depth + 1) for i, item in enumerate(node))
    return None


def storable_copy(value: Any, depth: int = 0) -> Any:
    """``value`` (parsed JSON) made storable for diagnostics: NUL and lone surrogates become
    U+FFFD, NaN and Infinity their names as text, nesting past ``MAX_DEPTH`` is cut. For what
    a remote system said in an error; data users rely on is refused with ``json_problem``."""
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass").decode("utf-8", "replace").replace("\x00", "\ufffd")
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if depth >= MAX_DEPTH and isinstance(value, dict | list):
        return "(nested too deep)"
    if isinstance(value, dict):
        return {storable_copy(str(k)): storable_copy(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [storable_copy(v, depth + 1) for v in value]
    return value
