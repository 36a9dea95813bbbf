"""End to end: webhooks and polls -> queue -> worker -> git -> OneDev fake, with real git."""

from __future__ import annotations

import logging
import shutil
import subprocess

import pytest

from app.mirror import git, stars
from app.mirror.config import mirror_settings
from tests.mirror_support import (
    ONEDEV_TOKEN,
    github_refs,
    heads_and_tags,
    make_history,
    project_head,
)
from tests.support import wait_for


async def test_star_mirrors_branches_tags_default_branch_and_no_pull_refs(make_env, caplog):
    caplog.set_level(logging.INFO)
    env = await make_env()
    inst = env.gh.install("octo", repos=["octo/hello"])
    repo = make_history(env.gh, "octo/hello", installation=inst)
    status, body = await env.deliver("watch", env.gh.watch_payload(repo, "alice"))
    assert status == 202, body
    row = await env.wait_status("octo/hello", "completed")
    assert row["onedev_project_path"] == "octo-hello"
    project = env.onedev.projects[row["onedev_project_id"]]
    assert project.description == f"Synced from GitHub: octo/hello (repository id {repo.id})"
    mirrored = env.onedev.refs("octo-hello")
    assert mirrored == heads_and_tags(github_refs(repo))
    assert "refs/heads/aaa" in mirrored and "refs/tags/v1.0" in mirrored
    assert not any(r.startswith("refs/pull/") for r in mirrored)
    # OneDev picks "main" or the last branch received; PAO sets GitHub's default itself.
    assert [r.status for r in env.onedev.requests
            if r.method == "POST" and r.path.endswith("/default-branch")] == [200]
    assert project.default_branch == "trunk"
    assert project_head(env.onedev, "octo-hello") == "refs/heads/trunk"
    [log] = await env.logs("octo/hello")
    assert log["status"] == "success" and log["event_type"] == "star"
    assert log["refs_pushed"] == len(mirrored) and log["duration_seconds"] >= 0
    assert "sync_initiated" in caplog.text and "sync_completed" in caplog.text

    # Scenario B: a second star is idempotent: no job, no new project, no new push.
    jobs_before = await env.pool.fetchval("SELECT count(*) FROM jobs")
    pushes_before = sum(1 for r in env.onedev.requests if "receive-pack" in r.path)
    status, body = await env.deliver("watch", env.gh.watch_payload(repo, "bob"))
    assert status == 200 and "already synchronized" in body["reason"]
    assert await env.pool.fetchval("SELECT count(*) FROM jobs") == jobs_before
    assert len(env.onedev.projects) == 1
    assert sum(1 for r in env.onedev.requests if "receive-pack" in r.path) == pushes_before
    assert ONEDEV_TOKEN not in caplog.text


async def test_push_moves_new_commit_and_prunes_deleted_branch(make_env):
    env = await make_env()
    inst = env.gh.install("octo", repos=["octo/hello"])
    repo = make_history(env.gh, "octo/hello", installation=inst)
    await env.deliver("watch", env.gh.watch_payload(repo, "alice"))
    await env.wait_status("octo/hello", "completed")
    before = repo.sha("trunk")
    # A pull request opened inside OneDev: OneDev keeps it under refs/pulls/.
    subprocess.run(["git", "update-ref", "refs/pulls/1/head", before],
                   cwd=env.onedev.repo_dir("octo-hello"), check=True)
    new = repo.commit({"README.md": "new\n"}, branch="trunk")
    repo.set_ref("feature/x", None)
    repo.git("tag", "-d", "light")
    status, _ = await env.deliver("push", env.gh.push_payload(repo, before=before, after=new))
    assert status == 202
    await env.wait_status("octo/hello", "completed", successes=2)
    mirrored = env.onedev.refs("octo-hello")
    assert mirrored["refs/heads/trunk"] == new
    assert "refs/heads/feature/x" not in mirrored and "refs/tags/light" not in mirrored
    assert heads_and_tags(mirrored) == heads_and_tags(github_refs(repo))
    # OneDev's own pull-request refs are not GitHub's to prune.
    assert mirrored["refs/pulls/1/head"] == before
    logs = await env.logs("octo/hello")
    assert [entry["event_type"] for entry in logs] == ["star", "push"]
    assert logs[-1]["refs_pushed"] == 3  # trunk moved, a branch and a tag deleted


