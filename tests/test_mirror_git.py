"""The git layer: cache or temp workdir by free disk, stale locks, timeouts retried."""

from __future__ import annotations

import dataclasses

import pytest

from app.mirror import git
from app.mirror.naming import disk_needed


async def test_workdir_uses_the_cache_when_the_disk_has_room(tmp_path):
    cache = tmp_path / "mirror" / "1.git"
    async with git.workdir(cache, 10) as (repo, is_cache):
        assert repo == cache and is_cache and (repo / "HEAD").exists()
    assert cache.exists()  # kept for the next, incremental, sync


async def test_stale_locks_from_a_killed_git_are_removed(tmp_path):
    cache = tmp_path / "mirror" / "1.git"
    async with git.workdir(cache, 10):
        pass
    (cache / "packed-refs.lock").write_text("")
    (cache / "refs" / "heads" / "main.lock").write_text("")
    async with git.workdir(cache, 10) as (repo, _):
        assert not list(repo.rglob("*.lock"))


async def test_short_disk_falls_back_to_a_temp_clone_removed_afterwards(tmp_path, monkeypatch):
    cache = tmp_path / "cache-disk" / "1.git"
    monkeypatch.setattr(git, "_free_bytes",
                        lambda p: 0 if "cache-disk" in str(p) else disk_needed(10) + 1)
    async with git.workdir(cache, 10) as (repo, is_cache):
        assert not is_cache and repo.exists() and repo != cache
        temp = repo
    assert not temp.exists() and not cache.exists()


async def test_no_room_anywhere_is_a_clear_permanent_error(tmp_path, monkeypatch):
    monkeypatch.setattr(git, "_free_bytes", lambda p: 0)
    with pytest.raises(git.DiskFull) as err:
        async with git.workdir(tmp_path / "c" / "1.git", 2 * 1024 * 1024):
            pass
    assert "2048 MB repository" in str(err.value)


async def test_git_timeout_is_retried_then_completes(make_env):
    env = await make_env(timeout=1.0)
    inst = env.gh.install("octo", repos=["octo/hello"])
    repo = env.gh.create_repo("octo/hello", installation=inst, files={"a": "b"})
    env.onedev.push_delay = 30.0
    await env.deliver("watch", env.gh.watch_payload(repo, "alice"))

    from tests.support import wait_for

    async def retrying():
        return [r for r in await env.logs("octo/hello") if r["status"] == "retrying"]
    [first] = await wait_for(retrying, timeout=20, what="a timed-out attempt")
    assert "timed out" in first["error"] and "PAO_MIRROR_TIMEOUT" in first["error"]
    env.onedev.push_delay = 0.0
    # The retry's clone and push must not race the 1 s limit on a loaded machine.
    settings = env.runtime.settings.extra["mirror"]
    env.runtime.settings.extra["mirror"] = dataclasses.replace(settings, timeout=60.0)
    await env.wait_status("octo/hello", "completed", timeout=30)
