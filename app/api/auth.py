"""API tokens: created by ``pao token create``, stored as SHA-256 hashes, checked per request.

A process remembers a token it checked for ``TOKEN_CACHE_SECONDS``: a burst of calls with
one token (a portal submitting for many people) costs one query, not one each. That is
also the bound on revocation: a revoked token (``pao token revoke``, another process)
keeps working for at most that long in a process that accepted it just before.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import cachetools
from aiohttp import web

from app.state import RUNTIME
from app.webhooks import error

TOKEN_PREFIX = "pao_"
TOKEN_CACHE_SECONDS = 2.0


@dataclass(frozen=True)
class Caller:
    token_id: int | None
    user_id: str
    team: str | None
    is_admin: bool
    email: str | None = None


CALLER: web.RequestKey[Caller] = web.RequestKey("caller", Caller)


class TokenCache:
    """Callers of recently accepted tokens by token hash, for ``TOKEN_CACHE_SECONDS``.

    Only accepted tokens are kept: an unknown token is looked up every time, so a token
    created a moment ago works at once and junk tokens cannot fill the cache. Concurrent
    calls with a token not yet cached share one lookup: fifty clients starting at once
    would otherwise queue fifty updates of the same ``api_tokens`` row.
    """

    def __init__(self, ttl: float = TOKEN_CACHE_SECONDS, maxsize: int = 4096):
        self._callers: cachetools.TTLCache[str, Caller] = cachetools.TTLCache(maxsize=maxsize, ttl=ttl)
        self._lookups: dict[str, asyncio.Task[Caller | None]] = {}

    async def caller(self, token_hash: str,
                     lookup: Callable[[], Awaitable[Caller | None]]) -> Caller | None:
        """The cached caller, else the result of ``lookup()`` (one at a time per token)."""
        if (caller := self._callers.get(token_hash)) is not None:
            return caller
        task = self._lookups.get(token_hash)
        if task is None:
            task = asyncio.ensure_future(lookup())
            self._lookups[token_hash] = task
            task.add_done_callback(lambda done: self._settle(token_hash, done))
        # Shielded: a client hanging up must not cancel the lookup others wait on.
        return await asyncio.shield(task)

    def _settle(self, token_hash: str, task: asyncio.Task[Caller | None]) -> None:
        self._lookups.pop(token_hash, None)
        if not task.cancelled() and task.exception() is None and (caller := task.result()) is not None:
            self._callers[token_hash] = caller

    def forget(self, token_id: int) -> None:
        """Drop a revoked token at once (in this process; others wait out the TTL)."""
        for key in [k for k, c in self._callers.items() if c.token_id == token_id]:
            self._callers.pop(key, None)


TOKEN_CACHE: web.AppKey[TokenCache] = web.AppKey("token_cache", TokenCache)


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


async def revoke_token(conn: asyncpg.Connection | asyncpg.Pool, token_id: int,
                       cache: TokenCache | None = None) -> bool:
    if cache is not None:
        cache.forget(token_id)
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
    token_hash = hash_token(token)

    async def lookup() -> Caller | None:
        row = await state.pool.fetchrow(
            """UPDATE api_tokens SET last_used_at = now()
                WHERE token_hash = $1 AND revoked_at IS NULL
            RETURNING id, user_id, team, is_admin, email""",
            token_hash,
        )
        if row is None:
            return None
        return Caller(row["id"], row["user_id"], row["team"], row["is_admin"], row["email"])

    # Cached, last_used_at is written at most once per token and TOKEN_CACHE_SECONDS per process.
    cache = request.app.get(TOKEN_CACHE)
    return await (cache.caller(token_hash, lookup) if cache is not None else lookup())


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
