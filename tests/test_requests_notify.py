"""Service requests notify their status changes, failed steps and opened tickets, and count in /metrics.

Notifications are queued in the transition's own transaction (a rolled-back one notifies
nobody) and sent once per transition and target, through the real job queue to a real
local HTTP server standing in for Slack and a generic webhook.
"""

from __future__ import annotations

import asyncio
import dataclasses

import asyncpg
import pytest
from prometheus_client import REGISTRY

from app.api.auth import create_token
from app.config import ConfigError, Settings
from app.console.config import ConsoleSettings
from app.notify import Notification, notify, targets
from app.notify.config import NotifySettings, notify_settings
from app.requests import executor, store
from app.requests.batch import SubmissionWriter
from app.requests.notices import Effects
from app.requests.submit import submit_answer
from app.web import create_app
from tests.requests_support import BODY, RequestsApi, status_of, sync_catalog
from tests.support import wait_for
from tests.test_notify import SECRET, receiver  # noqa: F401  (the receiver fixture)

TEAM = "customer-experience"
PUBLIC = "https://pao.example.com"


@pytest.fixture
def notified(runtime, receiver):  # noqa: F811
    """Slack, the generic webhook and the requesters' team channel, all on the local receiver."""
    _, base = receiver
    extra = runtime.settings.extra  # shared with the worker's settings: they see it too
    extra["notify"] = NotifySettings(
        slack_url=f"{base}/services/T000/B000/XXXXsecret", webhook_url=f"{base}/webhook",
        webhook_secret=SECRET, team_slack_urls={TEAM: f"{base}/services/T000/B111/teamsecret"})
    console = extra.get("console")
    extra["console"] = (dataclasses.replace(console, public_url=PUBLIC)
                        if isinstance(console, ConsoleSettings) else ConsoleSettings(public_url=PUBLIC))
    return receiver[0]


def generic(r, request_id: str, event: str | None = None) -> list[dict]:
    """The generic webhook's bodies about ``request_id`` (optionally one event)."""
    return [body for path, body, _ in r.received if path == "/webhook"
            and body["fields"].get("request") == request_id and event in (None, body["event"])]


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_a_request_notifies_each_status_change_once_to_every_target_and_counts(
        hooks, notified, endpoint, worker):
    endpoint.answer("/create", (200, {"endpoint": "https://shop.example.com"}))
    endpoint.answer("/notify", (200, {}))
    endpoint.answer("/audit", (200, {}))
    submitted = sample("pao_service_requests_submitted_total")
    completed = sample("pao_service_request_duration_seconds_count", outcome="completed")
    steps = sample("pao_service_request_step_duration_seconds_count", step="HttpPost", outcome="completed")
    _, created = await hooks.call("POST", "/api/v1/requests", BODY)
    rid = created["request_id"]
    await status_of(hooks, created["href"], "completed")

    async def both_sent():
        sent = generic(notified, rid, "request.status_changed")
        return sent if len(sent) == 2 else None

    sent = await wait_for(both_sent, what="the in_progress and completed notifications")
    assert sorted(b["fields"]["status"] for b in sent) == ["completed", "in_progress"]
    done = next(b for b in sent if b["fields"]["status"] == "completed")
    assert done["title"] == f"Request {rid} is completed"
    assert done["link"] == f"{PUBLIC}/requests/{rid}" and done["team"] == TEAM
    assert done["fields"]["for"] == "hook-app 1.0.0" and done["fields"]["requester"] == "sarah-123"

    async def all_channels():
        paths = sorted(p for p, body, _ in notified.received if rid in str(body))
        return paths if len(paths) == 6 else None

    # Slack and the team's channel got the same two, as Slack messages naming the request.
    assert await wait_for(all_channels, what="Slack and the team channel") == [
        "/services/T000/B000/XXXXsecret"] * 2 + ["/services/T000/B111/teamsecret"] * 2 + ["/webhook"] * 2
    assert any(f"*Request {rid} is completed*" in body.get("text", "") for _, body, _ in notified.received)
    # Metrics: one submitted, one completed, three HttpPost steps completed.
    assert sample("pao_service_requests_submitted_total") == submitted + 1
    assert sample("pao_service_request_duration_seconds_count", outcome="completed") == completed + 1
    assert sample("pao_service_request_step_duration_seconds_count", step="HttpPost",
                  outcome="completed") == steps + 3


