"""Webhook intake: signatures, status codes, durable recording, redeliveries."""

from __future__ import annotations

import json

import pytest

from app.web import create_app
from app.webhooks import INTAKE_WRITER
from tests.conftest import with_settings
from tests.support import sign, signed_headers, webhook

URL = "/api/v1/webhooks/github"


@pytest.fixture
async def client(aiohttp_client, runtime):
    return await aiohttp_client(create_app(runtime))


async def events(pool):
    """The stored deliveries, payloads read as JSON (they are kept as the text sent)."""
    rows = [dict(r) for r in await pool.fetch("SELECT * FROM webhook_events ORDER BY id")]
    for row in rows:
        if row["payload"] is not None:
            row["payload"] = json.loads(row["payload"])
    return rows


async def test_ping_answers_pong_and_is_recorded(client, pool):
    body, headers = webhook("ping", {"zen": "Design for failure.", "hook_id": 123456})
    resp = await client.post(URL, data=body, headers=headers)
    assert resp.status == 200
    assert await resp.json() == {"status": "pong", "message": "Webhook configured successfully"}
    [row] = await events(pool)
    assert row["event"] == "ping" and row["signature_valid"] and row["status"] == "processed"
    assert row["payload"]["zen"] == "Design for failure."


async def test_the_payload_is_kept_exactly_as_sent_and_reads_as_jsonb(client, pool):
    body = b'{ "zen": "Keep it logically awesome.",\n  "hook_id": 7, "hook": {"b": 1, "a": [2.0]} }'
    headers = signed_headers("ping", body, "as-sent")
    assert (await client.post(URL, data=body, headers=headers)).status == 200
    row = await pool.fetchrow("SELECT payload, payload::jsonb->'hook'->'a' AS a FROM webhook_events")
    assert row["payload"] == body.decode()  # whitespace, key order and 2.0 as GitHub wrote them
    assert row["a"] == [2.0]


async def test_seed_path_is_served_too(client):
    body, headers = webhook("ping", {"zen": "x"})
    resp = await client.post("/webhooks/github", data=body, headers=headers)
    assert resp.status == 200


@pytest.mark.parametrize("bad", ["missing", "wrong-secret", "garbage"])
async def test_bad_signature_is_401_recorded_not_processed(client, pool, bad):
    body, headers = webhook("push", {"ref": "refs/heads/main"})
    if bad == "missing":
        del headers["X-Hub-Signature-256"]
    elif bad == "wrong-secret":
        headers["X-Hub-Signature-256"] = sign(body, "not-the-secret")
    else:
        headers["X-Hub-Signature-256"] = "sha1=abc"
    resp = await client.post(URL, data=body, headers=headers)
    assert resp.status == 401
    data = await resp.json()
    assert data["error"] == "invalid signature"
    [row] = await events(pool)
    assert row["signature_valid"] is False and row["status"] == "rejected"
    assert row["payload"] is None  # unauthenticated bodies are not stored
    assert await pool.fetchval("SELECT count(*) FROM jobs") == 0


async def test_signature_with_non_ascii_characters_is_401_not_500(client, pool):
    body, headers = webhook("push", {"ref": "refs/heads/main"})
    headers["X-Hub-Signature-256"] = "sha256=" + "\u00e9" * 64
    resp = await client.post(URL, data=body, headers=headers)
    assert resp.status == 401
    assert (await resp.json())["error"] == "invalid signature"
    [row] = await events(pool)
    assert row["signature_valid"] is False and row["status"] == "rejected"


async def test_payload_postgres_cannot_store_is_400_and_recorded(client, pool):
    # JSON allows \u0000 in strings; PostgreSQL's jsonb does not.
    body, headers = webhook("ping", {"zen": "nul \u0000 here"})
    resp = await client.post(URL, data=body, headers=headers)
    assert resp.status == 400
    assert "\\u0000" in (await resp.json())["detail"]
    [row] = await events(pool)
    assert row["status"] == "rejected" and row["signature_valid"] and row["payload"] is None


