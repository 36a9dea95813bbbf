"""Submissions stored together (app/requests/batch.py): each answered as if it were alone."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from app.requests import store
from app.requests.batch import SubmissionWriter
from app.requests.submit import submit_answer
from tests.requests_support import SECRET_KEY
from tests.test_requests_submit import seed_body

SARAH = {"user_id": "sarah-123", "team": "customer-experience", "email": "sarah@example.com"}


def _item(system: str = "billing") -> dict[str, Any]:
    return {"catalog_item": "access-grant", "parameters": {"system": system}}


async def _one_batch(writer: SubmissionWriter, submissions: list[tuple[dict[str, Any], str | None]],
                     ) -> list[Any]:
    """Submit all at once as sarah; every answer (or exception), after checking they made one batch."""
    answers = await asyncio.gather(*[
        writer.submit(body, requester=SARAH, submitted_by="sarah-123", secret_key=SECRET_KEY,
                      idempotency_key=key) for body, key in submissions], return_exceptions=True)
    assert writer.largest_batch == len(submissions)  # the premise: they were stored together
    return answers


@pytest.fixture
async def writer(runtime, catalog):
    writer = SubmissionWriter(runtime, writers=1)
    yield writer
    await writer.stop()


async def _stored(pool: Any, request_id: str) -> dict[str, Any]:
    """What a submission wrote, without ids and times: request, steps, jobs, events."""
    pk = await pool.fetchval("SELECT id FROM service_requests WHERE request_id = $1", request_id)
    request = dict(await pool.fetchrow(
        "SELECT status, catalog_item, catalog_bundle, catalog_version, bundle_parameters, item_parameters,"
        " snapshot, requester_user_id, requester_team, requester_email, submitted_by, idempotency_key"
        " FROM service_requests WHERE id = $1", pk))
    steps = [tuple(r) for r in await pool.fetch(
        "SELECT step_id, owner_name, name, step_type, config, depends_on, outputs_declared, on_failure,"
        " position, status FROM request_steps WHERE request_id = $1 ORDER BY position", pk)]
    jobs = [tuple(r) for r in await pool.fetch(
        "SELECT s.step_id, j.task, j.status, j.queueing_lock = 'request-step:' || s.id,"
        " j.lock = 'request-step:' || s.id, j.priority, j.max_attempts"
        " FROM jobs j JOIN request_steps s ON (j.args->>'step')::bigint = s.id"
        " WHERE s.request_id = $1 ORDER BY s.position", pk)]
    # 'submitted' first; the steps queued with it in any order (a lone one's follow its UPDATE's).
    events = [tuple(r) for r in await pool.fetch(
        "SELECT event, step_id, from_status, to_status, actor, detail FROM request_events"
        " WHERE request_id = $1 ORDER BY id", pk)]
    events = events[:1] + sorted(events[1:])
    return {"request": request, "steps": steps, "jobs": jobs, "events": events}


async def test_a_batch_stores_what_a_lone_submission_stores(writer, runtime, pool):
    alone_status, alone = await submit_answer(pool, seed_body(), requester=SARAH, submitted_by="sarah-123",
                                              secret_key=SECRET_KEY, idempotency_key=None,
                                              settings=runtime.settings)
    answers = await _one_batch(writer, [(seed_body(), None), (_item(), None), (seed_body(), "k1")])
    assert [a[0] for a in answers] == [201, 201, 201] and alone_status == 201
    ids = [a[1]["request_id"] for a in answers]
    assert len({*ids, alone["request_id"]}) == 4
    expected = await _stored(pool, alone["request_id"])
    assert expected["jobs"] and expected["events"][0][0] == "submitted"
    assert await _stored(pool, ids[0]) == expected
    keyed = await _stored(pool, ids[2])
    assert keyed["request"].pop("idempotency_key") == "k1"
    expected["request"].pop("idempotency_key")
    assert keyed == expected
    single = await _stored(pool, ids[1])
    assert [s[-1] for s in single["steps"]] == ["queued"] and len(single["jobs"]) == 1
    bundle, item = answers[0][1], answers[1][1]
    assert bundle["catalog_bundle"] == "full-stack-web-app" and item["catalog_item"] == "access-grant"
    for answer in (bundle, item):
        assert answer["status"] == "submitted"
        assert answer["href"] == f"/api/v1/requests/{answer['request_id']}"


async def test_two_submissions_with_one_key_in_one_batch_make_one_request(writer, pool):
    other = _item("crm")
    answers = await _one_batch(writer, [(_item(), "form-7"), (_item(), "form-7"), (other, "form-7"),
                                        (_item(), None)])
    (s1, first), (s2, again), (s3, conflict), (s4, unkeyed) = answers
    assert (s1, s2, s3, s4) == (201, 201, 409, 201)
    assert again == first  # a retry gets the first request back, as after a commit
    assert conflict["error"] == "conflict" and conflict["request_id"] == first["request_id"]
    assert "form-7" in conflict["detail"]
    assert unkeyed["request_id"] != first["request_id"]
    assert await pool.fetchval("SELECT count(*) FROM service_requests") == 2
    # A later batch with the key committed before: the same answers.
    writer.largest_batch = 0
    later = await _one_batch(writer, [(_item(), "form-7"), (other, "form-7")])
    assert later == [(201, first), (409, conflict)]
    assert await pool.fetchval("SELECT count(*) FROM service_requests") == 2


async def test_a_bad_submission_in_a_batch_costs_only_itself(writer, pool):
    unstorable = seed_body()
    unstorable["bundle_parameters"]["solution_name"] = "nul\u0000"  # PostgreSQL's jsonb would refuse it
    invalid = seed_body()
    invalid["item_parameters"]["eks-container-app"]["replicas"] = 11
    old_version = {**_item(), "version": "0.9.0"}
    answers = await _one_batch(writer, [
        (seed_body(), None), (unstorable, None), (invalid, None), ({"catalog_item": "nope"}, None),
        (old_version, None), (_item(), "k")])
    good, bad, refused, unknown, conflict, keyed = answers
    # Refused by the field checks before the batch's statement (a colliding request id,
    # below, is what makes the statement itself fail); nothing of it was stored.
    assert bad[0] == 422 and bad[1]["errors"][0]["path"] == "bundle_parameters.solution_name"
    assert refused[0] == 422 and refused[1]["errors"][0]["code"] == "max_value"
    assert unknown[0] == 404 and conflict[0] == 409 and conflict[1]["current_version"] == "1.0.0"
    assert good[0] == keyed[0] == 201
    rows = await pool.fetch("SELECT request_id FROM service_requests ORDER BY id")
    assert {r["request_id"] for r in rows} == {good[1]["request_id"], keyed[1]["request_id"]}
    assert await pool.fetchval("SELECT count(DISTINCT request_id) FROM request_steps") == 2
    assert await pool.fetchval("SELECT count(DISTINCT request_id) FROM request_events") == 2


async def test_a_request_id_taken_in_a_batch_stores_each_alone_with_a_new_id(writer, pool, monkeypatch):
    answers = await _one_batch(writer, [(_item(), None)])
    taken = answers[0][1]["request_id"]
    draws = iter([taken, "req-20260101-aaaaaaaa", "req-20260101-bbbbbbbb", "req-20260101-cccccccc"])
    monkeypatch.setattr(store, "new_request_id", lambda: next(draws))
    writer.largest_batch = 0
    answers = await _one_batch(writer, [(_item(), None), (seed_body(), None)])
    assert [a[0] for a in answers] == [201, 201]
    assert {a[1]["request_id"] for a in answers} == {"req-20260101-bbbbbbbb", "req-20260101-cccccccc"}
    assert await pool.fetchval("SELECT count(*) FROM service_requests") == 3
    assert await pool.fetchval(
        "SELECT count(*) FROM request_events WHERE event = 'submitted'") == 3


async def test_nan_and_infinity_are_refused_as_invalid_json(rapi, pool):
    # Python's json reads them; JSON and PostgreSQL's jsonb have no such numbers.
    for constant in (b"NaN", b"Infinity", b"-Infinity"):
        resp = await rapi.client.post("/api/v1/requests", data=b'{"catalog_item": "vault-app", '
                                      b'"parameters": {"ratio": ' + constant + b"}}", headers={
                                          "Authorization": f"Bearer {rapi.tokens['sarah']}",
                                          "Content-Type": "application/json"})
        assert resp.status == 400 and (await resp.json())["error"] == "invalid JSON"
    assert await pool.fetchval("SELECT count(*) FROM service_requests") == 0