async def test_a_failed_step_is_notified_with_its_error_and_a_second_failure_again(
        hooks, notified, endpoint, worker):
    endpoint.answer("/create", (200, {"endpoint": "e"}))
    endpoint.answer("/notify", (422, {"error": "bad endpoint"}))
    endpoint.answer("/audit", (200, {}))
    failed_steps = sample("pao_service_request_step_duration_seconds_count", step="HttpPost",
                          outcome="failed")
    _, created = await hooks.call("POST", "/api/v1/requests", BODY)
    rid = created["request_id"]
    await status_of(hooks, created["href"], "failed")

    async def sent(event: str, count: int):
        found = generic(notified, rid, event)
        return found if len(found) == count else None

    [step] = await wait_for(lambda: sent("request.step_failed", 1), what="the step failure")
    assert step["title"] == f"Request {rid}: step hook-app.notify failed"
    assert "422" in step["text"] and step["fields"]["error"] == "http_error"
    assert step["fields"]["retry"] == f"pao requests retry {rid} hook-app.notify"
    await wait_for(lambda: sent("request.status_changed", 2), what="in_progress and failed")
    # Retried and failed again: a new transition, so a new notification (not a duplicate).
    status, _ = await hooks.call("POST", created["href"] + "/steps/hook-app.notify/retry")
    assert status == 200
    await wait_for(lambda: sent("request.step_failed", 2), what="the second step failure")
    statuses = [b["fields"]["status"] for b in await wait_for(
        lambda: sent("request.status_changed", 4), what="in_progress and failed, twice")]
    assert sorted(statuses) == ["failed", "failed", "in_progress", "in_progress"]
    assert sample("pao_service_request_step_duration_seconds_count", step="HttpPost",
                  outcome="failed") == failed_steps + 2


async def _notify_jobs(pool, status: str) -> int:
    return await pool.fetchval(
        "SELECT count(*) FROM jobs WHERE task = 'notify.send'"
        " AND args->'notification'->'fields'->>'status' = $1", status)


async def test_a_cancel_that_rolls_back_notifies_nobody_and_one_that_commits_notifies_once(
        hooks, notified, runtime, pool):
    # No worker: the request stays submitted and its notifications stay queued for counting.
    _, created = await hooks.call("POST", "/api/v1/requests", BODY)
    row = await store.get_request(pool, created["request_id"])
    cancelled = sample("pao_service_request_duration_seconds_count", outcome="cancelled")
    # The cancel's last write fails: everything it did, notifications included, rolls back.
    await pool.execute("""ALTER TABLE request_events ADD CONSTRAINT no_cancel
                          CHECK (to_status IS DISTINCT FROM 'cancelled' OR event <> 'status') NOT VALID""")
    with pytest.raises(asyncpg.CheckViolationError):
        await executor.cancel_request(pool, row["id"], "sarah-123", settings=runtime.settings)
    assert (await store.get_request(pool, created["request_id"]))["status"] == "submitted"
    assert await _notify_jobs(pool, "cancelled") == 0
    assert await pool.fetchval("SELECT count(*) FROM notification_keys") == 0
    assert sample("pao_service_request_duration_seconds_count", outcome="cancelled") == cancelled
    await pool.execute("ALTER TABLE request_events DROP CONSTRAINT no_cancel")
    status, _ = await hooks.call("POST", created["href"] + "/cancel")
    assert status == 200
    assert await _notify_jobs(pool, "cancelled") == 3  # Slack, the webhook, the team channel
    assert sample("pao_service_request_duration_seconds_count", outcome="cancelled") == cancelled + 1
    job = await pool.fetchrow("SELECT args FROM jobs WHERE task = 'notify.send'"
                              " AND args->>'target' = 'webhook'"
                              " AND args->'notification'->'fields'->>'status' = 'cancelled'")
    assert job["args"]["notification"]["fields"]["by"] == "sarah-123"


async def test_the_same_transition_notified_twice_is_queued_once(hooks, notified, runtime, pool):
    """A retried job that replays a transition's notification: the dedup key keeps it to one."""
    _, created = await hooks.call("POST", "/api/v1/requests", BODY)
    row = await store.get_request(pool, created["request_id"])
    async with pool.acquire() as conn, conn.transaction():
        await store.add_event(conn, row["id"], "status", from_status="submitted", to_status="in_progress")
        for _ in range(2):
            await Effects(runtime.settings).status_changed(conn, row, "submitted", "in_progress", "pao")
    assert await _notify_jobs(pool, "in_progress") == 3
    # notify() itself: the same event and key are queued once per target; another key again.
    again = Notification("request.status_changed", "t", "x", {"request": "r"})
    assert len(await notify(pool, runtime.settings, again, dedup_key="r:failed:1")) == 2
    assert await notify(pool, runtime.settings, again, dedup_key="r:failed:1") == []
    assert len(await notify(pool, runtime.settings, again, dedup_key="r:failed:2")) == 2


