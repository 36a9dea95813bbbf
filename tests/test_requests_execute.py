"""Executing requests on the job queue: HttpPost against a real HTTP server, retries, polling,
failures, manual completion, retry and cancel, events and the live stream."""

from __future__ import annotations

import asyncio
import json

from tests.requests_support import BODY, status_of
from tests.support import wait_for


async def test_steps_run_in_dependency_order_with_outputs_and_idempotency_keys(hooks, endpoint, worker, pool):
    endpoint.answer("/create", (200, {"endpoint": "https://shop.example.com", "noise": 1}))
    endpoint.answer("/notify", (200, {}))
    endpoint.answer("/audit", (201, {"ok": True}))
    _, created = await hooks.call("POST", "/api/v1/requests", BODY)
    done = await status_of(hooks, created["href"], "completed")
    rid = created["request_id"]
    assert done["outputs"] == {"hook-app": {"endpoint": "https://shop.example.com"}}
    [create] = endpoint.calls_to("/create")
    assert create["json"] == {"name": "shop", "who": "sarah-123", "token": "tok-abcdef"}
    assert create["headers"]["Idempotency-Key"] == f"{rid}/hook-app.create"
    assert create["headers"]["X-Team"] == "customer-experience"
    assert create["headers"]["Authorization"] == "Bearer hook-secret-1"
    [notify] = endpoint.calls_to("/notify")
    assert notify["json"] == {"endpoint": "https://shop.example.com", "request": rid}
    assert "Authorization" not in notify["headers"]  # the credential is for /create only
    # notify started only after create completed
    assert endpoint.calls.index(create) < endpoint.calls.index(notify)
    steps = {s["step_id"]: s for s in done["fulfillment"]["steps"]}
    assert all(s["status"] == "completed" for s in steps.values())
    # The secret is erased once the request ends.
    assert await pool.fetchval("SELECT secrets FROM service_requests") is None
    _, events = await hooks.call("GET", created["href"] + "/events")
    transitions = [(e["step_id"], e["to_status"]) for e in events["events"]]
    assert ("hook-app.notify", "queued") in transitions
    assert transitions.index(("hook-app.create", "completed")) < transitions.index(("hook-app.notify",
                                                                                    "queued"))
    assert transitions[-1] == (None, "completed")


async def test_5xx_and_timeouts_are_retried_with_the_same_key_4xx_fails_at_once(hooks, endpoint, worker):
    endpoint.answer("/create", (503, {"error": "busy"}), (200, {"endpoint": "e"}))
    endpoint.answer("/notify", (422, {"error": "bad endpoint"}))
    endpoint.answer("/audit", (200, {}))
    _, created = await hooks.call("POST", "/api/v1/requests", BODY)
    failed = await status_of(hooks, created["href"], "failed")
    calls = endpoint.calls_to("/create")
    assert len(calls) == 2 and len({c["headers"]["Idempotency-Key"] for c in calls}) == 1
    _, create = await hooks.call("GET", created["href"] + "/steps/hook-app.create")
    assert [a["status"] for a in create["attempts"]] == ["retrying", "completed"]
    assert create["attempts"][0]["error"]["type"] == "http_error"
    assert create["attempts"][0]["error"]["details"]["status"] == 503
    assert len(endpoint.calls_to("/notify")) == 1
    _, notify = await hooks.call("GET", created["href"] + "/steps/hook-app.notify")
    assert notify["status"] == "failed" and notify["can_retry"] is True
    assert notify["error"]["type"] == "http_error" and "422" in notify["error"]["message"]
    assert failed["fulfillment"]["steps"][0]["status"] == "completed"
    # The endpoint is fixed; the requester retries the step and the request completes.
    endpoint.answer("/notify", (200, {}))
    status, step = await hooks.call("POST", created["href"] + "/steps/hook-app.notify/retry")
    assert status == 200 and step["status"] in ("queued", "running", "completed")
    await status_of(hooks, created["href"], "completed")
    status, _ = await hooks.call("POST", created["href"] + "/steps/hook-app.notify/retry")
    assert status == 409