async def test_a_project_deleted_in_onedev_is_created_again(make_env):
    env = await make_env()
    inst = env.gh.install("octo", repos=["octo/hello"])
    repo = make_history(env.gh, "octo/hello", installation=inst)
    await env.deliver("watch", env.gh.watch_payload(repo, "alice"))
    old = (await env.wait_status("octo/hello", "completed"))["onedev_project_id"]
    # Someone deletes the project in OneDev; PAO still holds its id.
    del env.onedev.projects[old]
    shutil.rmtree(env.onedev.repo_dir("octo-hello"))
    before = repo.sha("trunk")
    new = repo.commit({"README.md": "new\n"}, branch="trunk")
    await env.deliver("push", env.gh.push_payload(repo, before=before, after=new))
    row = await env.wait_status("octo/hello", "completed", successes=2)
    assert row["onedev_project_id"] != old and row["onedev_project_id"] in env.onedev.projects
    assert env.onedev.refs("octo-hello") == heads_and_tags(github_refs(repo))
    assert env.onedev.projects[row["onedev_project_id"]].default_branch == "trunk"


async def test_push_to_unmirrored_repository_says_nothing(make_env):
    env = await make_env(worker=False)
    inst = env.gh.install("octo", repos=["octo/other"])
    repo = env.gh.create_repo("octo/other", installation=inst, files={"a": "b"})
    status, body = await env.deliver("push", env.gh.push_payload(repo, before="0" * 40))
    assert status == 200 and body["status"] == "ignored"
    assert "mirror" not in body["reason"]
    assert await env.pool.fetchval("SELECT count(*) FROM jobs") == 0


async def test_burst_of_stars_is_one_job(make_env):
    env = await make_env(worker=False)
    inst = env.gh.install("octo", repos=["octo/hello"])
    repo = env.gh.create_repo("octo/hello", installation=inst, files={"a": "b"})
    job_ids = set()
    for user in ("alice", "bob", "carol"):
        status, body = await env.deliver("watch", env.gh.watch_payload(repo, user))
        assert status == 202
        job_ids.update(body["job_ids"])
    assert len(job_ids) == 1
    assert await env.pool.fetchval("SELECT count(*) FROM jobs") == 1
    assert await env.pool.fetchval("SELECT count(*) FROM repositories") == 1


async def test_onedev_down_then_up_is_retried_and_completes(make_env):
    env = await make_env()
    inst = env.gh.install("octo", repos=["octo/hello"])
    repo = env.gh.create_repo("octo/hello", installation=inst, files={"a": "b"})
    env.onedev.unavailable = True
    await env.deliver("watch", env.gh.watch_payload(repo, "alice"))

    async def retrying():
        return [entry for entry in await env.logs("octo/hello") if entry["status"] == "retrying"]
    [first] = await wait_for(retrying, timeout=20, what="a retrying attempt")
    assert "503" in first["error"]
    row = await env.mirror_row("octo/hello")
    assert row["sync_status"] in ("pending", "in_progress") and row["retry_count"] >= 1
    env.onedev.unavailable = False
    row = await env.wait_status("octo/hello", "completed", timeout=30)
    assert row["error_message"] is None and row["retry_count"] == 0
    assert env.onedev.refs("octo-hello") == heads_and_tags(github_refs(repo))
    statuses = [entry["status"] for entry in await env.logs("octo/hello")]
    assert statuses[0] == "retrying" and statuses[-1] == "success"


async def test_bad_onedev_token_fails_once_with_a_clear_error(make_env):
    env = await make_env()
    env.runtime.settings.extra["mirror"] = mirror_settings(env.runtime.settings).__class__(
        **{**mirror_settings(env.runtime.settings).__dict__, "onedev_token": "wrong-onedev-token"})
    inst = env.gh.install("octo", repos=["octo/hello"])
    repo = env.gh.create_repo("octo/hello", installation=inst, files={"a": "b"})
    await env.deliver("watch", env.gh.watch_payload(repo, "alice"))
    row = await env.wait_status("octo/hello", "failed")
    assert "PAO_ONEDEV_TOKEN" in row["error_message"]
    assert "wrong-onedev-token" not in row["error_message"]
    [log] = await env.logs("octo/hello")
    assert log["status"] == "failed"
    # The mirror row commits before the worker records the job's end: wait for it.
    job = await wait_for(lambda: env.pool.fetchrow(
        "SELECT * FROM jobs WHERE task = 'mirror.sync' AND status <> 'doing'"), what="job end")
    assert job["status"] == "failed" and job["attempts"] == 1
    assert not env.onedev.projects


