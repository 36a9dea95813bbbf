"""Periodic mirror work through the job queue: stars poll and refresh reschedule themselves."""

from __future__ import annotations

from app.jobs.worker import Worker
from app.mirror import startup, tasks
from app.service import make_worker


async def todo(pool, task):
    return await pool.fetch("SELECT * FROM jobs WHERE task = $1 AND status = 'todo' ORDER BY id", task)


async def test_startup_seeds_each_schedule_once(make_env):
    env = await make_env(mode="token", worker=False, users=("alice",))
    await startup.on_startup(env.runtime)
    await startup.on_startup(env.runtime)  # a restart: still one job per schedule
    [poll] = await todo(env.pool, tasks.POLL_TASK)
    [refresh] = await todo(env.pool, tasks.REFRESH_TASK)
    assert poll["queueing_lock"] == tasks.POLL_LOCK and refresh["queueing_lock"] == tasks.REFRESH_LOCK
    delay = await env.pool.fetchval("SELECT extract(epoch FROM scheduled_at - created_at) FROM jobs "
                                    "WHERE id = $1", refresh["id"])
    assert 8 * 3600 - 5 < delay <= 8 * 3600


async def test_startup_does_nothing_when_mirroring_is_off(make_env):
    env = await make_env(worker=False, onedev_url=None)
    await startup.on_startup(env.runtime)
    assert await env.pool.fetchval("SELECT count(*) FROM jobs") == 0


async def test_poll_job_mirrors_new_stars_and_schedules_the_next_poll(make_env):
    env = await make_env(mode="token", worker=False, users=("alice",), poll_interval=600.0)
    env.gh.create_repo("octo/one", files={"a": "1"})
    env.gh.star("alice", "octo/one")
    await startup.on_startup(env.runtime)
    worker: Worker = make_worker(env.runtime, 1)
    assert await worker.run_one()  # the poll
    [next_poll] = await todo(env.pool, tasks.POLL_TASK)
    delay = await env.pool.fetchval("SELECT extract(epoch FROM scheduled_at - now()) FROM jobs "
                                    "WHERE id = $1", next_poll["id"])
    assert 590 < delay <= 600
    assert await worker.run_one()  # the sync it queued
    await env.wait_status("octo/one", "completed")


async def test_refresh_job_updates_every_mirror_for_unseen_pushes(make_env):
    env = await make_env(mode="token", worker=False)
    one = env.gh.create_repo("octo/one", files={"a": "1"})
    env.gh.create_repo("octo/two", files={"a": "2"})
    for name in ("octo/one", "octo/two"):
        resp = await env.client.post("/api/v1/mirrors", json={"repository": name}, headers={
            "Authorization": "Bearer " + await _admin(env.pool)})
        assert resp.status == 202
    worker = make_worker(env.runtime, 1)
    while await worker.run_one():
        pass
    new = one.commit({"a": "changed"})  # a push PAO never hears about
    from app import jobs
    await jobs.enqueue(env.pool, tasks.REFRESH_TASK, {"periodic": True},
                       queueing_lock=tasks.REFRESH_LOCK)
    while await worker.run_one():
        pass
    assert env.onedev.refs("octo-one")["refs/heads/main"] == new
    events = [r["event_type"] for r in await env.pool.fetch(
        "SELECT event_type FROM sync_logs ORDER BY id")]
    assert events.count("refresh") == 2
    [again] = await todo(env.pool, tasks.REFRESH_TASK)  # the next refresh waits its turn
    assert again["queueing_lock"] == tasks.REFRESH_LOCK


async def test_refresh_rereads_a_rename_missed_while_down_and_applies_the_rename_policy(make_env):
    from app import jobs

    env = await make_env(mode="token", worker=False, on_rename="rename")
    repo = env.gh.create_repo("octo/one", files={"a": "1"})
    resp = await env.client.post("/api/v1/mirrors", json={"repository": "octo/one"}, headers={
        "Authorization": "Bearer " + await _admin(env.pool)})
    assert resp.status == 202
    worker = make_worker(env.runtime, 1)
    while await worker.run_one():
        pass
    # Renamed and transferred while PAO was down: no webhook, and the old URL is gone.
    env.gh.rename_repo("octo/one", "acme/uno")
    new = repo.commit({"a": "2"})
    for _ in range(2):
        await jobs.enqueue(env.pool, tasks.REFRESH_TASK, {}, queueing_lock=tasks.REFRESH_LOCK)
        while await worker.run_one():
            pass
    row = await env.mirror_row("acme/uno")
    assert row is not None and row["sync_status"] == "completed"
    assert (row["github_repo_id"], row["github_clone_url"]) == (repo.id, repo.clone_url)
    assert row["onedev_project_path"] == "acme-uno"  # PAO_MIRROR_ON_RENAME=rename, as after a webhook
    assert env.onedev.refs("acme-uno")["refs/heads/main"] == new
    # Read by id, conditionally: the second refresh found it unchanged (304).
    reads = env.gh.api_requests("GET", f"/repositories/{repo.id}")
    assert [r.status for r in reads] == [200, 304]


async def _admin(pool):
    from app.api.auth import create_token
    _, token = await create_token(pool, user_id="root", is_admin=True)
    return token