async def test_a_202_with_location_is_polled_until_done(hooks, endpoint, worker):
    endpoint.answer("/create", (202, {"id": "job-7"}, {"Location": "/jobs/7"}))
    endpoint.answer("/jobs/7", (200, {"status": "running"}), (200, {"status": "running"}),
                    (200, {"status": "done", "outputs": {"endpoint": "https://polled"}}))
    endpoint.answer("/notify", (200, {}))
    endpoint.answer("/audit", (200, {}))
    _, created = await hooks.call("POST", "/api/v1/requests", BODY)
    done = await status_of(hooks, created["href"], "completed")
    assert done["outputs"]["hook-app"] == {"endpoint": "https://polled"}
    assert len(endpoint.calls_to("/create")) == 1 and len(endpoint.calls_to("/jobs/7")) == 3
    create = next(s for s in done["fulfillment"]["steps"] if s["step_id"] == "hook-app.create")
    assert create["job_tracking"]["external_id"] == "job-7"
    assert create["job_tracking"]["tracking_url"].endswith("/jobs/7")


async def test_a_missing_declared_output_fails_the_step_and_an_operator_completes_it(
        hooks, endpoint, worker):
    endpoint.answer("/create", (200, {"something": "else"}))
    endpoint.answer("/notify", (200, {}))
    endpoint.answer("/audit", (200, {}))
    _, created = await hooks.call("POST", "/api/v1/requests", BODY)
    await status_of(hooks, created["href"], "failed")
    _, step = await hooks.call("GET", created["href"] + "/steps/hook-app.create")
    assert step["error"]["type"] == "missing_output" and "endpoint" in step["error"]["message"]
    url = created["href"] + "/steps/hook-app.create/complete"
    assert (await hooks.call("POST", url, {"outputs": {"endpoint": "x"}}))[0] == 403  # not an operator
    status, body = await hooks.call("POST", url, {"outputs": {}}, who="admin")
    assert status == 422 and body["errors"][0]["code"] == "missing_output"
    status, step = await hooks.call("POST", url, {"outputs": {"endpoint": "https://by-hand"}}, who="admin")
    assert status == 200 and step["status"] == "completed"
    done = await status_of(hooks, created["href"], "completed")
    assert done["outputs"]["hook-app"] == {"endpoint": "https://by-hand"}
    assert endpoint.calls_to("/notify")[0]["json"]["endpoint"] == "https://by-hand"


async def test_cancel_stops_what_has_not_run_and_erases_secrets(hooks, endpoint, worker, pool):
    endpoint.hold["/create"] = asyncio.Event()
    endpoint.answer("/create", (200, {"endpoint": "e"}))
    endpoint.answer("/audit", (200, {}))
    _, created = await hooks.call("POST", "/api/v1/requests", BODY)
    await wait_for(lambda: asyncio.sleep(0, endpoint.calls_to("/create")), what="create to start")
    status, body = await hooks.call("POST", created["href"] + "/cancel")
    assert status == 200 and body["status"] == "cancelled"
    assert {s["status"] for s in body["fulfillment"]["steps"]} <= {"cancelled", "completed"}
    endpoint.hold["/create"].set()
    await asyncio.sleep(0.5)
    _, after = await hooks.call("GET", created["href"])
    assert after["status"] == "cancelled" and endpoint.calls_to("/notify") == []
    assert await pool.fetchval("SELECT secrets FROM service_requests") is None
    assert (await hooks.call("POST", created["href"] + "/cancel"))[0] == 409


async def test_the_event_stream_delivers_transitions_live_until_the_request_ends(hooks, endpoint, worker):
    endpoint.hold["/create"] = asyncio.Event()
    endpoint.answer("/create", (200, {"endpoint": "e"}))
    endpoint.answer("/notify", (200, {}))
    endpoint.answer("/audit", (200, {}))
    _, created = await hooks.call("POST", "/api/v1/requests", BODY)
    resp = await hooks.client.get(created["href"] + "/events", headers={
        "Authorization": f"Bearer {hooks.tokens['sarah']}", "Accept": "text/event-stream"})
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/event-stream")
    seen: list[dict] = []

    async def read_all() -> None:
        async for line in resp.content:
            if line.startswith(b"data: "):
                seen.append(json.loads(line[6:]))
    reader = asyncio.create_task(read_all())
    await wait_for(lambda: asyncio.sleep(0, any(e["to_status"] == "running" for e in seen)),
                   what="the running event on the stream")
    # The independent "audit" step may complete meanwhile; the request itself may not.
    assert not any(e["to_status"] == "completed" and e["step_id"] is None for e in seen)
    endpoint.hold["/create"].set()
    await asyncio.wait_for(reader, 20)  # the stream ends with the request
    assert seen[-1]["to_status"] == "completed" and seen[-1]["step_id"] is None
    assert [e["id"] for e in seen] == sorted(e["id"] for e in seen)


