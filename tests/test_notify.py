"""Notifications: queued jobs posting to a real local aiohttp server, with retries."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json

import pytest
from aiohttp import web

from app import outcomes
from app.config import ConfigError, Settings
from app.jobs import JobContext, PermanentJobError
from app.jobs.queries import RUN_NOW
from app.notify import Notification, notify
from app.notify.config import NotifySettings, notify_settings
from app.service import make_worker

SECRET = "notify-signing-secret"


class Receiver:
    """A real HTTP server standing in for Slack and for a generic webhook consumer."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict, dict]] = []
        self.answers: list[int] = []  # statuses to answer first, then 200

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.received.append((request.path, json.loads(body), dict(request.headers)))
        if request.path.startswith("/webhook"):
            expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
            assert request.headers["X-PAO-Signature-256"] == expected
        status = self.answers.pop(0) if self.answers else 200
        return web.Response(status=status, text="ok" if status == 200 else "no_service")


@pytest.fixture
async def receiver(aiohttp_server) -> tuple[Receiver, str]:
    r = Receiver()
    app = web.Application()
    app.router.add_post("/{tail:.*}", r.handle)
    server = await aiohttp_server(app)
    return r, str(server.make_url("")).rstrip("/")


@pytest.fixture
def configured(runtime, receiver):
    _, base = receiver
    ns = NotifySettings(slack_url=f"{base}/services/T000/B000/XXXXsecret",
                        webhook_url=f"{base}/webhook", webhook_secret=SECRET,
                        team_slack_urls={"data": f"{base}/services/T000/B111/teamsecret"})
    runtime.settings = dataclasses.replace(runtime.settings,
                                           extra={**runtime.settings.extra, "notify": ns})
    return runtime


def context(rt, *, attempt: int = 1, max_attempts: int = 1, job_id: int = 7) -> JobContext:
    return JobContext(job_id=job_id, task="sync_catalog", attempt=attempt, max_attempts=max_attempts,
                      delivery_id=None, pool=rt.pool, settings=rt.settings, github=rt.github,
                      http=rt.http)


async def run_all(rt) -> None:
    worker = make_worker(rt, 1)
    while await worker.run_one():
        pass


async def test_a_failed_sync_notifies_slack_and_the_webhook(configured, receiver):
    r, _ = receiver

    @outcomes.watch_sync
    async def sync(ctx, **kwargs):
        raise PermanentJobError("cannot read the catalog: authentication failed")

    with pytest.raises(PermanentJobError):
        await sync(context(configured), repository="r")
    await run_all(configured)
    by_path = {path.split("/")[1]: (body, headers) for path, body, headers in r.received}
    assert set(by_path) == {"services", "webhook"}  # no team: not the team channel
    slack, _ = by_path["services"]
    assert "*Catalog sync failed*" in slack["text"] and "authentication failed" in slack["text"]
    assert "pao jobs retry 7" in slack["text"]
    generic, headers = by_path["webhook"]
    assert generic["event"] == "sync.failed" and generic["fields"]["job"] == "7"
    assert headers["X-PAO-Event"] == "sync.failed"
    # The URLs (Slack's are credentials) are never stored with the job.
    stored = json.dumps([dict(r) for r in await configured.pool.fetch("SELECT args FROM jobs")],
                        default=str)
    assert "XXXXsecret" not in stored and "webhook" in stored


async def test_a_retried_sync_attempt_notifies_nothing_but_errors_do(configured, receiver):
    r, _ = receiver

    @outcomes.watch_sync
    async def flaky(ctx, **kwargs):
        raise ConnectionError("remote hung up")

    with pytest.raises(ConnectionError):
        await flaky(context(configured, attempt=1, max_attempts=3))
    assert await configured.pool.fetchval("SELECT count(*) FROM jobs") == 0

    @outcomes.watch_sync
    async def with_errors(ctx, **kwargs):
        return {"status": "completed_with_errors", "errors": 2, "run_id": 12, "to_sha": "a" * 40}

    assert (await with_errors(context(configured)))["run_id"] == 12
    await run_all(configured)
    events = {body.get("event") for _, body, _ in r.received}
    assert events == {None, "sync.completed_with_errors"}  # Slack bodies carry no event field
    assert any("GET /api/v1/sync/runs/12" in body.get("text", "") for _, body, _ in r.received)


async def test_a_team_notification_goes_to_its_channel_too(configured, receiver):
    r, _ = receiver
    ids = await notify(configured.pool, configured.settings, Notification(
        "request.status_changed", "Request 42 approved", "Your database is being created.",
        {"request": "42"}, team="data"))
    assert len(ids) == 3
    await run_all(configured)
    assert sorted(path for path, _, _ in r.received) == [
        "/services/T000/B000/XXXXsecret", "/services/T000/B111/teamsecret", "/webhook"]


