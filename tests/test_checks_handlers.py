"""Webhook intake for check runs: which events queue a check, and how pushes supersede."""

from __future__ import annotations

import pytest

from app.web import create_app
from tests.conftest import with_settings
from tests.support import webhook

URL = "/api/v1/webhooks/github"
REPO = "org/pao-repository"


@pytest.fixture
async def client(aiohttp_client, runtime):
    runtime.settings = with_settings(runtime.settings, repo_url=f"https://github.com/{REPO}.git",
                                     app_id="4242", private_key="unused")
    return await aiohttp_client(create_app(runtime))


def pr_payload(action: str, sha: str, number: int = 5, repo: str = REPO) -> dict:
    return {
        "action": action, "number": number,
        "pull_request": {"number": number, "head": {"sha": sha, "ref": "feature"},
                         "base": {"ref": "main", "sha": "b" * 40}},
        "repository": {"full_name": repo}, "installation": {"id": 77},
    }


async def post(client, event: str, payload: dict) -> dict:
    body, headers = webhook(event, payload)
    resp = await client.post(URL, data=body, headers=headers)
    assert resp.status in (200, 202), await resp.text()
    return await resp.json()


async def jobs(pool):
    return [dict(r) for r in await pool.fetch(
        "SELECT task, args, status, queueing_lock FROM jobs ORDER BY id")]


async def test_newer_push_supersedes_the_waiting_check(client, pool) -> None:
    await post(client, "pull_request", pr_payload("opened", "1" * 40))
    await post(client, "pull_request", pr_payload("synchronize", "2" * 40))
    [job] = await jobs(pool)  # one waiting job per PR
    assert job["task"] == "catalog_check" and job["args"] == {"repository": REPO, "pr_number": 5}
    row = await pool.fetchrow("SELECT * FROM catalog_check_requests")
    assert (row["head_sha"], row["base_ref"], row["installation_id"], row["rerun"]) == (
        "2" * 40, "main", 77, False)


@pytest.mark.parametrize("action", ["opened", "synchronize", "reopened", "ready_for_review"])
async def test_pr_actions_queue_a_check(client, pool, action) -> None:
    await post(client, "pull_request", pr_payload(action, "1" * 40))
    assert len(await jobs(pool)) == 1


async def test_other_repositories_and_actions_are_ignored(client, pool) -> None:
    answer = await post(client, "pull_request", pr_payload("opened", "1" * 40, repo="org/other"))
    assert "org/other is not the catalog repository" in str(answer)
    await post(client, "pull_request", pr_payload("closed", "1" * 40))
    assert await jobs(pool) == []


async def test_check_suite_and_own_check_run_rerequest(client, pool) -> None:
    pr = {"number": 5, "head": {"sha": "3" * 40, "ref": "feature"}, "base": {"ref": "main", "sha": "b" * 40}}
    await post(client, "check_suite", {"action": "rerequested", "repository": {"full_name": REPO},
                                       "installation": {"id": 77},
                                       "check_suite": {"head_sha": "3" * 40, "pull_requests": [pr]}})
    assert (await pool.fetchrow("SELECT rerun FROM catalog_check_requests"))["rerun"] is True
    await pool.execute("DELETE FROM jobs")
    foreign = {"action": "rerequested", "repository": {"full_name": REPO}, "installation": {"id": 77},
               "check_run": {"name": "PAO catalog", "head_sha": "3" * 40, "app": {"id": 1},
                             "pull_requests": [pr]}}
    answer = await post(client, "check_run", foreign)
    assert "another app" in str(answer) and await jobs(pool) == []
    foreign["check_run"]["app"]["id"] = 4242
    await post(client, "check_run", foreign)
    assert len(await jobs(pool)) == 1


async def test_suite_without_pull_request_is_ignored(client, pool) -> None:
    answer = await post(client, "check_suite", {
        "action": "requested", "repository": {"full_name": REPO},
        "check_suite": {"head_sha": "3" * 40, "pull_requests": []}})
    assert "without a pull request" in str(answer) and await jobs(pool) == []
