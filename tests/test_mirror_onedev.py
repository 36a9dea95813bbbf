"""OneDevClient against the OneDev fake: paths, auth, body shapes, errors."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import aiohttp
import pytest

from app.mirror.onedev import (
    OneDevAuthError,
    OneDevClient,
    OneDevError,
    OneDevNameTaken,
)
from tests.fakes.onedev import OneDevFake

TOKEN = "onedev-secret-token"


def _work_repo(onedev: OneDevFake) -> Path:
    """A local repository with one commit, to push into the fake's projects."""
    work = onedev.root.parent / "work"
    subprocess.run(["git", "init", "-q", str(work)], check=True)
    subprocess.run(["git", "-C", str(work), "commit", "-q", "--allow-empty", "-m", "c"], check=True,
                   env={**os.environ, "GIT_AUTHOR_NAME": "a", "GIT_AUTHOR_EMAIL": "a@x",
                        "GIT_COMMITTER_NAME": "a", "GIT_COMMITTER_EMAIL": "a@x"})
    return work


@pytest.fixture
async def onedev(aiohttp_server, tmp_path):
    fake = OneDevFake(tmp_path / "onedev")
    server = await aiohttp_server(fake.app())
    fake.url = str(server.make_url("")).rstrip("/")
    return fake


@pytest.fixture
async def client(onedev, http_session):
    return OneDevClient(http_session, onedev.url, TOKEN)


async def test_create_returns_bare_id_and_sends_required_objects(client, onedev):
    project_id = await client.create_project("octo-hello", parent_id=None,
                                             description="Synced from GitHub: octo/hello")
    assert isinstance(project_id, int)
    project = onedev.projects[project_id]
    assert project.name == "octo-hello" and project.code_management and not project.issue_management
    assert await client.project_id("octo-hello") == project_id
    assert await client.project_id("nope") is None
    assert onedev.requests[0].auth == "bearer"


async def test_duplicate_name_is_name_taken(client):
    await client.create_project("dup", parent_id=None, description="x")
    with pytest.raises(OneDevNameTaken) as err:
        await client.create_project("dup", parent_id=None, description="x")
    assert "already used" in str(err.value)
    assert not err.value.retryable


async def test_child_project_path(client, onedev):
    parent = await client.create_project("mirrors", parent_id=None, description="p")
    child = await client.create_project("octo-hello", parent_id=parent, description="c")
    assert await client.project_id("mirrors/octo-hello") == child
    assert client.clone_url("mirrors/octo-hello") == f"{onedev.url}/mirrors/octo-hello.git"


async def test_like_query_is_rechecked_for_the_name(client, onedev):
    onedev.add_project("a-b")
    onedev.add_project("A_B")
    # The LIKE matches both; only A_B is the same name (OneDev ignores case in names).
    assert [p["name"] for p in await client.find_by_name("a_b")] == ["A_B"]
    assert [p["name"] for p in await client.find_by_name("a-b")] == ["a-b"]


async def test_paths_are_found_ignoring_case(client, onedev):
    parent = onedev.add_project("Mirrors")
    child = onedev.add_project("Octo-Hello", parent.id)
    assert await client.project_id("mirrors/octo-hello") == child.id


async def test_before_12_0_10_paths_are_found_through_the_query(client, onedev):
    onedev.ids_endpoint = False  # OneDev 12.0.0-12.0.9: no /~api/projects/ids/{path}
    parent = onedev.add_project("mirrors")
    onedev.add_project("octo_hello")  # a LIKE match at the root, not under the parent
    child = onedev.add_project("octo-hello", parent.id)
    assert await client.project_id("mirrors/octo-hello") == child.id
    assert await client.project_id("mirrors") == parent.id
    assert await client.project_id("mirrors/nope") is None
    assert any(r.path.startswith("/~api/projects?") for r in onedev.requests)


async def test_rename_keeps_the_project_and_its_repository(client, onedev):
    pid = await client.create_project("old-name", parent_id=None, description="d")
    onedev.add_project("taken")
    await client.rename_project(pid, "new-name", "d2")
    assert await client.project_id("new-name") == pid and await client.project_id("old-name") is None
    assert onedev.repo_dir("new-name").exists() and onedev.projects[pid].description == "d2"
    with pytest.raises(OneDevNameTaken):
        await client.rename_project(pid, "TAKEN", "d2")


