"""Missed-delivery recovery in token mode: a repository's or organisation's webhook, read and
redelivered with PAO_REPO_TOKEN through the GitHub fake, against a real PAO web app and PostgreSQL."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from app.cli import main
from app.config import ConfigError, Settings
from app.deliveries import recovery, tasks
from app.deliveries.config import HookTarget, RecoverySettings, parse_target, recovery_settings
from app.deliveries.hooks import HookNotFound, points_at_pao, resolve
from app.github import GitHubClients
from app.jobs import JobContext
from app.service import Runtime
from app.web import create_app
from tests.conftest import WEBHOOK_SECRET


def ping() -> dict:
    return {"zen": "Keep it logically awesome.", "hook_id": 1}


@pytest.fixture
async def pao(aiohttp_server, github_fake, settings, pool, db_dsn, http_session):
    """PAO in token mode, its catalog the fake's acme/catalog, and that repository's webhooks:
    PAO's own and a CI server's."""
    github_fake.create_repo("acme/catalog", files={"catalog/a.yaml": "x: 1\n"})
    token_settings = dataclasses.replace(settings, **github_fake.pao_settings("token"),
                                         repo_url=f"{github_fake.url}/acme/catalog.git")
    rt = Runtime(token_settings, db_dsn, pool, http_session,
                 GitHubClients.from_settings(token_settings, http_session))
    server = await aiohttp_server(create_app(rt))
    pao_url = str(server.make_url("/api/v1/webhooks/github"))
    rt.extra["hook"] = github_fake.add_hook("acme", "catalog", pao_url, WEBHOOK_SECRET)
    rt.extra["ci_hook"] = github_fake.add_hook("acme", "catalog", "https://ci.example.com/github",
                                               "ci-secret")
    return rt


def with_recovery(rt: Runtime, **changes) -> Runtime:
    extra = {**rt.settings.extra, "deliveries": RecoverySettings(**changes)}
    return dataclasses.replace(rt, settings=dataclasses.replace(rt.settings, extra=extra))


def ctx(rt: Runtime) -> JobContext:
    return JobContext(job_id=1, task=tasks.TASK, attempt=1, max_attempts=1, delivery_id=None,
                      pool=rt.pool, settings=rt.settings, github=rt.github, http=rt.http)


async def stored(pool) -> list[str]:
    return [r["delivery_id"] for r in await pool.fetch(
        "SELECT delivery_id FROM webhook_events WHERE status <> 'failed' ORDER BY id")]


async def test_the_catalog_repositorys_webhook_is_found_by_url_and_its_misses_redelivered(pao, github_fake):
    hook, ci = pao.extra["hook"], pao.extra["ci_hook"]
    missed = github_fake.record_hook_delivery("ping", ping(), status_code=0, hook=hook)  # PAO was down
    delivered = await github_fake.deliver_hook("ping", ping(), hook=hook)
    github_fake.record_hook_delivery("ping", ping(), status_code=500, hook=ci)  # not PAO's webhook
    result = await tasks.recover_deliveries(ctx(pao))
    assert result["hook"] == f"repos/acme/catalog/hooks/{hook.id}" and result["errors"] == []
    assert [d["guid"] for d in result["redelivered"]] == [missed["guid"]]
    await github_fake.wait_for_redeliveries()
    assert await stored(pao.pool) == [delivered["guid"], missed["guid"]]
    [asked] = github_fake.api_requests("POST", "/repos/acme/catalog/hooks/")
    assert asked.path == f"/repos/acme/catalog/hooks/{hook.id}/deliveries/{missed['id']}/attempts"
    assert asked.auth == "user" and not ci.deliveries[-1]["redelivery"]
    # Listed again, it is never asked for twice.
    again = await tasks.recover_deliveries(ctx(pao))
    assert again["redelivered"] == []


async def test_a_bounded_run_keeps_its_window_and_two_runs_at_once_ask_once_each(pao, github_fake):
    hook = pao.extra["hook"]
    failed = [github_fake.record_hook_delivery("ping", ping(), status_code=502, hook=hook) for _ in range(3)]
    log = await resolve(pao.settings, pao.github)
    assert log is not None
    now = datetime.now(UTC)
    first = await recovery.periodic_run(pao.pool, log, limit=1, retention_days=30, now=now)
    assert [c.attempt.guid for c in first.redelivered] == [failed[0]["guid"]] and first.left_over == 2
    assert await pao.pool.fetchval(recovery.CHECKED_UNTIL) is None  # the limit was hit: not moved
    since = now - timedelta(hours=1)
    runs = await asyncio.gather(*(recovery.recover(pao.pool, log, since=since, limit=10, requested_by="cli")
                                  for _ in range(2)))
    asked = sorted(c.attempt.guid for run in runs for c in run.redelivered)
    assert asked == sorted(f["guid"] for f in failed[1:])
    assert len(github_fake.api_requests("POST", "/repos/acme/catalog/hooks/")) == 3
    await github_fake.wait_for_redeliveries()


async def test_an_organisation_webhook_named_by_pao_delivery_hook(pao, github_fake):
    org_hook = github_fake.add_hook("acme", None, pao.extra["hook"].url, WEBHOOK_SECRET)
    missed = github_fake.record_hook_delivery("ping", ping(), status_code=0, hook=org_hook)
    rt = with_recovery(pao, hook=HookTarget("acme", None, org_hook.id))
    result = await tasks.recover_deliveries(ctx(rt))
    assert result["hook"] == f"orgs/acme/hooks/{org_hook.id}"
    assert [d["guid"] for d in result["redelivered"]] == [missed["guid"]]
    # The id was given: no listing of the organisation's webhooks.
    assert not [r for r in github_fake.api_requests("GET") if r.path == "/orgs/acme/hooks"]
    await github_fake.wait_for_redeliveries()
    assert missed["guid"] in await stored(pao.pool)


async def test_no_webhook_pointing_at_pao_says_how_to_name_it(pao, github_fake):
    github_fake.hooks.pop(pao.extra["hook"].id)
    with pytest.raises(HookNotFound) as info:
        await resolve(pao.settings, pao.github)
    assert "PAO_DELIVERY_HOOK=repos/acme/catalog/hooks/" in str(info.value)
    result = await tasks.recover_deliveries(ctx(pao))
    assert "PAO_DELIVERY_HOOK" in result["errors"][0]


async def test_cli_recovers_in_token_mode(pao, github_fake, monkeypatch, capsys):
    missed = github_fake.record_hook_delivery("ping", ping(), status_code=504, hook=pao.extra["hook"])
    settings = pao.settings
    env = {"PAO_DB_URL": settings.db_url, "PAO_DATA_DIR": str(settings.data_dir),
           "PAO_REPO_TOKEN": settings.repo_token, "PAO_REPO_URL": settings.repo_url,
           "PAO_GITHUB_API_URL": settings.github_api_url}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code = await asyncio.to_thread(main, ["deliveries", "recover", "--since", "30m", "--dry-run"])
    out = capsys.readouterr().out
    assert code == 0 and f"would redeliver {missed['guid']}" in out and "repos/acme/catalog/hooks/" in out
    code = await asyncio.to_thread(main, ["deliveries", "recover", "--since", "30m"])
    assert code == 0 and f"redelivered {missed['guid']}" in capsys.readouterr().out
    await github_fake.wait_for_redeliveries()


def test_pao_delivery_hook_takes_api_paths_and_names_what_it_wants():
    assert parse_target("repos/acme/catalog") == HookTarget("acme", "catalog")
    assert parse_target("/repos/acme/catalog/hooks/42/") == HookTarget("acme", "catalog", 42)
    assert parse_target("orgs/acme/hooks/7") == HookTarget("acme", None, 7)
    hook = recovery_settings(Settings.from_env({"PAO_DELIVERY_HOOK": "orgs/acme"})).hook
    assert hook == HookTarget("acme") and str(hook) == "orgs/acme"
    with pytest.raises(ConfigError) as info:
        Settings.from_env({"PAO_DELIVERY_HOOK": "acme/catalog"})
    assert info.value.problems[0].startswith("PAO_DELIVERY_HOOK: expected repos/OWNER/REPO or orgs/ORG")


def test_a_webhook_is_pao_s_by_its_path_or_exactly_under_pao_public_url():
    assert points_at_pao("https://pao.acme.dev/api/v1/webhooks/github", None)
    assert points_at_pao("https://pao.acme.dev/webhooks/github/", "https://pao.acme.dev")
    assert not points_at_pao("https://old.acme.dev/api/v1/webhooks/github", "https://pao.acme.dev")
    assert not points_at_pao("https://ci.example.com/github", None)
