"""Seed 000/001 end to end: signed push deliveries -> queued sync -> worker -> REST API.

The catalog repository is served over smart HTTP and needs the token; PAO runs
its real web app, job queue and worker against a real PostgreSQL.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from app.api.auth import create_token
from app.github import GitHubClients
from app.service import make_worker
from app.sync.store import SYNC_LOCK_NS
from app.web import create_app
from tests.conftest import with_settings
from tests.support import wait_for, webhook
from tests.sync_helpers import MYSQL_SEED, MYSQL_SEED_RESPONSE, TOKEN, item_yaml, push_payload, start_git_host

HOOK = "/api/v1/webhooks/github"
FULL_NAME = "org/pao-repository"


@dataclass
class Pao:
    client: Any
    token: str
    pool: Any
    repo_url: str

    async def push(self, before: str, after: str, **kw: Any) -> Any:
        full_name = kw.pop("full_name", FULL_NAME)
        url = self.repo_url.replace(FULL_NAME, full_name)
        body, headers = webhook("push", push_payload(url, full_name, before, after, **kw))
        resp = await self.client.post(HOOK, data=body, headers=headers)
        return resp.status, await resp.json()

    async def get(self, path: str) -> tuple[int, Any]:
        resp = await self.client.get(path, headers={"Authorization": f"Bearer {self.token}"})
        return resp.status, await resp.json()

    async def synced(self, sha: str) -> None:
        async def done() -> bool:
            return await self.pool.fetchval(
                "SELECT last_processed_sha FROM catalog_sync_state") == sha
        await wait_for(done, what=f"catalog synced to {sha[:12]}")


@pytest.fixture
async def host(aiohttp_server, tmp_path: Path):
    return await start_git_host(aiohttp_server, tmp_path / "host")


@pytest.fixture
def repo(host, tmp_path: Path):
    return host.repo(tmp_path / "repo", FULL_NAME)


@pytest.fixture
async def pao(aiohttp_client, runtime, host, pool):
    runtime.settings = with_settings(runtime.settings, repo_url=host.url(FULL_NAME), repo_token=TOKEN)
    runtime.github = GitHubClients.from_settings(runtime.settings, runtime.http)
    client = await aiohttp_client(create_app(runtime))
    worker = make_worker(runtime)
    task = asyncio.create_task(worker.run())
    _, token = await create_token(pool, user_id="josh-123", team="platform-data-team")
    yield Pao(client, token, pool, host.url(FULL_NAME))
    worker.stop()
    await task


async def test_seed_000_story_over_webhooks(pao, repo):
    # Step 1: empty database, nothing synced yet.
    assert await pao.get("/api/v1/catalog/items") == (
        200, {"items": [], "pagination": {"next_cursor": None, "has_more": False}})
    status, body = await pao.get("/api/v1/sync/status")
    assert body["last_processed_sha"] is None and body["recent_runs"] == []

    # Step 2: GitHub's ping.
    body_bytes, headers = webhook("ping", {"zen": "Design for failure.", "hook_id": 123456})
    resp = await pao.client.post(HOOK, data=body_bytes, headers=headers)
    assert await resp.json() == {"status": "pong", "message": "Webhook configured successfully"}

    # Steps 3-4: the first push loads the three items.
    repo.write("README.md", "the catalog\n")
    repo.write("catalog/databases/postgres-database.yaml", item_yaml("postgres-database"))
    repo.write("catalog/databases/mysql-database.yaml", MYSQL_SEED)
    repo.write("catalog/compute/eks-container-app.yaml", item_yaml("eks-container-app"))
    first = repo.commit_push("Update README")
    status, answer = await pao.push("0" * 40, first)
    assert status == 202 and answer["status"] == "accepted" and answer["job_ids"]
    await pao.synced(first)
    status, body = await pao.get("/api/v1/catalog/items")
    assert [i["name"] for i in body["items"]] == ["eks-container-app", "mysql-database", "postgres-database"]
    assert body["items"][1]["href"] == "/api/v1/catalog/items/mysql-database"

    # Seed 001 step 7: the item reads back as the seed shows it.
    status, item = await pao.get("/api/v1/catalog/items/mysql-database")
    assert status == 200
    assert {k: item[k] for k in MYSQL_SEED_RESPONSE} == MYSQL_SEED_RESPONSE
    assert item["fulfillment"]["manual"]["template"]["project"] == "PLATFORM"
    assert (item["category"], item["source_file_path"]) == (
        "databases", "catalog/databases/mysql-database.yaml")

    # Steps 5-6: one added, one modified; the payload's file lists are not needed.
    repo.write("catalog/storage/s3-bucket.yaml", item_yaml("s3-bucket"))
    repo.write("catalog/databases/postgres-database.yaml", item_yaml("postgres-database", "1.1.0"))
    second = repo.commit_push("Josh adds s3")
    await pao.push(first, second)
    await pao.synced(second)
    assert (await pao.get("/api/v1/catalog/items/postgres-database"))[1]["version"] == "1.1.0"
    assert (await pao.get("/api/v1/catalog/items/s3-bucket"))[0] == 200

    # Step 7: a removed file soft-deletes its item.
    repo.remove("catalog/databases/mysql-database.yaml")
    third = repo.commit_push("remove mysql")
    await pao.push(second, third, removed=["catalog/databases/mysql-database.yaml"])
    await pao.synced(third)
    status, body = await pao.get("/api/v1/catalog/items/mysql-database")
    assert status == 404 and body["error"] == "not found"
    status, body = await pao.get("/api/v1/catalog/items/mysql-database?include_inactive=true")
    assert status == 200 and body["is_active"] is False

    status, body = await pao.get("/api/v1/sync/status")
    runs = body["recent_runs"]
    assert [(r["from_sha"], r["to_sha"]) for r in runs] == [(second, third), (first, second), (None, first)]
    assert [(r["files_changed"], r["items_added"], r["items_updated"], r["items_removed"])
            for r in runs] == [(1, 0, 0, 1), (2, 1, 1, 0), (3, 3, 0, 0)]
    assert all(r["triggered_by"] == "webhook" and r["delivery_id"] for r in runs)
    assert body["last_processed_sha"] == third and body["current_run"] is None
    status, run = await pao.get(f"/api/v1/sync/runs/{runs[0]['id']}")
    assert status == 200 and run["status"] == "completed"


async def test_pushes_that_are_not_for_the_catalog_are_ignored_with_reasons(pao, repo, pool):
    sha = repo.commit_push("x")
    status, body = await pao.push("0" * 40, sha, ref="refs/heads/feature")
    assert (status, body["status"]) == (200, "ignored") and "refs/heads/main" in body["reason"]
    status, body = await pao.push("0" * 40, sha, full_name="org/other-repo")
    assert body["status"] == "ignored" and "not the catalog repository" in body["reason"]
    status, body = await pao.push(sha, "0" * 40)
    assert body["status"] == "ignored" and "deleted" in body["reason"]
    assert await pool.fetchval("SELECT count(*) FROM jobs") == 0
    reasons = await pool.fetch("SELECT status, reason FROM webhook_events ORDER BY id")
    assert [r["status"] for r in reasons] == ["ignored"] * 3


async def test_a_push_during_a_running_sync_is_synced_too(pao, repo, pool):
    repo.write("catalog/a/one.yaml", item_yaml("one"))
    first = repo.commit_push("one")
    async with pool.acquire() as blocker:
        # Hold the commit lock so the first sync waits just before committing.
        await blocker.execute("SELECT pg_advisory_lock($1, hashtext($2))", SYNC_LOCK_NS,
                              pao.repo_url.removesuffix(".git"))
        await pao.push("0" * 40, first)

        async def waiting_to_commit() -> bool:
            # Not just "running": the run row is written before the fetch, and a fetch after
            # the next push would sync that commit too. Waiting on the commit lock, it has
            # fetched `first` and nothing else.
            return await pool.fetchval(
                """SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted
                   AND classid = $1 AND objsubid = 2
                   AND database = (SELECT oid FROM pg_database WHERE datname = current_database())""",
                SYNC_LOCK_NS) == 1
        await wait_for(waiting_to_commit, what="first sync waiting to commit")
        assert await pool.fetchval(
            "SELECT count(*) FROM catalog_sync_runs WHERE status = 'running'") == 1
        repo.write("catalog/a/two.yaml", item_yaml("two"))
        second = repo.commit_push("two")
        # Several deliveries while one sync runs collapse into one waiting job.
        for _ in range(3):
            status, body = await pao.push(first, second)
            assert status == 202
        assert await pool.fetchval("SELECT count(*) FROM jobs WHERE status = 'todo'") == 1
        await blocker.execute("SELECT pg_advisory_unlock($1, hashtext($2))", SYNC_LOCK_NS,
                              pao.repo_url.removesuffix(".git"))
    await pao.synced(second)
    status, body = await pao.get("/api/v1/catalog/items")
    assert [i["name"] for i in body["items"]] == ["one", "two"]
    runs = await pool.fetch("SELECT status, to_sha FROM catalog_sync_runs ORDER BY id")
    assert [r["status"] for r in runs][-1] == "completed" and runs[-1]["to_sha"] == second
    assert await pool.fetchval("SELECT count(*) FROM jobs") == 2


async def test_refused_credentials_fail_the_job_at_once_with_a_clear_error(runtime, host, repo, pool):
    wrong = "pao-wrong-token-0a1b2c3d4e"
    runtime.settings = with_settings(runtime.settings, repo_url=host.url(FULL_NAME), repo_token=wrong)
    runtime.github = GitHubClients.from_settings(runtime.settings, runtime.http)
    repo.write("catalog/a/one.yaml", item_yaml("one"))
    repo.commit_push("one")
    from app.sync.source import catalog_source
    from app.sync.tasks import queue_sync

    job_id = await queue_sync(pool, catalog_source(runtime.settings), triggered_by="manual")
    assert await make_worker(runtime).run_one()
    job = await pool.fetchrow("SELECT status, attempts, last_error FROM jobs WHERE id = $1", job_id)
    assert (job["status"], job["attempts"]) == ("failed", 1)
    assert "cannot read" in job["last_error"] and wrong not in job["last_error"]
    run = await pool.fetchrow("SELECT status, error FROM catalog_sync_runs")
    assert run["status"] == "failed" and wrong not in run["error"]
