"""Admin pages: deliveries (redeliver), jobs (retry), sync runs with per-file errors, mirrors with logs.

Never served to someone who is not a signed-in admin; every action needs the CSRF token.
"""

from __future__ import annotations

import html
import re

import pytest

from app.web import create_app
from tests.console_support import resync, sign_in, sync_examples, with_console
from tests.support import webhook

ADMIN_PAGES = ["/admin/deliveries", "/admin/jobs", "/admin/sync", "/admin/mirrors"]
ADMIN_ACTIONS = ["/admin/deliveries/1/redeliver", "/admin/jobs/1/retry"]


@pytest.fixture
async def repo(runtime, tmp_path):
    repo = await sync_examples(runtime, tmp_path)
    runtime.settings = with_console(runtime.settings)
    return repo


@pytest.fixture
async def admin(aiohttp_client, runtime, repo):
    client = await aiohttp_client(create_app(runtime))
    sign_in(client, runtime, "pat", "platform", admin=True)
    return client


async def csrf_of(client, path: str) -> str:
    page = await (await client.get(path)).text()
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


async def failed_job(pool) -> int:
    return await pool.fetchval(
        """INSERT INTO jobs (task, args, status, attempts, max_attempts, finished_at, last_error)
           VALUES ('sync_catalog', '{}', 'failed', 5, 5, now(), 'git fetch: connection refused')
           RETURNING id""")