async def test_rotated_secrets_both_accepted(aiohttp_client, runtime):
    runtime.settings = with_settings(runtime.settings, webhook_secrets=("old-secret", "new-secret"))
    client = await aiohttp_client(create_app(runtime))
    for secret in ("old-secret", "new-secret"):
        body, headers = webhook("ping", {"zen": "z"}, secret=secret)
        assert (await client.post(URL, data=body, headers=headers)).status == 200
    body, headers = webhook("ping", {"zen": "z"}, secret="other")
    assert (await client.post(URL, data=body, headers=headers)).status == 401


async def test_no_secret_configured_refuses_everything(aiohttp_client, runtime):
    runtime.settings = with_settings(runtime.settings, webhook_secrets=())
    client = await aiohttp_client(create_app(runtime))
    body, headers = webhook("ping", {"zen": "z"})
    resp = await client.post(URL, data=body, headers=headers)
    assert resp.status == 401
    assert "PAO_WEBHOOK_SECRET" in (await resp.json())["detail"]


async def test_form_encoded_is_415(client):
    body = b"payload=%7B%7D"
    headers = {"X-GitHub-Event": "push", "X-GitHub-Delivery": "d-1",
               "X-Hub-Signature-256": sign(body),
               "Content-Type": "application/x-www-form-urlencoded"}
    resp = await client.post(URL, data=body, headers=headers)
    assert resp.status == 415
    assert "application/json" in (await resp.json())["detail"]


async def test_malformed_json_is_400(client, pool):
    body = b'{"ref": '
    headers = signed_headers("push", body, "d-2")
    resp = await client.post(URL, data=body, headers=headers)
    assert resp.status == 400
    assert (await resp.json())["error"] == "malformed JSON"
    [row] = await events(pool)
    assert row["status"] == "rejected" and row["signature_valid"]


async def test_json_that_is_not_an_object_is_400_and_recorded(client, pool):
    body = b"[1, 2]"
    headers = signed_headers("push", body, "d-3")
    resp = await client.post(URL, data=body, headers=headers)
    assert resp.status == 400
    [row] = await events(pool)
    assert row["status"] == "rejected" and row["reason"] == "payload is not a JSON object"


async def test_missing_event_header_is_400(client):
    body, headers = webhook("push", {})
    del headers["X-GitHub-Event"]
    resp = await client.post(URL, data=body, headers=headers)
    assert resp.status == 400
    assert "X-GitHub-Event" in (await resp.json())["detail"]


async def test_oversized_body_is_413_without_reading_it(client):
    body, headers = webhook("push", {})
    headers["Content-Length"] = str(26 * 1024 * 1024)
    # Claim a huge body but send only a little: the server must answer from the header.
    resp = await client.post(URL, data=body, headers=headers)
    assert resp.status == 413
    assert (await resp.json())["error"] == "payload too large"


async def test_oversized_chunked_body_is_413(client):
    chunk = b"x" * (1024 * 1024)

    async def gen():
        for _ in range(26):
            yield chunk

    headers = {"X-GitHub-Event": "push", "X-GitHub-Delivery": "d-4",
               "X-Hub-Signature-256": "sha256=00", "Content-Type": "application/json"}
    resp = await client.post(URL, data=gen(), headers=headers)
    assert resp.status == 413


@pytest.mark.parametrize("event", ["issues", "fork", "made_up_event", "release"])
async def test_events_without_handler_are_acknowledged_and_recorded(client, pool, event):
    body, headers = webhook(event, {"action": "created", "repository": {"full_name": "o/r"}})
    resp = await client.post(URL, data=body, headers=headers)
    assert resp.status == 200
    data = await resp.json()
    assert data["status"] == "ignored" and event in data["reason"]
    [row] = await events(pool)
    assert row["status"] == "ignored" and row["repository"] == "o/r" and row["action"] == "created"