async def test_an_opened_ticket_is_notified_with_its_url(rapi, jira, notified, runtime, worker):
    jira.configure(runtime)
    _, created = await rapi.call("POST", "/api/v1/requests", {
        "catalog_item": "mysql-database", "parameters": {"database_name": "orders"}})
    rid = created["request_id"]
    await status_of(rapi, created["href"], "waiting_manual")
    async def ticket_sent():
        return generic(notified, rid, "request.manual_ticket_opened")

    [ticket] = await wait_for(ticket_sent, what="the ticket notification")
    assert ticket["fields"]["ticket"] == "PLATFORM-1"
    assert ticket["link"] == ticket["fields"]["ticket_url"] == f"{jira.url}/browse/PLATFORM-1"
    assert ticket["fields"]["step"] == "mysql-database.manual"



# A bundle of one optional item: asked for without it, the request has no step at all.
EXTRAS = """\
name: "optional-extras"
version: "1.0.0"
description: "Extras a team may add"
owner: "platform-solutions-team"
bundle:
  optional_items:
    - catalog_item: "redis-cache"
      version: ">=1.1.0"
      default_enabled: false
"""
NO_STEP = {"catalog_bundle": "optional-extras"}


@pytest.fixture
async def extras(tmp_path, settings, pool, runtime, aiohttp_client) -> RequestsApi:
    """The example catalog with EXTRAS, and sarah's API client (list it before ``notified``)."""
    await sync_catalog(tmp_path, settings, pool, runtime, {"catalog/bundles/optional-extras.yaml": EXTRAS})
    _, token = await create_token(pool, user_id="sarah-123", team=TEAM, is_admin=False,
                                  email="sarah@example.com")
    return RequestsApi(await aiohttp_client(create_app(runtime)), {"sarah": token})


async def _history(pool, request_id: str) -> list[tuple]:
    return [tuple(r) for r in await pool.fetch(
        """SELECT e.event, e.from_status, e.to_status, e.actor, e.detail FROM request_events e
             JOIN service_requests r ON r.id = e.request_id WHERE r.request_id = $1 ORDER BY e.id""",
        request_id)]


async def test_a_request_with_no_step_completes_at_submission_and_notifies_once(
        extras, notified, pool, worker):
    submitted = sample("pao_service_requests_submitted_total")
    completed = sample("pao_service_request_duration_seconds_count", outcome="completed")
    status, created = await extras.call("POST", "/api/v1/requests", NO_STEP,
                                        headers={"Idempotency-Key": "extras-1"})
    assert status == 201 and created["status"] == "completed"
    rid = created["request_id"]
    # A client's retry of the same submission: the same request, no second completion.
    assert await extras.call("POST", "/api/v1/requests", NO_STEP,
                             headers={"Idempotency-Key": "extras-1"}) == (201, created)

    async def all_channels():
        paths = sorted(p for p, body, _ in notified.received if rid in str(body))
        return paths if len(paths) == 3 else None

    assert await wait_for(all_channels, what="Slack, the webhook and the team channel") == [
        "/services/T000/B000/XXXXsecret", "/services/T000/B111/teamsecret", "/webhook"]
    [done] = generic(notified, rid)
    assert done["event"] == "request.status_changed" and done["title"] == f"Request {rid} is completed"
    assert done["text"] == "bundle optional-extras 1.0.0, requested by sarah-123: submitted → completed."
    assert done["fields"] == {"request": rid, "for": "bundle optional-extras 1.0.0", "requester": "sarah-123",
                              "team": TEAM, "status": "completed", "by": "pao"}
    assert done["link"] == f"{PUBLIC}/requests/{rid}" and done["team"] == TEAM
    # Sent once: one job per target, each done, and the same key as a completion through steps.
    jobs = await pool.fetch("SELECT status FROM jobs WHERE task = 'notify.send'")
    assert [j["status"] for j in jobs] == ["succeeded"] * 3
    assert {r["dedup_key"] for r in await pool.fetch("SELECT dedup_key FROM notification_keys")} == {
        f"request.status_changed:{rid}:completed:1"}
    # Counted and recorded as a request that completes through its steps: submitted, completed by PAO.
    assert sample("pao_service_requests_submitted_total") == submitted + 1
    assert sample("pao_service_request_duration_seconds_count", outcome="completed") == completed + 1
    assert await _history(pool, rid) == [("submitted", None, "submitted", "sarah-123", {"steps": 0}),
                                         ("status", "submitted", "completed", "pao", None)]


