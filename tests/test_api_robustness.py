"""The REST API refuses bad input with 4xx and a JSON body naming the problem, never a 500."""

from __future__ import annotations

import logging

import pytest

from app.api.auth import create_token
from app.web import create_app
from tests.conftest import with_settings
from tests.support import raw_request, serve

ADMIN = "admin-token-for-tests"


@pytest.fixture
async def served(runtime):
    runtime.settings = with_settings(runtime.settings, admin_token=ADMIN)
    async with serve(create_app(runtime)) as addr:
        yield addr


def get(path: str, *headers: bytes) -> bytes:
    return (f"GET {path} HTTP/1.1\r\nHost: pao\r\nConnection: close\r\n".encode()
            + b"".join(h + b"\r\n" for h in headers))


@pytest.mark.parametrize("token", [b"pao_\xff\xfe", b"caf\xe9", ADMIN.encode() + b"\xff"])
@pytest.mark.parametrize("path", ["/api/v1/catalog/items", "/api/v1/sync/status", "/api/v1/mirrors"])
async def test_a_token_that_is_not_utf8_is_401_without_a_traceback(served, caplog, token, path):
    caplog.set_level(logging.DEBUG)
    status, body = await raw_request(served, get(path, b"Authorization: Bearer " + token))
    assert status == 401 and body["error"] == "unauthorized"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


async def test_two_authorization_headers_are_401_even_if_one_is_good(served, pool):
    _, token = await create_token(pool, user_id="u")
    for pair in ([token, "pao_wrong"], ["pao_wrong", token], [token, token]):
        status, _ = await raw_request(served, get(
            "/api/v1/sync/status", *(b"Authorization: Bearer " + t.encode() for t in pair)))
        assert status == 401, pair
    status, _ = await raw_request(served, get("/api/v1/sync/status",
                                              b"Authorization: Bearer " + token.encode()))
    assert status == 200


@pytest.mark.parametrize("run_id,status", [
    (str(2**63 - 1), 404), (str(2**63), 400), ("0", 400), ("-1", 400), ("9" * 400, 400),
    ("1e3", 400), ("%C2%B2", 400), ("0" * 30 + "9" * 30, 400), ("0" * 5 + "1", 404),
])
async def test_run_ids_within_bigint_are_looked_up_and_others_are_400(served, run_id, status):
    got, body = await raw_request(served, get(f"/api/v1/sync/runs/{run_id}",
                                              f"Authorization: Bearer {ADMIN}".encode()))
    assert got == status
    if status == 400:
        assert body["parameter"] == "run_id" and "run_id" in body["detail"]


@pytest.mark.parametrize("path,parameter", [
    ("/api/v1/mirrors/a%00b/repo", "owner"),
    ("/api/v1/mirrors/owner/r%00", "repo"),
    ("/api/v1/catalog/items/x?include_inactive=1&zzz=1", "zzz"),
    ("/api/v1/catalog/bundles/a%00", "name"),
    ("/api/v1/mirrors?limit=%C2%B2", "limit"),  # '²' is a digit to str.isdigit, not to int()
    ("/api/v1/mirrors?limit=" + "0" * 30 + "5", "limit"),
    ("/api/v1/mirrors?cursor=OsKy", "cursor"),  # ':²'
    ("/api/v1/mirrors?cursor=OjE4NDQ2NzQ0MDczNzA5NTUxNjE2", "cursor"),  # ':' + 2**64
])
async def test_every_400_names_its_parameter(served, path, parameter):
    status, body = await raw_request(served, get(path, f"Authorization: Bearer {ADMIN}".encode()))
    assert status == 400 and body["parameter"] == parameter


@pytest.mark.parametrize("body,parameter", [
    (b"{", "body"), (b"\xff", "body"), (b"[" * 100000, "body"), (b'{"repository": 5}', "repository"),
    (b'{"repository": "a\\u0000b"}', "repository"),
])
async def test_a_bad_mirror_request_body_is_400_naming_it(served, runtime, body, parameter):
    from app.mirror.config import MirrorSettings

    runtime.settings = with_settings(runtime.settings, extra={
        **runtime.settings.extra,
        "mirror": MirrorSettings(onedev_url="http://127.0.0.1:9", onedev_token="t")})
    request = (b"POST /api/v1/mirrors HTTP/1.1\r\nHost: pao\r\nConnection: close\r\n"
               b"Content-Type: application/json\r\nAuthorization: Bearer " + ADMIN.encode()
               + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n")
    status, answer = await raw_request(served, request, body)
    assert status == 400 and answer["parameter"] == parameter