async def test_redelivery_is_recorded_as_another_attempt(client, pool):
    payload = {"zen": "again"}
    for _ in range(2):
        body, headers = webhook("ping", payload, delivery_id="same-delivery")
        assert (await client.post(URL, data=body, headers=headers)).status == 200
    rows = await events(pool)
    assert [r["attempt"] for r in rows] == [1, 2]
    assert {r["delivery_id"] for r in rows} == {"same-delivery"}


INSTALLATION = {
    "action": "created",
    "installation": {"id": 42, "account": {"login": "acme", "type": "Organization"}},
    "repositories": [{"id": 7, "full_name": "acme/catalog"}, {"id": 8, "full_name": "acme/api"}],
}


async def test_installation_created_is_remembered_inline(client, pool):
    body, headers = webhook("installation", INSTALLATION)
    resp = await client.post(URL, data=body, headers=headers)
    assert resp.status == 200
    assert (await resp.json())["status"] == "processed"
    assert await pool.fetchval("SELECT account_login FROM installations WHERE id = 42") == "acme"
    names = await pool.fetch("SELECT full_name FROM installation_repositories ORDER BY 1")
    assert [r["full_name"] for r in names] == ["acme/api", "acme/catalog"]

    removed = {"action": "removed", "installation": INSTALLATION["installation"],
               "repositories_added": [], "repositories_removed": [{"id": 8, "full_name": "acme/api"}]}
    body, headers = webhook("installation_repositories", removed)
    assert (await client.post(URL, data=body, headers=headers)).status == 200
    names = await pool.fetch("SELECT full_name FROM installation_repositories")
    assert [r["full_name"] for r in names] == ["acme/catalog"]


async def test_payload_missing_a_needed_field_is_400_naming_it(client, pool):
    payload = {"action": "created", "installation": {"id": 42}}
    body, headers = webhook("installation", payload)
    resp = await client.post(URL, data=body, headers=headers)
    assert resp.status == 400
    data = await resp.json()
    assert "installation.account" in data["detail"]
    assert await pool.fetchval("SELECT count(*) FROM installations") == 0
    [row] = await events(pool)
    assert row["status"] == "rejected" and "installation.account" in row["reason"]


@pytest.mark.parametrize("event,payload,field", [
    ("installation", {"action": "created", "installation": {"id": 42, "account": {"login": "a"}},
                      "repositories": [{"full_name": "a/r"}]}, "repositories[0].id"),
    ("installation", {"action": "created", "installation": {"id": "x", "account": {"login": "a"}}},
     "installation.id"),
    ("installation_repositories", {"action": "removed", "installation":
                                   {"id": 42, "account": {"login": "a"}},
                                   "repositories_removed": ["a/r"]}, "repositories_removed[0]"),
    ("installation_repositories", {"action": "added", "installation":
                                   {"id": 42, "account": {"login": "a"}},
                                   "repositories_added": [{"id": 7}]},
     "repositories_added[0].full_name"),
])
async def test_installation_payload_with_bad_repositories_is_400_naming_the_field(
        client, pool, event, payload, field):
    body, headers = webhook(event, payload)
    resp = await client.post(URL, data=body, headers=headers)
    assert resp.status == 400
    assert field in (await resp.json())["detail"]
    assert await pool.fetchval("SELECT count(*) FROM installations") == 0
    [row] = await events(pool)
    assert row["status"] == "rejected" and field in row["reason"]


