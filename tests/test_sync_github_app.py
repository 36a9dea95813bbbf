"""Catalog sync in GitHub App mode against the GitHub fake: installation tokens for git,
pushes carrying the installation, a force push, and catch-up on start-up."""

from __future__ import annotations

import asyncio

import pytest

from app.api.auth import create_token
from app.github import GitHubClients
from app.service import make_worker, run_startup_hooks
from app.web import create_app
from tests.conftest import with_settings
from tests.support import wait_for, webhook
from tests.sync_helpers import MYSQL_SEED, MYSQL_SEED_RESPONSE, item_yaml

HOOK = "/api/v1/webhooks/github"
ZERO = "0" * 40


@pytest.fixture
async def app_mode(aiohttp_client, runtime, github_fake, github_settings, pool):
    inst = github_fake.install("org", repos=["org/pao-repository"])
    repo = github_fake.create_repo("org/pao-repository", private=True, installation=inst, files={
        "README.md": "catalog\n",
        "catalog/databases/mysql-database.yaml": MYSQL_SEED,
        "catalog/compute/eks-container-app.yaml": item_yaml("eks-container-app"),
    })
    runtime.settings = with_settings(github_settings, repo_url=repo.clone_url)
    runtime.github = GitHubClients.from_settings(runtime.settings, runtime.http)
    client = await aiohttp_client(create_app(runtime))
    _, token = await create_token(pool, user_id="josh")
    worker = make_worker(runtime)
    task = asyncio.create_task(worker.run())
    yield github_fake, inst, repo, client, token, runtime
    worker.stop()
    await task


async def deliver(client, event, payload):
    body, headers = webhook(event, payload)
    resp = await client.post(HOOK, data=body, headers=headers)
    return resp.status, await resp.json()


async def synced_to(pool, sha):
    async def check():
        return await pool.fetchval("SELECT last_processed_sha FROM catalog_sync_state") == sha
    await wait_for(check, what=f"sync to {sha[:12]}")


async def test_push_syncs_with_the_installation_token_and_force_push_reconciles(app_mode, pool):
    fake, inst, repo, client, token, _ = app_mode
    first = repo.sha()
    status, _ = await deliver(client, "push", fake.push_payload(repo, before=ZERO, after=first))
    assert status == 202
    await synced_to(pool, first)
    resp = await client.get("/api/v1/catalog/items/mysql-database",
                            headers={"Authorization": f"Bearer {token}"})
    item = await resp.json()
    assert {k: item[k] for k in MYSQL_SEED_RESPONSE} == MYSQL_SEED_RESPONSE
    # git authenticated with an installation token PAO obtained from the App's JWT.
    assert any(r.path == f"/app/installations/{inst.id}/access_tokens" for r in fake.requests)

    second = repo.commit({"catalog/storage/s3-bucket.yaml": item_yaml("s3-bucket")})
    await deliver(client, "push", fake.push_payload(repo, before=first, after=second))
    await synced_to(pool, second)

    # History rewritten from the first commit: s3-bucket never happened, redis-cache did.
    rewritten = repo.commit({"catalog/caching/redis-cache.yaml": item_yaml("redis-cache")},
                            parent=first)
    await deliver(client, "push", fake.push_payload(repo, before=second, after=rewritten, forced=True))
    await synced_to(pool, rewritten)
    rows = {r["name"]: r["is_active"] for r in await pool.fetch("SELECT name, is_active FROM catalog_items")}
    assert rows == {"mysql-database": True, "eks-container-app": True, "s3-bucket": False,
                    "redis-cache": True}
    run = await pool.fetchrow("SELECT mode, items_added, items_removed FROM catalog_sync_runs"
                              " ORDER BY id DESC LIMIT 1")
    assert (run["mode"], run["items_added"], run["items_removed"]) == ("reconcile", 1, 1)


async def test_catch_up_finds_the_installation_from_installation_events(app_mode, pool):
    fake, inst, repo, client, _, runtime = app_mode
    status, _ = await deliver(client, "installation", fake.installation_payload(inst))
    assert status == 200
    first = repo.sha()
    await deliver(client, "push", fake.push_payload(repo, before=ZERO, after=first))
    await synced_to(pool, first)

    later = repo.commit({"catalog/storage/s3-bucket.yaml": item_yaml("s3-bucket")})  # no webhook
    await run_startup_hooks(runtime)
    await synced_to(pool, later)
    run = await pool.fetchrow("SELECT triggered_by, mode FROM catalog_sync_runs ORDER BY id DESC LIMIT 1")
    assert (run["triggered_by"], run["mode"]) == ("startup", "incremental")


async def test_catch_up_and_forced_syncs_find_the_installation_from_github(app_mode, pool):
    # The App was installed while PAO was down: no installation event or push was ever
    # recorded, so start-up, `pao sync` and POST /api/v1/sync had no token to fetch with.
    fake, _, repo, client, _, runtime = app_mode
    await run_startup_hooks(runtime)
    await synced_to(pool, repo.sha())
    assert any(r.path == "/repos/org/pao-repository/installation" for r in fake.requests)
    run = await pool.fetchrow("SELECT triggered_by, mode, items_added FROM catalog_sync_runs")
    assert (run["triggered_by"], run["mode"], run["items_added"]) == ("startup", "full", 2)

    later = repo.commit({"catalog/storage/s3-bucket.yaml": item_yaml("s3-bucket")})
    _, admin = await create_token(pool, user_id="mike", is_admin=True)
    resp = await client.post("/api/v1/sync", headers={"Authorization": f"Bearer {admin}"})
    assert resp.status == 202
    await synced_to(pool, later)