async def test_private_repository_uses_the_installation_token(make_env):
    env = await make_env()
    inst = env.gh.install("octo", repos=["octo/secret"])
    repo = make_history(env.gh, "octo/secret", private=True, installation=inst)
    await env.deliver("watch", env.gh.watch_payload(repo, "alice"))
    row = await env.wait_status("octo/secret", "completed")
    assert row["github_is_private"]
    assert env.onedev.refs("octo-secret") == heads_and_tags(github_refs(repo))
    fetches = [r for r in env.gh.git_requests if r["service"] == "git-upload-pack"]
    assert fetches and all(r["user"] == "x-access-token" for r in fetches)
    assert "x-access-token" not in row["github_clone_url"] and "@" not in row["github_clone_url"]


async def test_private_repository_without_access_fails_at_once(make_env):
    env = await make_env()
    inst = env.gh.install("octo", repos=["octo/other"])
    repo = env.gh.create_repo("octo/secret", private=True, files={"a": "b"})
    await env.deliver("watch", env.gh.watch_payload(repo, "alice", installation=inst))
    row = await env.wait_status("octo/secret", "failed")
    assert "GitHub" in row["error_message"] and "not found" in row["error_message"]
    job = await env.pool.fetchrow("SELECT * FROM jobs WHERE task = 'mirror.sync'")
    assert job["attempts"] == 1


async def test_stars_poll_new_star_conditional_second_poll_and_unstar(make_env):
    env = await make_env(mode="token", users=("alice",))
    ms = mirror_settings(env.runtime.settings)
    one = env.gh.create_repo("octo/one", files={"a": "1"})
    env.gh.create_repo("octo/two", files={"a": "2"})
    env.gh.star("alice", "octo/one")
    [result] = await stars.poll_all(env.pool, env.runtime.github, ms)
    assert result.queued == ["octo/one"]
    await env.wait_status("octo/one", "completed")

    [result] = await stars.poll_all(env.pool, env.runtime.github, ms)
    assert result.queued == []
    polls = env.gh.api_requests("GET", "/users/alice/starred")
    assert len(polls) == 2
    assert "If-None-Match" not in polls[0].headers and polls[0].status == 200
    assert polls[1].headers.get("If-None-Match") and polls[1].status == 304

    env.gh.star("alice", "octo/two")
    [result] = await stars.poll_all(env.pool, env.runtime.github, ms)
    assert result.queued == ["octo/two"]
    await env.wait_status("octo/two", "completed")

    env.gh.unstar("alice", "octo/one")
    [result] = await stars.poll_all(env.pool, env.runtime.github, ms)
    assert result.unstarred == ["octo/one"]
    row = await env.mirror_row("octo/one")
    assert row["unstarred_at"] is not None and row["deleted_at"] is None  # policy keep
    assert env.onedev.by_path("octo-one") is not None
    assert one.full_name == "octo/one"


async def test_stars_poll_follows_every_page(make_env):
    env = await make_env(mode="token", users=("alice",), worker=False)
    for i in range(35):  # the fake pages by 30
        env.gh.create_repo(f"octo/r{i}", files={"a": str(i)})
        env.gh.star("alice", f"octo/r{i}")
    [result] = await stars.poll_all(env.pool, env.runtime.github, mirror_settings(env.runtime.settings))
    assert result.stars == 35 and len(result.queued) == 35


