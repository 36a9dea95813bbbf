"""Missed-delivery recovery against the GitHub fake, a real PAO web app and real PostgreSQL."""

from __future__ import annotations

import dataclasses
import time
from datetime import UTC, datetime, timedelta

import pytest

from app.cli import main
from app.deliveries import recovery
from app.deliveries.config import RecoverySettings
from app.deliveries.hooks import app_log
from app.deliveries.select import HookDelivery, candidates
from app.github import GitHubClients
from app.service import Runtime
from app.web import create_app
from tests.conftest import WEBHOOK_SECRET


def attempt(guid: str, status_code: int, minute: int, *, id_: int | None = None) -> HookDelivery:
    at = datetime(2026, 1, 1, 12, minute, tzinfo=UTC)
    return HookDelivery(id_ or minute, guid, at, False, "", status_code, "push", None)


def test_a_delivery_is_chosen_when_no_attempt_succeeded_or_pao_never_stored_it():
    chosen = candidates(
        [attempt("a", 500, 1), attempt("a", 0, 2),  # failed twice: the latest attempt is redelivered
         attempt("b", 502, 3), attempt("b", 200, 4),  # a redelivery fixed it
         attempt("c", 202, 5),  # answered, but PAO has no row: something else answered
         attempt("d", 200, 6),
         attempt("e", 500, 0)],  # PAO already asked once
        recorded={"b", "d"}, already_requested={"e"})
    assert [(c.attempt.guid, c.attempt.id, c.reason) for c in chosen] == [
        ("a", 2, "failed"), ("c", 5, "unrecorded")]


def test_the_window_starts_before_the_last_run_and_never_beyond_what_is_kept():
    now = datetime(2026, 1, 10, tzinfo=UTC)
    assert recovery.window_start(None, now, 30) == now - recovery.FIRST_LOOKBACK
    last = now - timedelta(minutes=10)
    assert recovery.window_start(last, now, 30) == last - recovery.OVERLAP
    ancient = now - timedelta(days=20)
    assert recovery.window_start(ancient, now, 30) == now - timedelta(days=3)
    assert recovery.window_start(ancient, now, 1) == now - timedelta(days=1)


@pytest.fixture
async def pao(aiohttp_server, github_fake, github_settings, pool, db_dsn, http_session):
    """A PAO web app in App mode that the fake's App webhook points at."""
    settings = dataclasses.replace(github_settings, webhook_secrets=(WEBHOOK_SECRET,))
    rt = Runtime(settings, db_dsn, pool, http_session,
                 GitHubClients.from_settings(settings, http_session))
    server = await aiohttp_server(create_app(rt))
    github_fake.hook_url = str(server.make_url("/api/v1/webhooks/github"))
    github_fake.hook_secret = WEBHOOK_SECRET
    return rt


def ping() -> dict:
    return {"zen": "Keep it logically awesome.", "hook_id": 1}


async def stored(pool) -> list[str]:
    return [r["delivery_id"] for r in await pool.fetch(
        "SELECT delivery_id FROM webhook_events WHERE status <> 'failed' ORDER BY id")]


async def test_missed_deliveries_are_redelivered_once_and_then_stored(pao, github_fake, pool):
    inst = github_fake.install("acme")
    repo = github_fake.create_repo("acme/app", installation=inst, files={"a": "1"})
    payload = github_fake.push_payload(repo, before=repo.sha())
    ok = await github_fake.deliver_hook("push", payload)
    # PAO was down: GitHub could not connect (status 0), or something in front answered 502.
    down = github_fake.record_hook_delivery("push", payload, status_code=0)
    proxy = github_fake.record_hook_delivery("ping", ping(), status_code=502)
    # A 200 from something that was not PAO: GitHub thinks it was delivered.
    ghost = github_fake.record_hook_delivery("ping", ping(), status_code=200)
    assert ok["status_code"] == 200 and await stored(pool) == [ok["guid"]]

    report = await recovery.recover(pool, app_log(pao.github), since=datetime.now(UTC) - timedelta(hours=1),
                                    limit=10, requested_by="periodic")
    assert report.errors == [] and report.scanned == 4
    assert [(c.attempt.guid, c.reason) for c in report.redelivered] == [
        (down["guid"], "failed"), (proxy["guid"], "failed"), (ghost["guid"], "unrecorded")]
    await github_fake.wait_for_redeliveries()
    assert sorted(await stored(pool)) == sorted([ok["guid"], down["guid"], proxy["guid"],
                                                 ghost["guid"]])
    redelivered = [a for a in github_fake.hook_deliveries if a["redelivery"]]
    assert {a["guid"] for a in redelivered} == {down["guid"], proxy["guid"], ghost["guid"]}

    # Never twice: the next run finds nothing, even though the failed attempts are still listed.
    again = await recovery.recover(pool, app_log(pao.github), since=datetime.now(UTC) - timedelta(hours=1),
                                   limit=10, requested_by="cli")
    assert again.redelivered == [] and again.errors == []
    assert len(github_fake.api_requests("POST", "/app/hook/deliveries/")) == 3


