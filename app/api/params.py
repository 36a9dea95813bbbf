"""Query-string parsing for list endpoints: typed values, 400s naming the bad parameter, opaque cursors."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from multidict import MultiMapping

from app.pgtext import text_problem

DEFAULT_LIMIT, MAX_LIMIT = 50, 200
MAX_ID = 2**63 - 1  # PostgreSQL's bigint: ids beyond it name no row and must not reach a query


class BadParameter(web.HTTPBadRequest):
    """A 400 whose JSON body names the parameter and what is wrong with it."""

    def __init__(self, name: str, problem: str):
        body = {"error": "invalid parameter", "detail": f"{name}: {problem}", "parameter": name}
        super().__init__(text=json.dumps(body), content_type="application/json")


@dataclass(frozen=True)
class ListQuery:
    tags: list[str]
    owner: str | None
    category: str | None
    q: str | None
    include_inactive: bool
    limit: int
    after: str | None  # the last name of the previous page

    def fingerprint(self) -> str:
        """Identifies the filters, so a cursor cannot be replayed against another query."""
        key = json.dumps([sorted(self.tags), self.owner, self.category, self.q, self.include_inactive])
        return hashlib.sha256(key.encode()).hexdigest()[:12]


ALLOWED = {"tags", "owner", "category", "q", "include_inactive", "limit", "cursor"}


def parse_bool(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise BadParameter(name, f"expected true or false, got {value!r}")


def text(name: str, value: str) -> str:
    """``value`` if PostgreSQL can take it as text; else a 400 (a NUL or lone surrogate would be a 500)."""
    problem = text_problem(value)
    if problem:
        raise BadParameter(name, problem)
    return value


def path_text(request: web.Request, name: str) -> str:
    """The path parameter ``name`` as text PostgreSQL can take; else a 400 naming it."""
    return text(name, request.match_info[name])


def whole_number(value: str, *, minimum: int = 1) -> int | None:
    """``value`` as an id (``minimum``..bigint's maximum), or None when it is not one."""
    # isascii: str.isdigit also accepts digits int() refuses, such as '²'.
    if not (value.isascii() and value.isdigit()) or len(value) > 19 or not minimum <= int(value) <= MAX_ID:
        return None
    return int(value)


def path_id(request: web.Request, name: str) -> int:
    """The path parameter ``name`` as a row id (1..bigint's maximum); else a 400 naming it."""
    value = request.match_info[name]
    number = whole_number(value)
    if number is None:
        raise BadParameter(name, f"expected a whole number 1..{MAX_ID}, got {value[:40]!r}")
    return number


def single(query: MultiMapping[str], name: str) -> str | None:
    values = query.getall(name, [])
    if len(values) > 1:
        raise BadParameter(name, "given more than once")
    return text(name, values[0]) if values else None


def parse_list_query(query: MultiMapping[str]) -> ListQuery:
    for name in query:
        if name not in ALLOWED:
            raise BadParameter(name, f"unknown parameter; known: {', '.join(sorted(ALLOWED))}")
    tags = [text("tags", t.strip()) for v in query.getall("tags", []) for t in v.split(",") if t.strip()]
    limit_text = single(query, "limit")
    limit = DEFAULT_LIMIT
    if limit_text is not None:
        try:
            limit = int(limit_text)
        except ValueError:
            raise BadParameter("limit", f"expected a whole number, got {limit_text!r}") from None
        if not 1 <= limit <= MAX_LIMIT:
            raise BadParameter("limit", f"must be between 1 and {MAX_LIMIT}, got {limit}")
    inactive = single(query, "include_inactive")
    q = single(query, "q")
    parsed = ListQuery(
        tags=tags, owner=single(query, "owner") or None, category=single(query, "category") or None,
        q=q.strip() or None if q is not None else None,
        include_inactive=parse_bool("include_inactive", inactive) if inactive is not None else False,
        limit=limit, after=None,
    )
    cursor = single(query, "cursor")
    if cursor:
        after = decode_cursor(cursor, parsed.fingerprint())
        parsed = ListQuery(**{**parsed.__dict__, "after": after})
    return parsed


def encode_cursor(after: str, fingerprint: str) -> str:
    raw = json.dumps({"a": after, "f": fingerprint}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


# Cursors this API returns are far shorter (a name and a fingerprint).
MAX_CURSOR = 2048


def decode_cursor(cursor: str, fingerprint: str) -> str:
    if len(cursor) > MAX_CURSOR:
        raise BadParameter("cursor", "not a cursor this API returned")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data: Any = json.loads(raw)
        after, fp = data["a"], data["f"]
        if not isinstance(after, str) or not isinstance(fp, str):
            raise ValueError
    except (ValueError, KeyError, TypeError, RecursionError):
        raise BadParameter("cursor", "not a cursor this API returned") from None
    if fp != fingerprint:
        raise BadParameter("cursor", "belongs to a query with other filters; start again without it")
    return text("cursor", after)


def like_pattern(text: str) -> str:
    """``%text%`` with LIKE's wildcards in ``text`` escaped."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
