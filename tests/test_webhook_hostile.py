"""Intake under hostile or odd input: stalled uploads, unstorable payloads, ambiguous headers.

Every refusal is a clear status with a JSON body, the audit row is stored when the
sender proved itself (signed), and unauthenticated noise never logs an ERROR.
"""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from app import webhooks
from app.web import create_app
from tests.support import raw_request, read_response, serve, sign, signed_headers, wait_for, webhook

URL = "/api/v1/webhooks/github"


@pytest.fixture
async def client(aiohttp_client, runtime):
    return await aiohttp_client(create_app(runtime))


@pytest.fixture(autouse=True)
def fresh_log_budget(monkeypatch):
    """Each test starts with the full burst of unauthenticated-noise warnings."""
    monkeypatch.setattr(webhooks, "_NOISE_LOG", webhooks.TokenBucket(rate=1.0, burst=10.0))


@pytest.fixture
async def served(runtime):
    async with serve(create_app(runtime)) as addr:
        yield addr


def address(client) -> tuple[str, int]:
    return client.server.host, client.server.port


async def events(pool):
    """The stored deliveries, payloads read as JSON (they are kept as the text sent)."""
    rows = [dict(r) for r in await pool.fetch("SELECT * FROM webhook_events ORDER BY id")]
    for row in rows:
        if row["payload"] is not None:
            row["payload"] = json.loads(row["payload"])
    return rows


def head(body: bytes, *lines: bytes) -> bytes:
    return (b"POST " + URL.encode() + b" HTTP/1.1\r\nHost: pao\r\nConnection: close\r\n"
            b"Content-Type: application/json\r\nContent-Length: " + str(len(body)).encode()
            + b"\r\n" + b"".join(line + b"\r\n" for line in lines))


# --- stalled uploads (issue 9 item 1)