async def test_a_delivery_that_fails_again_after_its_redelivery_is_not_asked_for_twice(
        pao, github_fake, pool):
    github_fake.hook_url = "http://127.0.0.1:9/unreachable"  # PAO still down
    failed = github_fake.record_hook_delivery("ping", ping(), status_code=0)
    since = datetime.now(UTC) - timedelta(minutes=5)
    first = await recovery.recover(pool, app_log(pao.github), since=since, limit=10, requested_by="cli")
    await github_fake.wait_for_redeliveries()
    assert [c.attempt.guid for c in first.redelivered] == [failed["guid"]]
    assert [a["status_code"] for a in github_fake.hook_deliveries] == [0, 0]
    second = await recovery.recover(pool, app_log(pao.github), since=since, limit=10, requested_by="cli")
    assert second.redelivered == []
    assert len(github_fake.api_requests("POST", "/app/hook/deliveries/")) == 1


async def test_a_run_is_bounded_and_the_next_run_takes_the_rest(pao, github_fake, pool):
    github_fake.hook_url = "http://127.0.0.1:9/unreachable"
    old = time.time() - 600
    missed = [github_fake.record_hook_delivery("ping", ping(), status_code=500, delivered_at=old + i)
              for i in range(5)]
    now = datetime.now(UTC)
    first = await recovery.periodic_run(pool, app_log(pao.github), limit=2, retention_days=30, now=now)
    assert [c.attempt.guid for c in first.redelivered] == [m["guid"] for m in missed[:2]]
    assert first.left_over == 3
    # Not complete: the mark stays, so the next run looks at the same window again.
    assert await pool.fetchval("SELECT checked_until FROM delivery_recovery_state") is None
    second = await recovery.periodic_run(pool, app_log(pao.github), limit=10, retention_days=30, now=now)
    assert [c.attempt.guid for c in second.redelivered] == [m["guid"] for m in missed[2:]]
    assert await pool.fetchval("SELECT checked_until FROM delivery_recovery_state") == now
    await github_fake.wait_for_redeliveries()


async def test_listing_follows_cursor_pages_and_stops_at_the_window(pao, github_fake):
    base = int(time.time()) - 3600  # GitHub times are whole seconds
    for i in range(250):
        github_fake.record_hook_delivery("ping", ping(), status_code=200, delivered_at=base + i * 10)
    since = datetime.fromtimestamp(base + 50 * 10, UTC)
    found = await recovery.list_deliveries(app_log(pao.github), since)
    assert len(found) == 200
    listed = github_fake.api_requests("GET", "/app/hook/deliveries")
    assert [r.query.get("cursor") is not None for r in listed] == [False, True, True]


async def test_redelivery_refused_by_github_is_reported_and_tried_again_later(pao, github_fake, pool):
    github_fake.hook_url = "http://127.0.0.1:9/unreachable"
    failed = github_fake.record_hook_delivery("ping", ping(), status_code=500)
    github_fake.redelivery_error = 422
    since = datetime.now(UTC) - timedelta(hours=1)
    report = await recovery.recover(pool, app_log(pao.github), since=since, limit=5, requested_by="cli")
    assert report.redelivered == [] and len(report.errors) == 1
    assert failed["guid"] in report.errors[0] and "Validation Failed" in report.errors[0]
    # Nothing was claimed, so a later run tries again, and succeeds.
    assert await pool.fetchval("SELECT count(*) FROM delivery_redeliveries") == 0
    github_fake.redelivery_error = None
    later = await recovery.recover(pool, app_log(pao.github), since=since, limit=5, requested_by="cli")
    assert [c.attempt.guid for c in later.redelivered] == [failed["guid"]] and later.errors == []
    await github_fake.wait_for_redeliveries()


