"""Which OneDev project holds which GitHub repository: collisions, adoption, renames."""

from __future__ import annotations

import subprocess

from app.api.auth import create_token
from app.mirror.naming import description
from tests.mirror_support import github_refs, heads_and_tags, make_history


async def test_names_that_clean_alike_never_share_a_project(make_env):
    env = await make_env()
    inst = env.gh.install("col", repos=["col/x-y"])
    first = env.gh.create_repo("col-x/y", installation=inst, files={"first.txt": "1"})
    first.commit({"only-first.txt": "1"}, branch="first-only")
    await env.deliver("star", env.gh.star_payload(first, "alice"))
    await env.wait_status("col-x/y", "completed")
    second = env.gh.create_repo("col/x-y", installation=inst, files={"second.txt": "2"})
    await env.deliver("star", env.gh.star_payload(second, "alice"))
    row2 = await env.wait_status("col/x-y", "completed")
    # Differs only in case: OneDev compares project names case-insensitively.
    third = env.gh.create_repo("COL-X/Y", installation=inst, files={"third.txt": "3"})
    await env.deliver("star", env.gh.star_payload(third, "alice"))
    row3 = await env.wait_status("COL-X/Y", "completed")
    assert row3["onedev_project_path"] == f"COL-X-Y-{third.id}"

    rows = {r["github_full_name"]: r for r in await env.pool.fetch("SELECT * FROM repositories")}
    assert rows["col-x/y"]["onedev_project_path"] == "col-x-y"
    assert row2["onedev_project_path"] == f"col-x-y-{second.id}"
    # The first mirror keeps its own branches: nothing pushed into it, nothing pruned.
    assert heads_and_tags(env.onedev.refs("col-x-y")) == heads_and_tags(github_refs(first))
    assert heads_and_tags(env.onedev.refs(f"col-x-y-{second.id}")) == heads_and_tags(
        github_refs(second))
    assert len({r["onedev_project_id"] for r in rows.values()}) == 3 == len(env.onedev.projects)


async def test_a_project_pao_did_not_create_gets_a_suffixed_name_by_default(make_env):
    env = await make_env()
    theirs = env.onedev.add_project("octo-hello", description="the team's own project")
    inst = env.gh.install("octo", repos=["octo/hello"])
    repo = env.gh.create_repo("octo/hello", installation=inst, files={"a": "b"})
    await env.deliver("star", env.gh.star_payload(repo, "alice"))
    row = await env.wait_status("octo/hello", "completed")
    assert row["onedev_project_path"] == f"octo-hello-{repo.id}" and not row["onedev_adopted"]
    assert env.onedev.refs(env.onedev.path_of(theirs)) == {}  # untouched


async def test_fail_policy_stops_with_a_clear_status(make_env):
    env = await make_env(on_conflict="fail")
    env.onedev.add_project("octo-hello", description="the team's own project")
    inst = env.gh.install("octo", repos=["octo/hello"])
    repo = env.gh.create_repo("octo/hello", installation=inst, files={"a": "b"})
    await env.deliver("star", env.gh.star_payload(repo, "alice"))
    row = await env.wait_status("octo/hello", "failed")
    assert "PAO_MIRROR_ON_CONFLICT=fail" in row["error_message"]
    assert "'octo-hello' exists and PAO did not create it" in row["error_message"]
    assert len(env.onedev.projects) == 1