async def stall(addr: tuple[str, int], *, chunked: bool,
                ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection that sends headers and a few bytes of a large body, then nothing."""
    reader, writer = await asyncio.open_connection(*addr)
    length = b"Transfer-Encoding: chunked" if chunked else b"Content-Length: 2000000"
    writer.write(b"POST " + URL.encode() + b" HTTP/1.1\r\nHost: pao\r\n"
                 b"X-GitHub-Event: ping\r\nX-GitHub-Delivery: stalled\r\n"
                 b"X-Hub-Signature-256: sha256=00\r\nContent-Type: application/json\r\n"
                 + length + b"\r\n\r\n" + (b"5\r\n{\"a\":\r\n" if chunked else b'{"a":'))
    await writer.drain()
    return reader, writer


async def test_stalled_uploads_never_keep_a_large_signed_delivery_waiting(client, pool):
    stalled = [(await stall(address(client), chunked=i % 2 == 0))[1] for i in range(12)]
    budget = client.server.app[webhooks.LARGE_BODY_BUDGET]
    # They are all inside the handler, reading: each holds its first 5 bytes.
    await wait_for(lambda: asyncio.sleep(0, budget.available == budget.capacity - 12 * 5),
                   what="the stalled uploads to be read")
    body, headers = webhook("ping", {"zen": "x" * (2 * 1024 * 1024)}, delivery_id="big-one")
    # GitHub gives up after 10 s; the answer must come well before, stalled peers or not.
    resp = await asyncio.wait_for(client.post(URL, data=body, headers=headers), 8)
    assert resp.status == 200 and (await resp.json())["status"] == "pong"
    assert [r["delivery_id"] for r in await events(pool)] == ["big-one"]
    assert not any(w.is_closing() for w in stalled)  # they were still there, holding on
    for w in stalled:
        w.close()


async def test_a_body_that_does_not_arrive_in_time_is_408_and_frees_its_bytes(
        client, monkeypatch, caplog):
    monkeypatch.setattr(webhooks, "BODY_TIMEOUT_SECONDS", 0.5)
    budget = client.app[webhooks.LARGE_BODY_BUDGET]
    caplog.set_level(logging.DEBUG)
    for chunked in (False, True):
        reader, writer = await stall(address(client), chunked=chunked)
        status, data = await asyncio.wait_for(read_response(reader), 10)
        assert status == 408 and data["error"] == "request timeout"
        writer.close()
    assert budget.available == budget.capacity
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_an_abandoned_upload_logs_one_warning_and_no_traceback(runtime, caplog):
    caplog.set_level(logging.DEBUG)
    app = create_app(runtime)
    budget = app[webhooks.LARGE_BODY_BUDGET]
    async with serve(app) as addr:
        _, writer = await stall(addr, chunked=False)
        # Abandon it once the handler reads it (holds its first bytes), not before it got there.
        await wait_for(lambda: asyncio.sleep(0, budget.available < budget.capacity),
                       what="the upload to be read")
        writer.close()

        async def warned() -> bool:
            return any("abandoned" in r.getMessage() for r in caplog.records
                       if r.levelno == logging.WARNING)

        await wait_for(warned, what="the abandoned upload's warning")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


async def test_a_flood_of_forged_deliveries_logs_a_bounded_number_of_warnings(client, caplog):
    caplog.set_level(logging.DEBUG)
    for i in range(40):
        body, headers = webhook("push", {"ref": "x"}, secret="forged", delivery_id=f"f{i}")
        assert (await client.post(URL, data=body, headers=headers)).status == 401
    warnings = [r for r in caplog.records if r.name == "app.webhooks" and r.levelno >= logging.WARNING]
    assert 1 <= len(warnings) < 20
    assert all(r.levelno == logging.WARNING and not r.exc_info for r in warnings)


@pytest.mark.parametrize("chunks", [b"zz\r\n{}\r\n0\r\n\r\n", b"2\r\n{}XX0\r\n\r\n"])
async def test_a_broken_chunked_body_is_400_without_a_traceback(served, caplog, chunks):
    caplog.set_level(logging.DEBUG)
    request = (b"POST " + URL.encode() + b" HTTP/1.1\r\nHost: pao\r\nConnection: close\r\n"
               b"X-GitHub-Event: ping\r\nX-GitHub-Delivery: chunks\r\n"
               b"X-Hub-Signature-256: sha256=00\r\nContent-Type: application/json\r\n"
               b"Transfer-Encoding: chunked\r\n")
    status, data = await raw_request(served, request, chunks)
    assert status == 400 and data["error"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


# --- payloads PostgreSQL cannot store (item 2)

@pytest.mark.parametrize("number,problem", [
    ("1e131072", "cannot be stored"),   # past numeric's range
    ("1e-16384", "cannot be stored"),   # past numeric's precision
    ("1" * 5000, "cannot be read"),     # more digits than Python reads as an int
])
async def test_a_number_postgresql_cannot_store_is_400_and_recorded(client, pool, number, problem):
    body = b'{"zen": ' + number.encode() + b"}"
    headers = signed_headers("ping", body, "num")
    resp = await client.post(URL, data=body, headers=headers)
    assert resp.status == 400
    data = await resp.json()
    assert data["error"] == "invalid payload" and problem in data["detail"]
    [row] = await events(pool)
    assert row["status"] == "rejected" and row["signature_valid"] and row["payload"] is None
    assert problem in row["reason"]


@pytest.mark.parametrize("event", ["pull_request", "installation", "gollum", "ping"])
@pytest.mark.parametrize("action", [["opened"], {"a": 1}, 7, True])
async def test_an_action_that_is_not_a_string_is_400_naming_it(client, pool, event, action):
    body, headers = webhook(event, {"action": action, "zen": "z"}, delivery_id="act")
    resp = await client.post(URL, data=body, headers=headers)
    assert resp.status == 400
    assert "'action' has the wrong type" in (await resp.json())["detail"]
    [row] = await events(pool)
    assert row["status"] == "rejected" and row["payload"]["action"] == action


async def test_a_lone_surrogate_escape_is_400_and_recorded_without_its_payload(client, pool):
    body = b'{"zen": "half \\ud800 a pair"}'
    headers = signed_headers("ping", body, "half")
    resp = await client.post(URL, data=body, headers=headers)
    assert resp.status == 400
    assert "cannot be stored" in (await resp.json())["detail"]
    [row] = await events(pool)
    assert row["status"] == "rejected" and row["payload"] is None


async def test_fractions_and_exponents_postgresql_reads_are_kept_as_sent(client, pool):
    body = b'{"zen": 1.50, "hook_id": 2E-3, "ratio": -0.0, "big": 1e300}'
    headers = signed_headers("ping", body, "floats")
    resp = await client.post(URL, data=body, headers=headers)
    assert resp.status == 200
    assert await pool.fetchval("SELECT payload FROM webhook_events") == body.decode()


async def test_json_nested_past_the_parsers_limits_is_400_not_malformed(client, pool):
    body = b'{"zen": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    headers = signed_headers("ping", body, "deep")
    resp = await client.post(URL, data=body, headers=headers)
    assert resp.status == 400
    data = await resp.json()
    assert data["error"] == "invalid payload" and "cannot be read" in data["detail"]
    [row] = await events(pool)
    assert row["status"] == "rejected" and row["payload"] is None


async def test_numbers_past_a_double_but_within_numeric_are_kept_exactly(client, pool):
    body = b'{"zen": 1e400, "hook_id": 123456789012345678901234567890}'
    headers = signed_headers("ping", body, "exact")
    resp = await client.post(URL, data=body, headers=headers)
    assert resp.status == 200
    stored = await pool.fetchval("SELECT payload::jsonb->>'hook_id' FROM webhook_events")
    assert stored == "123456789012345678901234567890"


@pytest.mark.parametrize("body,value", [
    (b'{"id":\n  123456789012345678901234567890}', 123456789012345678901234567890),
    (b'{"ids": [1,-98765432109876543210987]}', [1, -98765432109876543210987]),
    (b'{"id":18446744073709551616,"sha":"0000000000000000000000000000000000000000"}',
     18446744073709551616),
])
def test_integers_past_64_bits_are_read_exactly_wherever_they_stand(body, value):
    data = webhooks.parse_json(body).data
    assert data.get("id", data.get("ids")) == value


@pytest.mark.parametrize("body,checked", [
    (b'{"a": [1, {"b": "2.5", "c": 7}]}', False),     # no fraction, no exponent: stored as is
    (b'{"a": [1, {"b": 2.5}]}', True),                 # numeric may refuse some: PostgreSQL reads it
    (b'{"a": ' + b"[" * 1000 + b"1e-5" + b"]" * 1000 + b"}", True),  # however deep
    (b'{"a": "nul \\u0000"}', True),
])
def test_payloads_jsonb_might_refuse_are_read_by_postgresql_first(body, checked):
    assert webhooks.parse_json(body).needs_check is checked


def test_a_run_of_digits_inside_a_string_stays_that_string():
    data = webhooks.parse_json(b'{"before": "0000000000000000000000000000000000000000"}').data
    assert data == {"before": "0" * 40}


async def test_an_installation_id_past_64_bits_is_400_naming_it_and_recorded(client, pool):
    payload = {"action": "created", "installation": {"id": 2**64 + 1, "account": {"login": "a"}}}
    body, headers = webhook("installation", payload, delivery_id="wide")
    resp = await client.post(URL, data=body, headers=headers)
    assert resp.status == 400
    assert "'installation.id' is out of range" in (await resp.json())["detail"]
    [row] = await events(pool)
    assert row["status"] == "rejected" and row["installation_id"] is None
    assert row["payload"]["installation"]["id"] == 2**64 + 1


@pytest.mark.parametrize("header", [b"X-GitHub-Event", b"X-GitHub-Delivery"])
async def test_a_non_utf8_header_on_a_signed_delivery_is_400_naming_it(served, pool, header):
    body = b'{"zen": "z"}'
    others = [b"X-GitHub-Event: ping", b"X-GitHub-Delivery: d-utf8"]
    lines = [line for line in others if not line.startswith(header)]
    status, data = await raw_request(served, head(body, header + b": caf\xe9\xff", *lines,
                                                  b"X-Hub-Signature-256: " + sign(body).encode()),
                                     body)
    assert status == 400
    assert data["error"] == "invalid header" and header.decode() in data["detail"]
    [row] = await events(pool)
    assert row["status"] == "rejected" and header.decode() in row["reason"]
    assert "\\xff" in (row["event"] + row["delivery_id"])


async def test_a_forged_delivery_with_a_non_utf8_header_is_401_without_error_logs(
        served, pool, caplog):
    caplog.set_level(logging.DEBUG)
    body = b'{"zen": "z"}'
    status, data = await raw_request(served, head(body, b"X-GitHub-Event: p\xffng",
                                                  b"X-GitHub-Delivery: \xfe\xff",
                                                  b"X-Hub-Signature-256: sha256=00"), body)
    assert status == 401 and data["error"] == "invalid signature"
    [row] = await events(pool)
    assert row["status"] == "rejected" and not row["signature_valid"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


# --- ambiguous headers (item 4)

@pytest.mark.parametrize("order", ["valid-first", "valid-last", "both-valid"])
async def test_two_signature_headers_are_refused_whatever_their_order(client, pool, order):
    body, headers = webhook("ping", {"zen": "z"})
    good = headers.pop("X-Hub-Signature-256")
    pair = {"valid-first": [good, sign(body, "x")], "valid-last": [sign(body, "x"), good],
            "both-valid": [good, good]}[order]
    resp = await client.post(URL, data=body, headers=[*headers.items(),
                                                      *(("X-Hub-Signature-256", s) for s in pair)])
    assert resp.status == 401
    assert "X-Hub-Signature-256 is given 2 times" in (await resp.json())["detail"]
    [row] = await events(pool)
    assert row["status"] == "rejected" and not row["signature_valid"]


@pytest.mark.parametrize("name", ["X-GitHub-Event", "X-GitHub-Delivery"])
async def test_a_repeated_event_or_delivery_header_is_400(client, pool, name):
    body, headers = webhook("ping", {"zen": "z"})
    resp = await client.post(URL, data=body, headers=[*headers.items(), (name, "other")])
    assert resp.status == 400
    assert f"{name} is given 2 times" in (await resp.json())["detail"]
    [row] = await events(pool)
    assert row["status"] == "rejected"


@pytest.mark.parametrize("request_head", [
    head(b"{}", b"X-GitHub-Event: ping", b"X-Long: " + b"a" * 9000),  # header past aiohttp's cap
    b"GARBAGE / HTTP/1.1\r\nHost: pao\r\n",                              # no such method
    b"POST /api/v1/webhooks/github HTTP/9\r\nHost: pao\r\n",              # no such version
    head(b"{}", b"Content-Type: text/plain"),                          # two Content-Types
    head(b"{}", b"Content-Length: 3"),                                  # two lengths
])
async def test_requests_aiohttp_cannot_parse_get_json_and_no_traceback(served, caplog, request_head):
    caplog.set_level(logging.DEBUG)
    status, data = await raw_request(served, request_head, b"{}")
    assert status == 400 and data["error"] == "bad request" and data["detail"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert [r.levelno for r in caplog.records if "cannot parse" in r.getMessage()] == [logging.WARNING]


async def test_the_byte_budget_makes_readers_wait_and_wakes_them_when_bytes_are_given_back():
    budget = webhooks.ByteBudget(100)
    await budget.take(60)
    waiting = asyncio.create_task(budget.take(50))
    await asyncio.sleep(0.05)
    assert not waiting.done() and budget.available == 40
    budget.give_back(60)
    await asyncio.wait_for(waiting, 5)
    assert budget.available == 50