async def test_delivery_whose_handler_crashes_is_recorded_as_failed(client, pool, monkeypatch):
    """A handler bug answers 500 (so GitHub shows it for redelivery), but the delivery is kept."""
    from gidgethub import routing

    import app.handlers

    crashing = routing.Router()

    @crashing.register("deployment")
    async def buggy(event, gh, *args, intake, **kwargs):
        await intake.enqueue("purge_history", {})
        raise RuntimeError("handler bug with ghs_" + "Q" * 36)

    client.app[INTAKE_WRITER].router = routing.Router(app.handlers.router, crashing)
    body, headers = webhook("deployment", {"action": "created"}, delivery_id="crash-1")
    resp = await client.post(URL, data=body, headers=headers)
    assert resp.status == 500
    assert (await resp.json())["error"] == "internal error"
    [row] = await events(pool)
    assert row["delivery_id"] == "crash-1" and row["status"] == "failed"
    assert row["payload"] == {"action": "created"}
    assert "handler bug" in row["error"] and "ghs_" not in row["error"]
    assert await pool.fetchval("SELECT count(*) FROM jobs") == 0  # its work rolled back

    # In a burst, the crash costs no other delivery its answer or its row.
    import asyncio

    requests = []
    for i in range(24):
        event = "deployment" if i % 6 == 0 else "ping"
        body, headers = webhook(event, {"action": "created"}, delivery_id=f"b{i}")
        requests.append(client.post(URL, data=body, headers=headers))
    responses = await asyncio.gather(*requests)
    assert [r.status for r in responses] == [500 if i % 6 == 0 else 200 for i in range(24)]
    stored = {r["delivery_id"]: r["status"] for r in await events(pool)}
    assert {d: s for d, s in stored.items() if d.startswith("b")} == {
        f"b{i}": "failed" if i % 6 == 0 else "processed" for i in range(24)}
    assert client.app[INTAKE_WRITER].largest_batch > 1


async def test_handler_log_lines_carry_the_delivery_id(client, monkeypatch):
    """Handlers run in the intake writer's task; their log lines still name the delivery."""
    import asyncio

    from gidgethub import routing

    import app.handlers
    from app.log import delivery_id_var

    seen: dict[str, str | None] = {}
    recording = routing.Router()

    @recording.register("deployment")
    async def remember(event, gh, *args, intake, **kwargs):
        seen[event.delivery_id] = delivery_id_var.get()
        intake.handled("seen")

    client.app[INTAKE_WRITER].router = routing.Router(app.handlers.router, recording)
    requests = []
    for i in range(12):
        body, headers = webhook("deployment", {"action": "created"}, delivery_id=f"log-{i}")
        requests.append(client.post(URL, data=body, headers=headers))
    assert all(r.status == 200 for r in await asyncio.gather(*requests))
    assert seen == {f"log-{i}": f"log-{i}" for i in range(12)}


async def test_health_and_ready(client):
    assert (await client.get("/healthz")).status == 200
    resp = await client.get("/readyz")
    assert resp.status == 200
    assert (await resp.json())["database"] == "ok"


async def test_unknown_route_is_json_404(client):
    resp = await client.get("/nope")
    assert resp.status == 404
    assert json.loads(await resp.text())["error"] == "not found"


async def test_concurrent_deliveries_share_commits_but_not_failures(client, pool):
    """A burst is written in shared transactions; a bad delivery in it costs no other."""
    import asyncio

    def installation(i: int, broken: bool) -> dict:
        inst = {"id": 1000 + i} if broken else {"id": 1000 + i, "account": {"login": f"org{i}"}}
        return {"action": "created", "installation": inst, "repositories": []}

    broken = {3, 17, 31}
    requests = []
    for i in range(40):
        body, headers = webhook("installation", installation(i, i in broken), delivery_id=f"d{i}")
        requests.append(client.post(URL, data=body, headers=headers))
    responses = await asyncio.gather(*requests)
    statuses = {f"d{i}": r.status for i, r in enumerate(responses)}
    assert {d for d, s in statuses.items() if s == 400} == {f"d{i}" for i in broken}
    assert all(s == 200 for d, s in statuses.items() if int(d[1:]) not in broken)
    stored = {r["delivery_id"]: r["status"] for r in await events(pool)}
    assert len(stored) == 40
    assert {d for d, s in stored.items() if s == "rejected"} == {f"d{i}" for i in broken}
    logins = {r["account_login"] for r in await pool.fetch("SELECT account_login FROM installations")}
    assert logins == {f"org{i}" for i in range(40) if i not in broken}
    assert client.app[INTAKE_WRITER].largest_batch > 1  # deliveries did share a transaction


