"""Which OneDev project holds which GitHub repository: collisions, adoption, renames."""

from __future__ import annotations

import shutil
import subprocess

import asyncpg
import pytest

from app import db
from app.api.auth import create_token
from app.mirror import stars
from app.mirror.config import mirror_settings
from app.mirror.naming import description
from tests.conftest import _with_database
from tests.mirror_support import github_refs, heads_and_tags, make_history
from tests.support import wait_for


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


async def test_unstar_with_delete_policy_keeps_an_adopted_project(make_env):
    env = await make_env(on_conflict="adopt", on_unstar="delete")
    theirs = env.onedev.add_project("octo-hello", description="the team's own project")
    inst = env.gh.install("octo", repos=["octo/hello"])
    repo = env.gh.create_repo("octo/hello", installation=inst, files={"a": "b"})
    await env.deliver("star", env.gh.star_payload(repo, "alice"))
    await env.wait_status("octo/hello", "completed")
    await env.deliver("star", env.gh.star_payload(repo, "alice", action="deleted"))

    async def dropped():
        row = await env.mirror_row("octo/hello")
        return row if row["deleted_at"] is not None else None
    await wait_for(dropped, what="mirror dropped")
    assert theirs.id in env.onedev.projects  # not PAO's to delete


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



async def test_stars_poll_takes_the_new_name_after_a_transfer(make_env):
    env = await make_env(mode="token", users=("alice",))
    ms = mirror_settings(env.runtime.settings)
    repo = env.gh.create_repo("octo/one", files={"a": "1"})
    env.gh.star("alice", "octo/one")
    await stars.poll_all(env.pool, env.runtime.github, ms)
    await env.wait_status("octo/one", "completed")
    env.gh.rename_repo("octo/one", "acme/one")
    await stars.poll_all(env.pool, env.runtime.github, ms)
    row = await env.mirror_row("acme/one")
    assert row["github_repo_id"] == repo.id and row["github_clone_url"] == repo.clone_url


async def test_migration_gives_mirrors_that_shared_a_project_their_own(pg_server_dsn, tmp_path):
    before_006 = tmp_path / "sql"
    before_006.mkdir()
    for migration in sorted(db.SQL_DIR.glob("*.sql")):
        if int(migration.name[:3]) < 6:
            shutil.copy(migration, before_006)
    admin = await asyncpg.connect(pg_server_dsn)
    await admin.execute("CREATE DATABASE pao_mirror_006")
    await admin.close()
    conn = await db.connect(_with_database(pg_server_dsn, "pao_mirror_006"))
    try:
        await db.migrate(conn, before_006)
        for github_id, name in ((1, "col-x/y"), (2, "col/x-y"), (3, "other/z")):
            owner, repo = name.split("/")
            await conn.execute(
                """INSERT INTO repositories (github_repo_id, github_url, github_clone_url,
                       github_owner, github_name, github_full_name, onedev_project_id,
                       onedev_project_path, sync_status, last_synced_refs)
                   VALUES ($1, '', '', $2, $3, $4, $5, $6, 'completed', '{"refs/heads/a": "1"}')""",
                github_id, owner, repo, name, 7 if github_id < 3 else 8,
                "col-x-y" if github_id < 3 else "other-z")
        await db.migrate(conn)
        rows = {r["github_repo_id"]: r for r in await conn.fetch("SELECT * FROM repositories")}
        assert rows[1]["onedev_project_id"] == 7 and rows[1]["sync_status"] == "completed"
        assert rows[2]["onedev_project_id"] is None and rows[2]["sync_status"] == "failed"
        assert rows[2]["last_synced_refs"] == {} and "another mirror" in rows[2]["error_message"]
        assert rows[3]["onedev_project_id"] == 8
        with pytest.raises(asyncpg.UniqueViolationError):
            await conn.execute("UPDATE repositories SET onedev_project_id = 7 WHERE github_repo_id = 3")
    finally:
        await conn.close()
        admin = await asyncpg.connect(pg_server_dsn)
        await admin.execute("DROP DATABASE pao_mirror_006 WITH (FORCE)")
        await admin.close()
