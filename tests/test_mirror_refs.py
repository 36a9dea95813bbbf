"""Pushing refs OneDev's way: default branch renames, refs its receive hook refuses, stars."""

from __future__ import annotations

from tests.mirror_support import github_refs, heads_and_tags, project_head


async def test_renamed_default_branch_is_pushed_set_then_the_old_one_pruned(make_env):
    env = await make_env()
    inst = env.gh.install("octo", repos=["octo/hello"])
    repo = env.gh.create_repo("octo/hello", installation=inst, default_branch="master",
                              files={"a": "b"})
    await env.deliver("star", env.gh.star_payload(repo, "alice"))
    row = await env.wait_status("octo/hello", "completed")
    assert project_head(env.onedev, "octo-hello") == "refs/heads/master"

    # GitHub's "rename branch": master becomes main, the default follows, master is gone.
    sha = repo.sha("master")
    repo.set_ref("refs/heads/main", sha)
    repo.set_ref("refs/heads/master", None)
    repo.default_branch = "main"
    status, _ = await env.deliver("push", env.gh.push_payload(repo, before=sha, after="0" * 40,
                                                               ref="refs/heads/master"))
    assert status == 202
    await env.wait_status("octo/hello", "completed", successes=2)
    assert heads_and_tags(env.onedev.refs("octo-hello")) == {"refs/heads/main": sha}
    assert env.onedev.projects[row["onedev_project_id"]].default_branch == "main"
    assert project_head(env.onedev, "octo-hello") == "refs/heads/main"
    assert [log["status"] for log in await env.logs("octo/hello")] == ["success", "success"]


async def test_refs_onedev_refuses_do_not_block_the_others_and_are_logged(make_env):
    env = await make_env()
    inst = env.gh.install("octo", repos=["octo/hello"])
    repo = env.gh.create_repo("octo/hello", installation=inst, files={"a": "b"})
    repo.commit({"c": "d"}, branch="feature/a+b")
    repo.commit({"e": "f"}, branch="fine")
    repo.tag("build=7")
    await env.deliver("star", env.gh.star_payload(repo, "alice"))
    row = await env.wait_status("octo/hello", "completed")
    mirrored = heads_and_tags(env.onedev.refs("octo-hello"))
    assert mirrored == {r: s for r, s in heads_and_tags(github_refs(repo)).items()
                        if r not in ("refs/heads/feature/a+b", "refs/tags/build=7")}
    [log] = await env.logs("octo/hello")
    assert log["status"] == "success"
    assert log["refs_refused"] == ["refs/heads/feature/a+b", "refs/tags/build=7"]
    assert "refs/heads/feature/a+b" in log["error"]
    assert set(row["last_synced_refs"]) == set(mirrored)  # what OneDev holds, not what it refused

    # A later push still moves the ordinary refs.
    before = repo.sha("fine")
    after = repo.commit({"e": "g"}, branch="fine")
    await env.deliver("push", env.gh.push_payload(repo, before=before, after=after,
                                                  ref="refs/heads/fine"))
    await env.wait_status("octo/hello", "completed", successes=2)
    assert env.onedev.refs("octo-hello")["refs/heads/fine"] == after


async def test_star_created_mirrors_and_watch_started_is_the_same_request(make_env):
    env = await make_env(worker=False)
    inst = env.gh.install("octo", repos=["octo/hello"])
    repo = env.gh.create_repo("octo/hello", installation=inst, files={"a": "b"})
    # GitHub sends both for one star; they are one mirror and one job.
    status, star = await env.deliver("star", env.gh.star_payload(repo, "alice"))
    assert status == 202
    status, watch = await env.deliver("watch", env.gh.watch_payload(repo, "alice"))
    assert status == 202 and watch["job_ids"] == star["job_ids"]
    assert await env.pool.fetchval("SELECT count(*) FROM repositories") == 1
    status, body = await env.deliver("star", env.gh.star_payload(repo, "alice", action="deleted"))
    assert "unstar of octo/hello recorded" in body["detail"]
    assert status == 200  # recorded, nothing to queue under PAO_MIRROR_ON_UNSTAR=keep
    assert (await env.mirror_row("octo/hello"))["unstarred_at"] is not None
