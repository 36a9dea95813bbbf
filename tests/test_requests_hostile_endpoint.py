"""An HttpPost endpoint answering what PostgreSQL cannot store (a NUL, NaN, a lone surrogate):
the step fails at once with a clear error, never left running while its job retries the POST."""

from __future__ import annotations

from tests.requests_support import BODY, status_of


async def test_outputs_postgresql_cannot_store_fail_the_step_clearly(hooks, endpoint, worker, pool):
    endpoint.answer("/notify", (200, {}))
    endpoint.answer("/audit", (200, {}))
    cases = [({"endpoint": "a\u0000b"}, "output endpoint must not contain a NUL character"),
             ({"endpoint": float("nan")}, "output endpoint must be a finite number"),
             ({"endpoint": "\ud800"}, "output endpoint is not valid Unicode text")]
    for n, (answer, message) in enumerate(cases):
        endpoint.answer("/create", (200, answer))
        _, created = await hooks.call("POST", "/api/v1/requests", {
            **BODY, "parameters": {**BODY["parameters"], "app_name": f"shop{n}"}})
        done = await status_of(hooks, created["href"], "failed")
        [step] = [s for s in done["fulfillment"]["steps"] if s["step_id"] == "hook-app.create"]
        assert step["status"] == "failed"
        assert step["error"]["type"] == "bad_output" and step["error"]["message"].startswith(message)
    assert len(endpoint.calls_to("/create")) == len(cases)  # one POST each: nothing retried
    assert await pool.fetchval("SELECT count(*) FROM jobs WHERE status = 'failed'") == 0


async def test_an_error_body_with_a_nul_is_kept_readable(hooks, endpoint, worker):
    endpoint.answer("/create", (400, "refused\u0000because"))
    endpoint.answer("/audit", (200, {}))
    _, created = await hooks.call("POST", "/api/v1/requests", BODY)
    done = await status_of(hooks, created["href"], "failed")
    [step] = [s for s in done["fulfillment"]["steps"] if s["step_id"] == "hook-app.create"]
    assert step["error"]["type"] == "http_error"
    assert step["error"]["details"] == {"status": 400, "body": "refused\ufffdbecause"}
