"""Bearer tokens: remembered briefly per process, yet revocation and new tokens take effect promptly."""

from __future__ import annotations

import asyncio

import pytest

from app.api.auth import (
    TOKEN_CACHE,
    TOKEN_CACHE_SECONDS,
    Caller,
    TokenCache,
    create_token,
    hash_token,
    revoke_token,
)
from app.web import create_app
from tests.support import wait_for


@pytest.fixture
async def client(aiohttp_client, runtime):
    return await aiohttp_client(create_app(runtime))


async def _status(client, token: str) -> int:
    resp = await client.get("/api/v1/sync/status", headers={"Authorization": f"Bearer {token}"})
    await resp.read()
    return resp.status


async def test_a_token_revoked_here_is_refused_at_once(client, pool):
    token_id, token = await create_token(pool, user_id="u")
    assert await _status(client, token) == 200
    assert await revoke_token(pool, token_id, client.app[TOKEN_CACHE])
    assert await _status(client, token) == 401


async def test_a_token_revoked_by_another_process_is_refused_within_the_cache_bound(client, pool):
    token_id, token = await create_token(pool, user_id="u")
    assert await _status(client, token) == 200
    await revoke_token(pool, token_id)  # as `pao token revoke` does, in a process of its own

    async def refused() -> bool:
        return await _status(client, token) == 401
    await wait_for(refused, timeout=TOKEN_CACHE_SECONDS + 5, what="the revoked token refused")


async def test_an_unknown_token_is_not_remembered_so_a_new_one_works_at_once(client, pool):
    token = "pao_created-a-moment-later"
    assert await _status(client, token) == 401
    await pool.execute("INSERT INTO api_tokens (token_hash, prefix, user_id) VALUES ($1, $2, 'u')",
                       hash_token(token), token[:10])
    assert await _status(client, token) == 200


async def test_concurrent_calls_with_a_new_token_share_one_lookup():
    cache = TokenCache()
    lookups = 0
    release = asyncio.Event()
    caller = Caller(7, "u", None, False)

    async def lookup() -> Caller | None:
        nonlocal lookups
        lookups += 1
        await release.wait()
        return caller

    waiting = [asyncio.create_task(cache.caller("h", lookup)) for _ in range(20)]
    await asyncio.sleep(0)
    waiting[0].cancel()  # a client hanging up does not cancel the lookup the others wait on
    release.set()
    results = await asyncio.gather(*waiting[1:])
    assert results == [caller] * 19 and lookups == 1
    assert await cache.caller("h", lookup) == caller and lookups == 1  # remembered
    cache.forget(7)
    assert await cache.caller("h", lookup) == caller and lookups == 2


async def test_a_refused_token_is_looked_up_every_time():
    cache = TokenCache()
    lookups = 0

    async def lookup() -> Caller | None:
        nonlocal lookups
        lookups += 1
        return None

    assert await cache.caller("h", lookup) is None
    assert await cache.caller("h", lookup) is None
    assert lookups == 2