async def test_sending_is_retried_until_the_receiver_answers(configured, receiver):
    r, _ = receiver
    r.answers = [503, 429]
    job_id = (await notify(configured.pool, configured.settings, Notification(
        "mirror.failed", "Mirror of a/b failed", "OneDev refused the token")))[0]
    await configured.pool.execute("DELETE FROM jobs WHERE id <> $1", job_id)
    worker = make_worker(configured, 1)
    for _ in range(3):
        await configured.pool.fetchval(RUN_NOW, job_id)
        assert await worker.run_one()
    job = await configured.pool.fetchrow("SELECT status, attempts FROM jobs WHERE id = $1", job_id)
    assert (job["status"], job["attempts"]) == ("succeeded", 3)
    assert len(r.received) == 3


async def test_a_refusing_receiver_fails_the_job_without_leaking_its_url(configured, receiver):
    r, _ = receiver
    r.answers = [404]
    await notify(configured.pool, configured.settings,
                 Notification("sync.failed", "Catalog sync failed", "x"))
    await configured.pool.execute("DELETE FROM jobs WHERE args->>'target' <> 'slack'")
    await run_all(configured)
    job = await configured.pool.fetchrow("SELECT status, last_error FROM jobs")
    assert job["status"] == "failed"
    assert "answered 404" in job["last_error"] and "XXXXsecret" not in job["last_error"]


async def test_a_notification_that_cannot_be_queued_never_blocks_the_sync(configured, pool):
    @outcomes.watch_sync
    async def sync(ctx, **kwargs):
        return {"status": "completed_with_errors", "errors": 1, "run_id": 3}

    ctx = context(configured)
    await pool.execute("ALTER TABLE jobs RENAME TO jobs_gone")  # the queue is broken
    try:
        assert (await sync(ctx))["run_id"] == 3
        assert await notify(pool, configured.settings,
                            Notification("sync.failed", "t", "x")) == []
    finally:
        await pool.execute("ALTER TABLE jobs_gone RENAME TO jobs")


async def test_nothing_is_queued_without_targets_or_for_unknown_events(runtime, configured):
    assert await notify(runtime.pool, dataclasses.replace(runtime.settings, extra={}),
                        Notification("sync.failed", "t", "x")) == []
    assert await notify(configured.pool, configured.settings, Notification("sync.oops", "t", "x")) == []
    assert await configured.pool.fetchval("SELECT count(*) FROM jobs") == 0


def test_settings_are_validated_and_urls_kept_out_of_repr():
    settings = Settings.from_env({
        "PAO_NOTIFY_SLACK_URL": "https://hooks.example.com/services/T/B/secretpart",
        "PAO_NOTIFY_TEAM_SLACK_URLS": "data=https://hooks.example.com/services/T/C/other",
    })
    ns = notify_settings(settings)
    assert ns.url("team:data") and ns.url("webhook") is None and "secretpart" not in repr(ns)
    with pytest.raises(ConfigError) as exc:
        Settings.from_env({"PAO_NOTIFY_WEBHOOK_URL": "ftp://x", "PAO_NOTIFY_TEAM_SLACK_URLS": "data"})
    assert {p.split(":")[0] for p in exc.value.problems} == {"PAO_NOTIFY_WEBHOOK_URL",
                                                             "PAO_NOTIFY_TEAM_SLACK_URLS"}





async def test_a_mirror_that_fails_for_good_is_notified_end_to_end(make_env, receiver):
    from app.mirror.config import mirror_settings
    from tests.support import wait_for

    r, base = receiver
    env = await make_env()
    settings = env.runtime.settings
    settings.extra["mirror"] = dataclasses.replace(mirror_settings(settings),
                                                   onedev_token="wrong-onedev-token")
    settings.extra["notify"] = NotifySettings(slack_url=f"{base}/services/T/B/secret")
    inst = env.gh.install("octo", repos=["octo/hello"])
    repo = env.gh.create_repo("octo/hello", installation=inst, files={"a": "b"})
    await env.deliver("watch", env.gh.watch_payload(repo, "alice"))
    await env.wait_status("octo/hello", "failed")

    async def notified():
        return r.received
    [(_, body, _)] = await wait_for(notified, what="the mirror.failed notification")
    assert "Mirror of octo/hello failed" in body["text"] and "PAO_ONEDEV_TOKEN" in body["text"]
    assert "wrong-onedev-token" not in body["text"]
