"""Retention: ended requests older than PAO_REQUEST_RETENTION_DAYS go, with everything of theirs."""

from __future__ import annotations

import dataclasses

import pytest

from app.config import ConfigError, Settings
from app.jobs import enqueue
from app.jobs.queries import RUN_NOW
from app.requests import retention
from app.requests.config import request_settings
from app.service import make_worker
from tests.requests_support import BODY

# Each request's status and the age of its last change, in days.
AGES = {"old-completed": ("completed", 91), "old-failed": ("failed", 120),
        "old-cancelled": ("cancelled", 200), "old-but-open": ("in_progress", 400),
        "recent-completed": ("completed", 10)}


async def _requests(hooks, pool) -> dict[str, int]:
    """One stored request (steps, events, a ticket) per entry of AGES; name -> row id."""
    ids = {}
    for name, (status, days) in AGES.items():
        _, created = await hooks.call("POST", "/api/v1/requests", BODY)
        pk = await pool.fetchval("SELECT id FROM service_requests WHERE request_id = $1",
                                 created["request_id"])
        await pool.execute("UPDATE service_requests SET status = $2,"
                           " updated_at = now() - make_interval(days => $3) WHERE id = $1", pk, status, days)
        step = await pool.fetchval("SELECT min(id) FROM request_steps WHERE request_id = $1", pk)
        await pool.execute("INSERT INTO manual_tickets (request_id, step_pk, ticket_system, ticket_id)"
                           " VALUES ($1, $2, 'email', $3)", pk, step, name)
        ids[name] = pk
    return ids


async def _kept(pool) -> set[int]:
    return {r["id"] for r in await pool.fetch("SELECT id FROM service_requests")}


async def test_ended_requests_past_retention_are_purged_in_batches_with_their_rows(hooks, pool):
    ids = await _requests(hooks, pool)
    gone = {ids["old-completed"], ids["old-failed"], ids["old-cancelled"]}
    # A batch of 2 for 3 requests: the purge goes on until a batch comes back short.
    assert await retention.purge(pool, 90, batch=2) == 3
    assert await _kept(pool) == set(ids.values()) - gone
    for table in ("request_steps", "request_events", "manual_tickets"):
        left = {r["request_id"] for r in await pool.fetch(f"SELECT DISTINCT request_id FROM {table}")}
        assert left == {ids["old-but-open"], ids["recent-completed"]}, table
    assert await pool.fetchval("SELECT count(*) FROM request_step_attempts a JOIN request_steps s"
                               " ON s.id = a.step_pk WHERE s.request_id = ANY($1::bigint[])", list(gone)) == 0
    assert await retention.purge(pool, 90) == 0


async def test_the_periodic_job_purges_requeues_itself_and_zero_keeps_everything(hooks, pool, runtime):
    ids = await _requests(hooks, pool)
    await retention.on_startup(runtime)
    job = await pool.fetchrow("SELECT * FROM jobs WHERE task = $1", retention.TASK)
    assert job["queueing_lock"] == retention.LOCK
    await retention.on_startup(runtime)  # a second process starting: still one waiting
    assert await pool.fetchval("SELECT count(*) FROM jobs WHERE task = $1", retention.TASK) == 1
    await pool.execute("DELETE FROM jobs WHERE task <> $1", retention.TASK)  # not the request steps
    await pool.fetchval(RUN_NOW, job["id"])
    assert await make_worker(runtime, 1).run_one()
    done = await pool.fetchrow("SELECT status, result FROM jobs WHERE id = $1", job["id"])
    assert (done["status"], done["result"]) == ("succeeded", {"requests": 3})
    assert await _kept(pool) == {ids["old-but-open"], ids["recent-completed"]}
    assert await pool.fetchval("SELECT count(*) FROM jobs WHERE task = $1 AND status = 'todo'"
                               " AND scheduled_at > now() + interval '50 minutes'", retention.TASK) == 1

    # PAO_REQUEST_RETENTION_DAYS=0: nothing is scheduled, and a queued run deletes nothing.
    runtime.settings.extra["requests"] = dataclasses.replace(runtime.settings.extra["requests"],
                                                             retention_days=0)
    await pool.execute("DELETE FROM jobs")
    await retention.on_startup(runtime)
    assert await pool.fetchval("SELECT count(*) FROM jobs") == 0
    await pool.execute("UPDATE service_requests SET status = 'completed'")
    queued = (await enqueue(pool, retention.TASK, {})).job_id
    assert await make_worker(runtime, 1).run_one()
    assert (await pool.fetchval("SELECT result FROM jobs WHERE id = $1", queued))["skipped"]
    assert len(await _kept(pool)) == 2


def test_the_retention_variable_defaults_to_90_days_and_a_bad_value_is_named():
    assert request_settings(Settings.from_env({})).retention_days == 90
    assert request_settings(Settings.from_env({"PAO_REQUEST_RETENTION_DAYS": "0"})).retention_days == 0
    for bad in ("-1", "ninety"):
        with pytest.raises(ConfigError) as exc:
            Settings.from_env({"PAO_REQUEST_RETENTION_DAYS": bad})
        [problem] = exc.value.problems
        assert problem.startswith("PAO_REQUEST_RETENTION_DAYS: ")


async def test_a_control_action_on_a_request_purged_meanwhile_is_a_clear_refusal(hooks, pool, runtime):
    from app.requests import executor

    ids = await _requests(hooks, pool)
    await retention.purge(pool, 90)
    gone, settings = ids["old-failed"], runtime.settings
    for action in (lambda: executor.cancel_request(pool, gone, "root", settings=settings),
                   lambda: executor.retry_step(pool, gone, "hook-app.create", "root", settings=settings)):
        with pytest.raises(executor.TransitionError, match="no longer exists"):
            await action()
