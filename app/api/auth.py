"""API tokens: created by ``pao token create``, stored as SHA-256 hashes, checked per request."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

import asyncpg
from aiohttp import web

from app.state import RUNTIME
from app.webhooks import error

TOKEN_PREFIX = "pao_"


@dataclass(frozen=True)
class Caller:
    token_id: int | None
    user_id: str
    team: str | None
    is_admin: bool
    email: str | None = None


CALLER: web.RequestKey[Caller] = web.RequestKey("caller", Caller)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create_token(
    conn: asyncpg.Connection | asyncpg.Pool,
    *,
    user_id: str,
    team: str | None = None,
    is_admin: bool = False,
    description: str | None = None,
    email: str | None = None,
) -> tuple[int, str]:
    """A new token; returns (id, token). The token itself is shown once and never stored."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token_id = await conn.fetchval(
        """INSERT INTO api_tokens (token_hash, prefix, user_id, team, is_admin, description, email)
           VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id""",
        hash_token(token), token[:10], user_id, team, is_admin, description, email,
    )
    return token_id, token


async def revoke_token(conn: asyncpg.Connection | asyncpg.Pool, token_id: int) -> bool:
    done = await conn.fetchval(
        "UPDATE api_tokens SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL RETURNING id",
        token_id,
    )
    return done is not None


async def authenticate(request: web.Request) -> Caller | None:
    """The caller a request's bearer token names, or None for a missing or bad token."""
    headers = request.headers.getall("Authorization", [])
    if len(headers) != 1:  # two tokens are ambiguous: neither is taken
        return None
    scheme, _, token = headers[0].partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    try:
        token.encode("utf-8")
    except UnicodeEncodeError:  # bytes that are not UTF-8 (aiohttp kept them as surrogates)
        return None
    state = request.app[RUNTIME]
    admin_token = state.settings.admin_token
    if admin_token and hmac.compare_digest(token.encode(), admin_token.encode()):
        return Caller(None, "admin", None, True)
    row = await state.pool.fetchrow(
        """UPDATE api_tokens SET last_used_at = now()
            WHERE token_hash = $1 AND revoked_at IS NULL
        RETURNING id, user_id, team, is_admin, email""",
        hash_token(token),
    )
    if row is None:
        return None
    return Caller(row["id"], row["user_id"], row["team"], row["is_admin"], row["email"])


@web.middleware
async def api_auth_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """Every ``/api/v1`` route but webhooks and the OpenAPI document needs a bearer token."""
    path = request.path
    if not path.startswith("/api/v1/") or path.startswith("/api/v1/webhooks/") \
            or path == "/api/v1/openapi.json":
        return await handler(request)
    caller = await authenticate(request)
    if caller is None:
        return error(401, "unauthorized",
                     "send 'Authorization: Bearer <token>'; create one with 'pao token create'")
    request[CALLER] = caller
    return await handler(request)


def require_admin(request: web.Request) -> Caller:
    caller: Caller = request[CALLER]
    if not caller.is_admin:
        raise web.HTTPForbidden(
            text='{"error": "forbidden", "detail": "this endpoint needs an admin token"}',
            content_type="application/json",
        )
    return caller