async def test_no_step_requests_stored_together_each_notify_once(extras, notified, runtime, pool):
    """The group-committed path: several submissions in one batch, two of them with no step."""
    writer = SubmissionWriter(runtime, writers=1)
    try:
        answers = await asyncio.gather(*[writer.submit(
            body, requester={"user_id": "sarah-123", "team": TEAM}, submitted_by="sarah-123",
            secret_key=None, idempotency_key=key) for body, key in (
                (NO_STEP, "a"), (NO_STEP, "a"), (NO_STEP, None),
                ({"catalog_item": "redis-cache", "parameters": {"cache_name": "sessions"}}, None))])
        assert writer.largest_batch == 4  # the premise: one batch
    finally:
        await writer.stop()
    assert [a[0] for a in answers] == [201] * 4
    assert answers[0] == answers[1]  # the same key: one request
    no_step = {answers[0][1]["request_id"], answers[2][1]["request_id"]}
    assert [a[1]["status"] for a in answers] == ["completed", "completed", "completed", "submitted"]
    for rid in no_step:
        assert await pool.fetchval(
            """SELECT count(*) FROM jobs WHERE task = 'notify.send' AND args->>'target' = 'webhook'
                  AND args->'notification'->'fields'->>'request' = $1""", rid) == 1
    assert await _notify_jobs(pool, "completed") == 6  # two requests, three targets each


async def test_a_no_step_submission_that_rolls_back_or_is_refused_notifies_nobody(
        extras, notified, runtime, pool):
    submitted = sample("pao_service_requests_submitted_total")
    completed = sample("pao_service_request_duration_seconds_count", outcome="completed")
    # Refused by validation: 422, nothing stored, nothing queued.
    status, refused = await extras.call("POST", "/api/v1/requests", {
        **NO_STEP, "item_parameters": {"redis-cache": {"enabled": "yes"}}})
    assert status == 422 and refused["errors"][0]["path"] == "item_parameters.redis-cache.enabled"
    # The submission's last write fails: the request, its completion and its notification roll back.
    await pool.execute("""ALTER TABLE request_events ADD CONSTRAINT no_completion
                          CHECK (to_status IS DISTINCT FROM 'completed' OR event <> 'status') NOT VALID""")
    with pytest.raises(asyncpg.CheckViolationError):
        await submit_answer(pool, NO_STEP, requester={"user_id": "sarah-123", "team": TEAM},
                            submitted_by="sarah-123", secret_key=None, idempotency_key=None,
                            settings=runtime.settings)
    assert await pool.fetchval("SELECT count(*) FROM service_requests") == 0
    assert await pool.fetchval("SELECT count(*) FROM jobs WHERE task = 'notify.send'") == 0
    assert await pool.fetchval("SELECT count(*) FROM notification_keys") == 0
    assert sample("pao_service_requests_submitted_total") == submitted
    assert sample("pao_service_request_duration_seconds_count", outcome="completed") == completed
    # The same submission on its own path once the write succeeds: notified, to every target.
    await pool.execute("ALTER TABLE request_events DROP CONSTRAINT no_completion")
    status, created = await submit_answer(pool, NO_STEP, requester={"user_id": "sarah-123", "team": TEAM},
                                          submitted_by="sarah-123", secret_key=None, idempotency_key=None,
                                          settings=runtime.settings)
    assert status == 201 and created["status"] == "completed"
    assert await _notify_jobs(pool, "completed") == 3
    assert sample("pao_service_request_duration_seconds_count", outcome="completed") == completed + 1


def test_each_kind_of_target_can_choose_its_events_and_a_wrong_name_is_refused():
    env = {"PAO_NOTIFY_SLACK_URL": "https://hooks.example.com/services/T/B/s",
           "PAO_NOTIFY_WEBHOOK_URL": "https://events.example.com/pao",
           "PAO_NOTIFY_TEAM_SLACK_URLS": "data=https://hooks.example.com/services/T/C/t",
           "PAO_NOTIFY_SLACK_EVENTS": "request.*, sync.failed",
           "PAO_NOTIFY_TEAM_EVENTS": "request.status_changed"}
    settings = Settings.from_env(env)
    ns = notify_settings(settings)
    assert ns.webhook_events is None  # unset: every event
    step = Notification("request.step_failed", "t", "x", team="data")
    assert targets(settings, step) == ["slack", "webhook"]
    assert targets(settings, Notification("request.status_changed", "t", "x", team="data")) == [
        "slack", "webhook", "team:data"]
    assert targets(settings, Notification("mirror.failed", "t", "x", team="data")) == ["webhook"]
    with pytest.raises(ConfigError) as exc:
        Settings.from_env({**env, "PAO_NOTIFY_WEBHOOK_EVENTS": "request.done,sync.*"})
    [problem] = exc.value.problems
    assert problem.startswith("PAO_NOTIFY_WEBHOOK_EVENTS: 'request.done' is no event")