async def test_cli_recover_redelivers_and_refuses_without_credentials(pao, github_fake, pool, monkeypatch,
                                                             capsys):
    github_fake.hook_url = "http://127.0.0.1:9/unreachable"
    failed = github_fake.record_hook_delivery("ping", ping(), status_code=500)
    settings = pao.settings
    env = {"PAO_DB_URL": settings.db_url, "PAO_DATA_DIR": str(settings.data_dir),
           "PAO_APP_ID": settings.app_id, "PAO_PRIVATE_KEY": settings.private_key,
           "PAO_GITHUB_API_URL": settings.github_api_url}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    # main() runs its own event loop: run it in a thread, as a shell would run `pao`.
    import asyncio

    code = await asyncio.to_thread(main, ["deliveries", "recover", "--since", "30m", "--dry-run"])
    assert code == 0 and f"would redeliver {failed['guid']}" in capsys.readouterr().out
    assert not github_fake.api_requests("POST", "/app/hook/deliveries/")
    code = await asyncio.to_thread(main, ["deliveries", "recover", "--since", "30m"])
    assert code == 0 and f"redelivered {failed['guid']}" in capsys.readouterr().out
    assert len(github_fake.api_requests("POST", "/app/hook/deliveries/")) == 1
    await github_fake.wait_for_redeliveries()
    monkeypatch.delenv("PAO_APP_ID")
    monkeypatch.delenv("PAO_PRIVATE_KEY")
    code = await asyncio.to_thread(main, ["deliveries", "recover"])
    assert code == 2 and "App mode" in capsys.readouterr().err


async def test_the_periodic_job_is_scheduled_once_in_any_mode_unless_off(pao, runtime):
    from app.deliveries import tasks

    await tasks.on_startup(pao)
    await tasks.on_startup(pao)
    assert await pao.pool.fetchval("SELECT count(*) FROM jobs WHERE task = $1", tasks.TASK) == 1
    await pao.pool.execute("DELETE FROM jobs")
    await tasks.on_startup(runtime)  # no App yet: /setup may register one later
    assert await pao.pool.fetchval("SELECT count(*) FROM jobs WHERE task = $1", tasks.TASK) == 1
    await pao.pool.execute("DELETE FROM jobs")
    off = dataclasses.replace(runtime, settings=dataclasses.replace(runtime.settings, extra={
        **runtime.settings.extra, "deliveries": RecoverySettings(interval=0.0)}))
    await tasks.on_startup(off)
    assert await pao.pool.fetchval("SELECT count(*) FROM jobs") == 0



async def test_the_fake_shows_one_delivery_with_its_request_as_github_does(pao, github_fake):
    sent = await github_fake.deliver_hook("ping", ping())
    gh = pao.github.app_api()
    full = await gh.getitem(f"/app/hook/deliveries/{sent['id']}", jwt=pao.github.jwt())
    assert full["guid"] == sent["guid"] and full["request"]["payload"] == ping()
    assert full["status_code"] == 200 and '"pong"' in full["response"]["payload"]
    # The shape is checked against GitHub's OpenAPI description at teardown.


def test_recovery_settings_are_validated_and_can_be_turned_off():
    from app.config import ConfigError, Settings
    from app.deliveries.config import recovery_settings

    assert recovery_settings(Settings.from_env({})).interval == 600.0
    off = recovery_settings(Settings.from_env({"PAO_DELIVERY_RECOVERY_INTERVAL": "off"}))
    assert off.interval == 0.0
    tuned = recovery_settings(Settings.from_env({"PAO_DELIVERY_RECOVERY_INTERVAL": "30m",
                                                 "PAO_DELIVERY_RECOVERY_MAX": "5"}))
    assert (tuned.interval, tuned.max_per_run) == (1800.0, 5)
    with pytest.raises(ConfigError) as exc:
        Settings.from_env({"PAO_DELIVERY_RECOVERY_INTERVAL": "soon", "PAO_DELIVERY_RECOVERY_MAX": "0"})
    assert {p.split(":")[0] for p in exc.value.problems} == {"PAO_DELIVERY_RECOVERY_INTERVAL",
                                                             "PAO_DELIVERY_RECOVERY_MAX"}


async def test_the_periodic_job_reschedules_itself_and_skips_without_credentials(pao, runtime):
    from app.deliveries import tasks
    from app.service import make_worker

    await tasks.on_startup(pao)
    await pao.pool.execute("UPDATE jobs SET scheduled_at = now()")
    assert await make_worker(pao, 1).run_one()
    rows = await pao.pool.fetch("SELECT status, result FROM jobs ORDER BY id")
    assert [r["status"] for r in rows] == ["succeeded", "todo"]  # ran, and the next run waits
    assert rows[0]["result"]["errors"] == [] and rows[0]["result"]["scanned"] == 0
    await pao.pool.execute("DELETE FROM jobs")
    # No App and no token: nothing to read, and the schedule goes on (an App may come from /setup).
    assert "skipped" in await tasks.recover_deliveries(_ctx(runtime), periodic=True)
    assert await pao.pool.fetchval("SELECT count(*) FROM jobs WHERE status = 'todo'") == 1


def _ctx(rt):
    from app.jobs import JobContext

    return JobContext(job_id=1, task="deliveries.recover", attempt=1, max_attempts=1,
                      delivery_id=None, pool=rt.pool, settings=rt.settings, github=rt.github,
                      http=rt.http)