async def test_basic_auth_with_user(onedev, http_session):
    onedev.user = "pao"
    good = OneDevClient(http_session, onedev.url, TOKEN, user="pao")
    await good.create_project("x", parent_id=None, description="d")
    assert onedev.requests[-1].auth == "basic"
    wrong_user = OneDevClient(http_session, onedev.url, TOKEN, user="mallory")
    with pytest.raises(OneDevAuthError):
        await wrong_user.project_id("x")


async def test_bad_token_is_auth_error_naming_the_variable(onedev, http_session):
    bad = OneDevClient(http_session, onedev.url, "wrong-token")
    with pytest.raises(OneDevAuthError) as err:
        await bad.create_project("x", parent_id=None, description="d")
    assert "PAO_ONEDEV_TOKEN" in str(err.value) and "wrong-token" not in str(err.value)
    assert not err.value.retryable


async def test_token_without_create_right_is_403(onedev, http_session):
    onedev.tokens["read-only-token"] = False
    ro = OneDevClient(http_session, onedev.url, "read-only-token")
    with pytest.raises(OneDevAuthError) as err:
        await ro.create_project("x", parent_id=None, description="d")
    assert err.value.status == 403


async def test_503_and_network_errors_are_retryable(client, onedev, http_session):
    onedev.fail_next = 1
    with pytest.raises(OneDevError) as err:
        await client.project_id("x")
    assert err.value.status == 503 and err.value.retryable
    down = OneDevClient(http_session, "http://127.0.0.1:9", TOKEN)
    with pytest.raises(OneDevError) as err:
        await down.project_id("x")
    assert err.value.status == 0 and err.value.retryable


async def test_default_branch_round_trip(client, onedev):
    pid = await client.create_project("x", parent_id=None, description="d")
    assert await client.default_branch(pid) is None  # 204 until set
    with pytest.raises(OneDevError) as err:
        await client.set_default_branch(pid, "develop")
    assert err.value.status == 500 and "Branch not exist: develop" in str(err.value)
    work = _work_repo(onedev)
    subprocess.run(["git", "-C", str(work), "push", "-q", str(onedev.repo_dir("x")),
                    "HEAD:refs/heads/develop"], check=True)
    await client.set_default_branch(pid, "develop")
    assert await client.default_branch(pid) == "develop"


async def test_fake_rejects_what_onedev_rejects(onedev, http_session):
    url = f"{onedev.url}/~api/projects"
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with http_session.post(url, json={"name": "ok"}, headers=auth) as resp:
        assert resp.status == 400 and "gitPackConfig" in await resp.text()
    # The REST API runs no bean validation: a name the UI would refuse is created, so
    # PAO's own cleaning (naming.project_name) is what keeps names sane.
    async with http_session.post(url, json={"name": "-bad café", "gitPackConfig": {},
                                            "codeAnalysisSetting": {}}, headers=auth) as resp:
        assert resp.status == 200
    async with http_session.get(url, params={"query": ""}, headers=auth) as resp:
        assert resp.status == 406  # offset and count are required
    async with http_session.get(url, params={"offset": 0, "count": 10, "name": "x"},
                                headers=auth) as resp:
        assert resp.status == 406  # an unknown parameter
    async with http_session.get(url, params={"offset": 0, "count": 10}) as resp:
        assert resp.status == 401


async def test_client_is_aiohttp_based(client):
    assert isinstance(client.session, aiohttp.ClientSession)



async def test_after_the_first_push_onedev_defaults_to_main_else_the_last_branch(client, onedev):
    work = _work_repo(onedev)

    async def first_push(name: str, branches: list[str]) -> str | None:
        pid = await client.create_project(name, parent_id=None, description="d")
        subprocess.run(["git", "-C", str(work), "push", "-q", str(onedev.repo_dir(name)),
                        *(f"HEAD:refs/heads/{b}" for b in branches)], check=True)
        onedev._settle_default(onedev.projects[pid])  # what OneDev's post-receive does
        return await client.default_branch(pid)

    assert await first_push("no-main", ["aaa", "trunk", "zzz"]) == "zzz"  # not the first
    assert await first_push("with-main", ["aaa", "main", "zzz"]) == "main"