async def test_a_step_that_cannot_run_falls_back_to_the_manual_ticket_or_fails_clearly(rapi, worker, pool):
    # Our example eks item writes Terraform (no GitHub App configured here) with on_failure: manual (jira),
    # and PAO_JIRA_URL is unset here: the fallback fails and says why.
    body = {"catalog_item": "eks-container-app",
            "parameters": {"app_name": "shop", "environment": "dev"}}
    _, created = await rapi.call("POST", "/api/v1/requests", body)
    await status_of(rapi, created["href"], "failed")
    _, step = await rapi.call("GET", created["href"] + "/steps/eks-container-app.provision_eks_app")
    errors = [a["error"] for a in step["attempts"]]
    assert errors[0]["type"] == "not_configured" and "TerraformFile" in errors[0]["message"]
    assert "PAO_APP_ID" in errors[0]["message"]  # no GitHub credentials here: says what to set
    assert errors[-1]["type"] == "not_configured" and "PAO_JIRA_URL" in errors[-1]["message"]
    assert step["manual_fallback_available"] is True


async def test_a_secret_echoed_in_an_error_is_not_stored_or_shown(hooks, endpoint, worker, pool):
    endpoint.answer("/create", (422, {"error": "token tok-abcdef is not valid here"}))
    endpoint.answer("/audit", (200, {}))
    _, created = await hooks.call("POST", "/api/v1/requests", BODY)
    await status_of(hooks, created["href"], "failed")
    _, step = await hooks.call("GET", created["href"] + "/steps/hook-app.create")
    assert step["error"]["type"] == "http_error" and "is not valid here" in step["error"]["details"]["body"]
    assert "tok-abcdef" not in json.dumps(step)
    stored = await pool.fetchval("SELECT string_agg(error::text, ' ') FROM request_step_attempts")
    assert "tok-abcdef" not in stored


async def test_a_call_that_times_out_is_retried_with_the_same_key(hooks, endpoint, worker, runtime):
    import dataclasses

    runtime.settings.extra["requests"] = dataclasses.replace(runtime.settings.extra["requests"],
                                                             http_timeout=0.3)
    endpoint.hold["/create"] = asyncio.Event()  # the first call hangs past the timeout
    endpoint.answer("/create", (200, {"endpoint": "https://late"}))
    endpoint.answer("/notify", (200, {}))
    endpoint.answer("/audit", (200, {}))
    _, created = await hooks.call("POST", "/api/v1/requests", BODY)

    async def timed_out() -> bool:
        _, step = await hooks.call("GET", created["href"] + "/steps/hook-app.create")
        return bool(step["attempts"]) and step["attempts"][0]["status"] == "retrying"
    await wait_for(timed_out, what="the first attempt to time out")
    # The retry must not race the 0.3 s limit on a loaded machine.
    runtime.settings.extra["requests"] = dataclasses.replace(runtime.settings.extra["requests"],
                                                             http_timeout=30.0)
    endpoint.hold["/create"].set()
    await status_of(hooks, created["href"], "completed")
    _, step = await hooks.call("GET", created["href"] + "/steps/hook-app.create")
    assert step["attempts"][0]["error"]["type"] == "timeout"
    calls = endpoint.calls_to("/create")
    assert len(calls) >= 2 and len({c["headers"]["Idempotency-Key"] for c in calls}) == 1


async def test_the_event_stream_resumes_after_last_event_id(hooks, endpoint, worker):
    for path in ("/create", "/notify", "/audit"):
        endpoint.answer(path, (200, {"endpoint": "e"}))
    _, created = await hooks.call("POST", "/api/v1/requests", BODY)
    await status_of(hooks, created["href"], "completed")
    _, events = await hooks.call("GET", created["href"] + "/events")
    ids = [e["id"] for e in events["events"]]
    resp = await hooks.client.get(created["href"] + "/events", headers={
        "Authorization": f"Bearer {hooks.tokens['sarah']}", "Accept": "text/event-stream",
        "Last-Event-ID": str(ids[-3])})
    text = await asyncio.wait_for(resp.text(), 10)  # the request has ended: the stream ends too
    assert [int(line[4:]) for line in text.splitlines() if line.startswith("id: ")] == ids[-2:]
    _, after = await hooks.call("GET", created["href"] + f"/events?after={ids[-2]}")
    assert [e["id"] for e in after["events"]] == ids[-1:]