@pytest.mark.parametrize("path", ADMIN_PAGES)
async def test_admin_pages_are_never_served_to_strangers_or_non_admins(aiohttp_client, runtime, repo, path):
    client = await aiohttp_client(create_app(runtime))
    resp = await client.get(path, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"].startswith("/login?next=")
    sign_in(client, runtime, "sarah", "customer-experience", admin=False)
    resp = await client.get(path, allow_redirects=False)
    assert resp.status == 403 and "for PAO admins" in await resp.text()


@pytest.mark.parametrize("path", ADMIN_ACTIONS)
async def test_admin_actions_refuse_strangers_non_admins_and_bad_csrf(aiohttp_client, runtime, repo, path):
    job_id = await failed_job(runtime.pool)
    path = path.replace("/1/", f"/{job_id}/") if "jobs" in path else path
    client = await aiohttp_client(create_app(runtime))
    assert (await client.post(path, data={}, allow_redirects=False)).status == 403
    sign_in(client, runtime, "sarah", "customer-experience", admin=False)
    assert (await client.post(path, data={}, allow_redirects=False)).status == 403
    sign_in(client, runtime, "pat", "platform", admin=True)
    resp = await client.post(path, data={"csrf_token": "forged"}, allow_redirects=False)
    assert resp.status == 403 and "form expired" in await resp.text()
    assert await runtime.pool.fetchval("SELECT status FROM jobs WHERE id = $1", job_id) == "failed"


async def test_failed_jobs_are_listed_and_retried(admin, runtime):
    job_id = await failed_job(runtime.pool)
    page = html.unescape(await (await admin.get("/admin/jobs")).text())
    assert "git fetch: connection refused" in page and f"Retry job {job_id}" in page
    token = await csrf_of(admin, "/admin/jobs")
    resp = await admin.post(f"/admin/jobs/{job_id}/retry", data={"csrf_token": token}, allow_redirects=False)
    assert resp.status == 303
    row = await runtime.pool.fetchrow("SELECT status, attempts FROM jobs WHERE id = $1", job_id)
    assert (row["status"], row["attempts"]) == ("todo", 0)
    assert f"Job {job_id} is queued again." in await (await admin.get(resp.headers["Location"])).text()
    # Retrying what is not failed says so and changes nothing.
    resp = await admin.post(f"/admin/jobs/{job_id}/retry", data={"csrf_token": token}, allow_redirects=False)
    assert resp.status == 409


async def test_a_delivery_is_redelivered_as_a_new_attempt(admin, runtime, github_fake):
    inst = github_fake.install("acme")
    body, headers = webhook("installation", github_fake.installation_payload(inst))
    assert (await admin.post("/api/v1/webhooks/github", data=body, headers=headers)).status == 200
    await runtime.pool.execute("DELETE FROM installations")  # as if the handler's work was lost
    row_id = await runtime.pool.fetchval("SELECT id FROM webhook_events")
    token = await csrf_of(admin, "/admin/deliveries")
    resp = await admin.post(f"/admin/deliveries/{row_id}/redeliver", data={"csrf_token": token},
                            allow_redirects=False)
    assert resp.status == 303
    attempts = await runtime.pool.fetch("SELECT delivery_id, attempt, status FROM webhook_events ORDER BY id")
    assert [a["attempt"] for a in attempts] == [1, 2]
    assert attempts[0]["delivery_id"] == attempts[1]["delivery_id"] == headers["X-GitHub-Delivery"]
    assert await runtime.pool.fetchval("SELECT account_login FROM installations") == "acme"
    page = await (await admin.get(resp.headers["Location"])).text()
    assert "Redelivered" in page and "(attempt 2)" in page


async def test_a_rejected_delivery_without_payload_cannot_be_redelivered_here(admin, runtime):
    body, headers = webhook("push", {"ref": "x"}, secret="wrong")
    assert (await admin.post("/api/v1/webhooks/github", data=body, headers=headers)).status == 401
    row_id = await runtime.pool.fetchval("SELECT id FROM webhook_events WHERE status = 'rejected'")
    token = await csrf_of(admin, "/admin/deliveries?status=rejected")
    resp = await admin.post(f"/admin/deliveries/{row_id}/redeliver", data={"csrf_token": token})
    assert resp.status == 409 and "settings on GitHub" in await resp.text()


async def test_sync_runs_show_their_per_file_errors(admin, runtime, repo):
    repo.write("catalog/broken.yaml", "name: [unclosed\n")
    repo.commit_push("broken file")
    result = await resync(runtime)
    assert result.status == "completed_with_errors"
    page = html.unescape(await (await admin.get("/admin/sync")).text())
    assert "completed_with_errors" in page and "<code>catalog/broken.yaml</code>" in page


async def test_mirrors_show_their_last_logs(admin, runtime):
    repo_id = await runtime.pool.fetchval(
        """INSERT INTO repositories (github_repo_id, github_url, github_clone_url, github_owner, github_name,
                                     github_full_name, sync_status, error_message)
           VALUES (1, 'https://github.com/octo/tool', 'https://github.com/octo/tool.git', 'octo', 'tool',
                   'octo/tool', 'failed', 'OneDev answered 503') RETURNING id""")
    await runtime.pool.execute(
        "INSERT INTO sync_logs (repository_id, event_type, status, error) VALUES ($1, 'star', 'failed', $2)",
        repo_id, "push to OneDev timed out")
    page = await (await admin.get("/admin/mirrors")).text()
    assert "octo/tool" in page and "OneDev answered 503" in page and "push to OneDev timed out" in page


async def test_mirrors_show_each_mirrors_own_last_logs(admin, runtime):
    ids = [await runtime.pool.fetchval(
        """INSERT INTO repositories (github_repo_id, github_url, github_clone_url, github_owner, github_name,
                                     github_full_name, sync_status)
           VALUES ($1, $2, $2 || '.git', 'octo', $3, 'octo/' || $3, 'completed') RETURNING id""",
        n, f"https://github.com/octo/tool{n}", f"tool{n}") for n in (1, 2)]
    log = "INSERT INTO sync_logs (repository_id, event_type, status, error) VALUES ($1, 'push', 'failed', $2)"
    for n in range(7):
        await runtime.pool.execute(log, ids[0], f"first-log-{n}")
    await runtime.pool.execute(log, ids[1], "second-log")
    page = await (await admin.get("/admin/mirrors")).text()
    first, second = page.split("octo/tool2", 1)
    assert [f"first-log-{n}" in first for n in range(7)] == [False, False] + [True] * 5
    assert "second-log" in second and "first-log" not in second and "second-log" not in first