async def test_a_failed_batch_keeps_the_outcome_of_every_other_delivery(client, pool):
    """Deliveries that needed no handler keep their status when their batch is redone."""
    import asyncio

    requests, expected = [], {}
    for i in range(30):
        kind = i % 4
        if kind == 0:  # a handler rejects it: the shared transaction fails
            body, headers = webhook("installation", {"action": "created",
                                                     "installation": {"id": i}},
                                    delivery_id=f"d{i}")
            expected[f"d{i}"] = "rejected"
        elif kind == 1:
            body, headers = webhook("gollum", {"pages": []}, delivery_id=f"d{i}")
            expected[f"d{i}"] = "ignored"
        elif kind == 2:
            body, headers = webhook("ping", {"zen": "x"}, delivery_id=f"d{i}")
            expected[f"d{i}"] = "processed"
        else:
            body, headers = webhook("push", {"ref": "x"}, secret="forged", delivery_id=f"d{i}")
            expected[f"d{i}"] = "rejected"
        requests.append(client.post(URL, data=body, headers=headers))
    responses = await asyncio.gather(*requests)
    for i, resp in enumerate(responses):
        if i % 4 == 1:
            assert resp.status == 200
            assert await resp.json() == {"status": "ignored", "reason": "no handler for gollum"}
    stored = {r["delivery_id"]: (r["status"], r["signature_valid"]) for r in await events(pool)}
    assert {d: s for d, (s, _) in stored.items()} == expected
    assert all(valid == (int(d[1:]) % 4 != 3) for d, (_, valid) in stored.items())
    assert client.app[INTAKE_WRITER].largest_batch > 1


async def test_a_burst_mixing_handlers_with_and_without_database_work_is_all_kept(client, pool):
    """Pushes to another repository need no database, installations do: in one batch the
    transaction begins at the first handler that asks, and every row and write commits.
    A delivery PostgreSQL refuses (\\u0000) costs the other pushes nothing."""
    import asyncio

    def push(i: int) -> dict:
        return {"ref": "refs/heads/main", "after": "a" * 40, "head_commit": {
                    "message": "nul \u0000" if i == 13 else f"commit {i}"},
                "repository": {"full_name": f"other/repo{i}",
                               "clone_url": f"https://github.com/other/repo{i}.git"}}

    requests = []
    for i in range(36):
        if i % 3 == 0:
            body, headers = webhook("installation", {
                "action": "created", "installation": {"id": 500 + i, "account": {"login": f"o{i}"}},
                "repositories": []}, delivery_id=f"m{i}")
        else:
            body, headers = webhook("push", push(i), delivery_id=f"m{i}")
        requests.append(client.post(URL, data=body, headers=headers))
    responses = await asyncio.gather(*requests)
    assert [r.status for r in responses] == [400 if i == 13 else 200 for i in range(36)]
    stored = {r["delivery_id"]: r["status"] for r in await events(pool)}
    assert stored == {f"m{i}": "rejected" if i == 13 else "processed" if i % 3 == 0 else "ignored"
                      for i in range(36)}
    logins = {r["account_login"] for r in await pool.fetch("SELECT account_login FROM installations")}
    assert logins == {f"o{i}" for i in range(0, 36, 3)}
    assert client.app[INTAKE_WRITER].largest_batch > 1


def test_token_bucket_bounds_the_audit_rate(monkeypatch):
    from app import webhooks

    clock = [1000.0]
    monkeypatch.setattr(webhooks.time, "monotonic", lambda: clock[0])
    bucket = webhooks.TokenBucket(rate=10, burst=5)
    assert [bucket.take() for _ in range(7)] == [True] * 5 + [False] * 2
    clock[0] += 0.35  # 3.5 tokens' worth of time
    assert [bucket.take() for _ in range(4)] == [True] * 3 + [False]