async def test_adopted_project_keeps_what_pao_did_not_push(make_env):
    env = await make_env(on_conflict="adopt")
    theirs = env.onedev.add_project("octo-hello", description="the team's own project")
    inst = env.gh.install("octo", repos=["octo/hello"])
    repo = make_history(env.gh, "octo/hello", installation=inst)
    # A branch that lives only in OneDev, and OneDev's default on it.
    work = env.onedev.root / "work"
    subprocess.run(["git", "clone", "-q", str(repo.path), str(work)], check=True)
    subprocess.run(["git", "-C", str(work), "push", "-q", str(env.onedev.repo_dir("octo-hello")),
                    "HEAD:refs/heads/team-only"], check=True)
    env.onedev._set_default(theirs, "team-only")
    await env.deliver("star", env.gh.star_payload(repo, "alice"))
    row = await env.wait_status("octo/hello", "completed")
    assert row["onedev_project_id"] == theirs.id and row["onedev_adopted"]

    before = repo.sha("trunk")
    repo.set_ref("feature/x", None)
    new = repo.commit({"README.md": "new\n"}, branch="trunk")
    await env.deliver("push", env.gh.push_payload(repo, before=before, after=new))
    await env.wait_status("octo/hello", "completed", successes=2)
    mirrored = env.onedev.refs("octo-hello")
    assert "refs/heads/feature/x" not in mirrored and mirrored["refs/heads/trunk"] == new
    assert "refs/heads/team-only" in mirrored  # never pushed by PAO: never pruned by PAO
    assert theirs.default_branch == "team-only"
    assert theirs.description == "the team's own project"


async def test_rename_and_transfer_are_followed_and_the_old_name_reused_elsewhere(make_env):
    env = await make_env()
    inst = env.gh.install("octo", repos=["octo/hello"])
    env.gh.install("acme", selection="all")
    repo = make_history(env.gh, "octo/hello", installation=inst)
    await env.deliver("star", env.gh.star_payload(repo, "alice"))
    old = await env.wait_status("octo/hello", "completed")

    env.gh.rename_repo("octo/hello", "acme/hello-two")
    newcomer = env.gh.create_repo("octo/hello", installation=inst, files={"intruder.txt": "x"})
    newcomer.commit({"x": "y"}, branch="intruder")
    before = repo.sha("trunk")
    after = repo.commit({"README.md": "after the move\n"}, branch="trunk")
    status, _ = await env.deliver("push", env.gh.push_payload(repo, before=before, after=after))
    assert status == 202
    row = await env.wait_status("acme/hello-two", "completed", successes=2)
    assert row["id"] == old["id"] and row["onedev_project_id"] == old["onedev_project_id"]
    assert row["github_clone_url"] == repo.clone_url
    assert row["onedev_project_path"] == "octo-hello"  # PAO_MIRROR_ON_RENAME=keep
    mirrored = heads_and_tags(env.onedev.refs("octo-hello"))
    assert mirrored == heads_and_tags(github_refs(repo)) and "refs/heads/intruder" not in mirrored
    _, token = await create_token(env.pool, user_id="dev")
    resp = await env.client.get("/api/v1/mirrors/acme/hello-two",
                                headers={"Authorization": f"Bearer {token}"})
    assert resp.status == 200 and (await resp.json())["github"]["id"] == repo.id


async def test_rename_policy_renames_the_onedev_project(make_env):
    env = await make_env(on_rename="rename")
    inst = env.gh.install("octo", repos=["octo/hello"])
    repo = env.gh.create_repo("octo/hello", installation=inst, files={"a": "b"})
    await env.deliver("star", env.gh.star_payload(repo, "alice"))
    old = await env.wait_status("octo/hello", "completed")
    env.gh.rename_repo("octo/hello", "octo/renamed")
    before = repo.sha()
    after = repo.commit({"a": "c"})
    await env.deliver("push", env.gh.push_payload(repo, before=before, after=after))
    row = await env.wait_status("octo/renamed", "completed", successes=2)
    assert row["onedev_project_id"] == old["onedev_project_id"]
    assert row["onedev_project_path"] == "octo-renamed"
    project = env.onedev.projects[row["onedev_project_id"]]
    assert env.onedev.path_of(project) == "octo-renamed"
    assert project.description == description("octo/renamed", repo.id)
    assert env.onedev.refs("octo-renamed")["refs/heads/main"] == after

