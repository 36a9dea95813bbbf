"""``/metrics``: protection, the intake, job, sync and mirror figures, and the separate listener."""

from __future__ import annotations

import dataclasses

import aiohttp
import pytest
from prometheus_client import REGISTRY

import tests.jobs_tasks  # registers the test tasks
from app import jobs, metrics_endpoint, outcomes, webhooks
from app.config import Settings
from app.jobs import JobContext, PermanentJobError
from app.service import make_worker
from app.web import create_app
from tests.support import webhook

TOKEN = "metrics-token-0123456789"


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def metered(runtime):
    runtime.settings = dataclasses.replace(
        runtime.settings, extra={**runtime.settings.extra,
                                 "metrics": metrics_endpoint.MetricsSettings(token=TOKEN)})
    return runtime


async def scrape(client, token: str | None = TOKEN) -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    resp = await client.get("/metrics", headers=headers)
    return resp.status, await resp.text()


async def test_metrics_need_the_token_and_are_off_without_one(aiohttp_client, runtime, metered):
    client = await aiohttp_client(create_app(metered))
    status, _ = await scrape(client, None)
    assert status == 401
    status, body = await scrape(client, "wrong-token-wrong-token")
    assert status == 401 and TOKEN not in body
    status, body = await scrape(client)
    assert status == 200 and "# TYPE pao_webhook_deliveries_total counter" in body
    metered.settings = dataclasses.replace(metered.settings, extra={})
    off = await aiohttp_client(create_app(metered))
    status, body = await scrape(off)
    assert status == 404 and "PAO_METRICS_TOKEN" in body


async def test_deliveries_and_queue_depth_are_counted(aiohttp_client, metered, pool):
    client = await aiohttp_client(create_app(metered))
    before = sample("pao_webhook_deliveries_total", event="ping", status="processed")
    acks = sample("pao_webhook_ack_seconds_count")
    body, headers = webhook("ping", {"zen": "hi", "hook_id": 1})
    assert (await client.post("/api/v1/webhooks/github", data=body, headers=headers)).status == 200
    forged, headers = webhook("ping", {"zen": "hi"}, secret="not-the-secret")
    assert (await client.post("/api/v1/webhooks/github", data=forged, headers=headers)).status == 401
    assert sample("pao_webhook_deliveries_total", event="ping", status="processed") == before + 1
    assert sample("pao_webhook_ack_seconds_count") == acks + 2

    await jobs.enqueue(pool, "test_sleep", {})
    await jobs.enqueue(pool, "test_sleep", {}, delay=3600)
    await pool.execute("UPDATE jobs SET scheduled_at = now() - interval '90 seconds' "
                       "WHERE scheduled_at <= now()")
    status, text = await scrape(client)
    assert status == 200
    assert 'pao_jobs_waiting{task="test_sleep"} 2.0' in text
    assert 'pao_jobs_due{task="test_sleep"} 1.0' in text
    oldest = sample("pao_jobs_oldest_due_seconds", task="test_sleep")
    assert 89 <= oldest < 200
    assert 'pao_jobs_waiting{task="purge_history"} 0.0' in text  # idle tasks report 0


async def test_every_webhook_answer_is_counted_by_status(aiohttp_client, metered):
    """Refusals that store nothing (413, 415, 400 on headers, 401) count too, by HTTP status."""
    client = await aiohttp_client(create_app(metered))
    url = "/api/v1/webhooks/github"
    before = {code: sample("pao_webhook_answers_total", code=code)
              for code in ("200", "400", "401", "413", "415")}
    body, headers = webhook("ping", {"zen": "hi", "hook_id": 1})
    assert (await client.post(url, data=body, headers=headers)).status == 200
    forged, forged_headers = webhook("ping", {"zen": "hi"}, secret="not-the-secret")
    assert (await client.post(url, data=forged, headers=forged_headers)).status == 401
    as_text = {**headers, "Content-Type": "text/plain"}
    assert (await client.post(url, data=body, headers=as_text)).status == 415
    no_event = {k: v for k, v in headers.items() if k != "X-GitHub-Event"}
    assert (await client.post(url, data=body, headers=no_event)).status == 400
    too_large = await client.post(url, data=b"x" * (webhooks.MAX_PAYLOAD_BYTES + 1), headers=headers)
    assert too_large.status == 413
    after = {code: sample("pao_webhook_answers_total", code=code) for code in before}
    assert {code: after[code] - before[code] for code in before} == \
        {"200": 1, "400": 1, "401": 1, "413": 1, "415": 1}
    status, text = await scrape(client)
    # Every known code is a series from the start (rate() sees its first answer).
    assert status == 200 and 'pao_webhook_answers_total{code="408"} ' in text