async def test_unstar_with_delete_policy_removes_project_and_cache(make_env):
    env = await make_env(on_unstar="delete")
    inst = env.gh.install("octo", repos=["octo/hello"])
    repo = env.gh.create_repo("octo/hello", installation=inst, files={"a": "b"})
    await env.deliver("watch", env.gh.watch_payload(repo, "alice"))
    row = await env.wait_status("octo/hello", "completed")
    cache = git.cache_path(env.runtime.settings.data_dir, repo.id)
    assert cache.exists()
    # GitHub's only unstar event: star/deleted (watch has no "deleted").
    with pytest.raises(ValueError):
        env.gh.watch_payload(repo, "alice", action="deleted")
    status, _ = await env.deliver("star", env.gh.star_payload(repo, "alice", action="deleted"))
    assert status == 202

    async def deleted():
        r = await env.mirror_row("octo/hello")
        return r if r["deleted_at"] is not None else None
    await wait_for(deleted, what="mirror deleted")
    assert row["onedev_project_id"] not in env.onedev.projects
    assert not cache.exists()
    # Starred again: a fresh mirror.
    await env.deliver("star", env.gh.star_payload(repo, "alice"))
    row = await env.wait_status("octo/hello", "completed", successes=2)
    assert row["deleted_at"] is None and row["onedev_project_id"] in env.onedev.projects


async def test_mirroring_off_ignores_stars_with_a_reason(make_env):
    env = await make_env(worker=False, onedev_url=None)
    inst = env.gh.install("octo", repos=["octo/hello"])
    repo = env.gh.create_repo("octo/hello", installation=inst, files={"a": "b"})
    status, body = await env.deliver("watch", env.gh.watch_payload(repo, "alice"))
    assert status == 200 and "PAO_ONEDEV_URL" in body["reason"]
    assert await env.pool.fetchval("SELECT count(*) FROM repositories") == 0


async def test_scenarios_c_and_d_in_progress_and_failed_retry(make_env, caplog):
    caplog.set_level(logging.INFO)
    env = await make_env()
    ms = mirror_settings(env.runtime.settings)
    env.runtime.settings.extra["mirror"] = ms.__class__(**{**ms.__dict__,
                                                            "onedev_token": "wrong-onedev-token"})
    inst = env.gh.install("octo", repos=["octo/hello"])
    repo = env.gh.create_repo("octo/hello", installation=inst, files={"a": "b"})
    await env.deliver("watch", env.gh.watch_payload(repo, "alice"))
    await env.wait_status("octo/hello", "failed")

    # D: failed -> a new star retries, and with the token fixed it completes.
    env.runtime.settings.extra["mirror"] = ms
    status, body = await env.deliver("watch", env.gh.watch_payload(repo, "bob"))
    assert status == 202
    row = await env.wait_status("octo/hello", "completed")
    assert row["retry_count"] == 0 and row["error_message"] is None
    assert [entry["status"] for entry in await env.logs("octo/hello")] == ["failed", "success"]

    # C: in progress with a live job -> nothing new; without one (worker died) -> retried.
    await env.stop_worker()
    await env.pool.execute("UPDATE repositories SET sync_status = 'in_progress'")
    status, body = await env.deliver("watch", env.gh.watch_payload(repo, "carol"))
    assert status == 202  # no live job held the lock: the stuck row is retried
    status, body = await env.deliver("watch", env.gh.watch_payload(repo, "dave"))
    assert status == 202 and len(body["job_ids"]) == 1  # the same waiting job
    await env.pool.execute("UPDATE repositories SET sync_status = 'in_progress'")
    status, body = await env.deliver("watch", env.gh.watch_payload(repo, "erin"))
    assert status == 200 and "in progress" in body["reason"]
    for token in [t.token for t in env.gh.issued_tokens()] + [ONEDEV_TOKEN]:
        assert token not in caplog.text


async def test_app_mode_poll_mirrors_a_public_star_outside_any_installation(make_env):
    env = await make_env(users=("alice",))
    inst = env.gh.install("someorg")
    status, _ = await env.deliver("installation", env.gh.installation_payload(inst))
    assert status == 200
    repo = make_history(env.gh, "octo/public")  # the App is not installed on octo
    env.gh.star("alice", "octo/public")
    [result] = await stars.poll_all(env.pool, env.runtime.github, mirror_settings(env.runtime.settings))
    assert result.queued == ["octo/public"]
    await env.wait_status("octo/public", "completed")
    assert env.onedev.refs("octo-public") == heads_and_tags(github_refs(repo))
