"""A real ``python -m app worker`` SIGKILLed mid-step: the steps are retried to completion, the
HTTP endpoint sees one logical call (one Idempotency-Key), and no Jira ticket is opened twice."""

from __future__ import annotations

import asyncio
import os
import signal

from tests.requests_support import BODY, SECRET_KEY, status_of
from tests.support import wait_for
from tests.test_mirror_worker_kill import start_worker, stop


async def test_a_worker_killed_mid_step_leaves_the_steps_retried_and_nothing_done_twice(
        hooks, endpoint, jira, db_dsn, tmp_path, pool):
    endpoint.idempotent = True
    endpoint.hold["/create"] = asyncio.Event()
    endpoint.answer("/create", (200, {"endpoint": "https://shop"}))
    endpoint.answer("/notify", (200, {}))
    endpoint.answer("/audit", (200, {}))
    jira.hold_create = asyncio.Event()
    _, http_request = await hooks.call("POST", "/api/v1/requests", BODY)
    _, ticket_request = await hooks.call("POST", "/api/v1/requests", {
        "catalog_item": "mysql-database", "parameters": {"database_name": "orders"}})

    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PAO_")},
           "PAO_DB_URL": db_dsn, "PAO_DATA_DIR": str(tmp_path / "worker-data"),
           "PAO_SECRET_KEY": SECRET_KEY, "PAO_JIRA_URL": jira.url, "PAO_JIRA_USER": jira.user,
           "PAO_JIRA_TOKEN": jira.token, "PAO_TICKET_POLL_INTERVAL": "1h",
           "PAO_WORKERS": "4", "PAO_JOB_POLL_INTERVAL": "0.2", "PAO_JOB_STALL_TIMEOUT": "2"}
    first = await start_worker(env, tmp_path / "worker1.log")
    try:
        await asyncio.wait_for(jira.create_held.wait(), 60)
        await wait_for(lambda: asyncio.sleep(0, endpoint.calls_to("/create")), timeout=60,
                       what="the POST to be in flight")
    finally:
        await stop(first, signal.SIGKILL)  # mid-POST and mid-ticket
    endpoint.hold["/create"].set()
    jira.hold_create.set()
    second = await start_worker(env, tmp_path / "worker2.log")
    try:
        done = await status_of(hooks, http_request["href"], "completed")
        await status_of(hooks, ticket_request["href"], "waiting_manual")
    finally:
        await stop(second, signal.SIGTERM)
    creates = endpoint.calls_to("/create")
    assert len(creates) == 2  # the killed attempt and its retry...
    assert {c["headers"]["Idempotency-Key"] for c in creates} == {
        f"{http_request['request_id']}/hook-app.create"}  # ...one logical call
    assert [k for k in endpoint.effects if k[0] == "/create"] == [
        ("/create", f"{http_request['request_id']}/hook-app.create")]
    assert done["outputs"] == {"hook-app": {"endpoint": "https://shop"}}
    assert len(jira.issues) == 1  # found again by its label, not opened twice
    _, step = await hooks.call("GET", http_request["href"] + "/steps/hook-app.create")
    assert [a["status"] for a in step["attempts"]] == ["interrupted", "completed"]
    outcomes = [r["outcome"] for r in await pool.fetch(
        "SELECT a.outcome FROM job_attempts a JOIN jobs j ON j.id = a.job_id"
        " WHERE j.args->>'step' = (SELECT id::text FROM request_steps WHERE step_id = 'hook-app.create')"
        " ORDER BY a.attempt")]
    assert outcomes == ["stalled", "succeeded"]