async def test_job_outcomes_and_durations(metered, pool):
    ok = sample("pao_job_duration_seconds_count", task="test_sleep", outcome="succeeded")
    failed = sample("pao_job_duration_seconds_count", task="test_permanent", outcome="failed")
    await jobs.enqueue(pool, "test_sleep", {"seconds": 0.05})
    await jobs.enqueue(pool, "test_permanent", {})
    await pool.execute(tests.jobs_tasks.CREATE_LOG)
    worker = make_worker(metered, 1)
    assert await worker.run_one() and await worker.run_one()
    assert sample("pao_job_duration_seconds_count", task="test_sleep", outcome="succeeded") == ok + 1
    assert sample("pao_job_duration_seconds_count", task="test_permanent", outcome="failed") == failed + 1
    assert sample("pao_job_duration_seconds_sum", task="test_sleep", outcome="succeeded") >= 0.05


def context(runtime, attempt: int = 1, max_attempts: int = 3) -> JobContext:
    return JobContext(job_id=1, task="t", attempt=attempt, max_attempts=max_attempts,
                      delivery_id=None, pool=runtime.pool, settings=runtime.settings,
                      github=runtime.github, http=runtime.http)


async def test_sync_and_mirror_outcomes_are_recorded_without_touching_the_result(runtime):
    @outcomes.watch_sync
    async def sync(ctx, **kwargs):
        return {"status": "completed_with_errors", "mode": "incremental", "files_changed": 3,
                "errors": 1}

    @outcomes.watch_mirror
    async def mirror(ctx, repository_id: int, event: str = "star"):
        raise PermanentJobError("OneDev refused the token")

    runs = sample("pao_catalog_sync_duration_seconds_count", outcome="completed_with_errors")
    files = sample("pao_catalog_sync_files_total", mode="incremental")
    assert (await sync(context(runtime), repository="r"))["files_changed"] == 3
    assert sample("pao_catalog_sync_duration_seconds_count", outcome="completed_with_errors") == runs + 1
    assert sample("pao_catalog_sync_files_total", mode="incremental") == files + 3

    failed = sample("pao_mirror_sync_duration_seconds_count", outcome="failed")
    with pytest.raises(PermanentJobError):
        await mirror(context(runtime), repository_id=1, event="star")
    assert sample("pao_mirror_sync_duration_seconds_count", outcome="failed") == failed + 1


async def test_a_separate_listener_serves_metrics_without_a_token(runtime):
    runtime.settings = dataclasses.replace(
        runtime.settings, extra={"metrics": metrics_endpoint.MetricsSettings(listen=("127.0.0.1", 0))})
    runner = await metrics_endpoint.start_listener(runtime)
    assert runner is not None
    try:
        host, port = runner.addresses[0][:2]
        async with aiohttp.ClientSession() as session, \
                session.get(f"http://{host}:{port}/metrics") as resp:
            assert resp.status == 200 and "pao_jobs_waiting" in await resp.text()
    finally:
        await runner.cleanup()


def test_metrics_settings_are_validated():
    settings = Settings.from_env({"PAO_METRICS_TOKEN": TOKEN, "PAO_METRICS_LISTEN": "0.0.0.0:9100"})
    ms = metrics_endpoint.metrics_settings(settings)
    assert ms.token == TOKEN and ms.listen == ("0.0.0.0", 9100)
    from app.config import ConfigError

    with pytest.raises(ConfigError) as exc:
        Settings.from_env({"PAO_METRICS_TOKEN": "short", "PAO_METRICS_LISTEN": "9100"})
    assert any(p.startswith("PAO_METRICS_TOKEN") for p in exc.value.problems)
    assert any(p.startswith("PAO_METRICS_LISTEN") for p in exc.value.problems)


def test_the_grafana_dashboard_only_queries_metrics_pao_exports():
    import json
    import re
    from pathlib import Path

    dashboard = json.loads((Path(__file__).parent.parent / "docs" / "grafana-dashboard.json").read_text())
    queried = {name for panel in dashboard["panels"] for target in panel["targets"]
               for name in re.findall(r"\bpao_[a-z_]+", target["expr"])}
    suffixes = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_count", "_sum")}
    exported = {family.name + suffix for family in REGISTRY.collect()
                for suffix in suffixes.get(family.type, ("",))}
    assert queried and queried <= exported, queried - exported
