"""Stale git locks in every cache: removed before each fetch, never while a live writer works."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path

from app.git.catalog import RepoCache
from app.git.locks import WRITER_FILE
from app.git.repo import BareRepository
from app.mirror import git as mirror_git
from tests.sync_helpers import CatalogRepo

ROOT = Path(__file__).resolve().parent.parent


def origin_with_pull(tmp_path: Path) -> tuple[CatalogRepo, str]:
    repo = CatalogRepo(tmp_path / "origin")
    repo.write("catalog/a.yaml", "name: a\n")
    head = repo.commit_push("one")
    subprocess.run(["git", "update-ref", "refs/pull/1/head", head], cwd=repo.remote, check=True)
    return repo, head


async def test_check_cache_fetches_past_locks_a_killed_git_left(tmp_path):
    origin, head = origin_with_pull(tmp_path)
    cache = RepoCache(tmp_path / "checks.git", origin.url, None)
    await cache.fetch_pull(1, "main", None, head)
    # What a git killed mid-fetch leaves: the ref it was updating, and packed-refs.
    for lock in ("refs/pao/pull/1.lock", "packed-refs.lock"):
        (cache.path / lock).write_text("")
    origin.write("catalog/b.yaml", "name: b\n")
    newer = origin.commit_push("two")
    subprocess.run(["git", "update-ref", "refs/pull/1/head", newer], cwd=origin.remote, check=True)
    await cache.fetch_pull(1, "main", None, newer)
    assert await cache.rev_parse("refs/pao/pull/1") == newer
    assert not list(cache.path.rglob("*.lock"))


async def test_mirror_cache_fetches_past_locks_a_killed_git_left(tmp_path):
    origin, head = origin_with_pull(tmp_path)
    cache = mirror_git.cache_path(tmp_path / "data", 7)
    source = mirror_git.Remote(origin.url, None)
    async with mirror_git.workdir(cache, 10) as (repo, _):
        await mirror_git.fetch(repo, source, timeout=60)
    (cache / "refs" / "heads" / "main.lock").write_text("")
    origin.write("catalog/b.yaml", "name: b\n")
    newer = origin.commit_push("two")
    async with mirror_git.workdir(cache, 10) as (repo, _):
        await mirror_git.fetch(repo, source, timeout=60)
        assert (await mirror_git.local_refs(repo))["refs/heads/main"] == newer != head


async def test_a_live_writer_keeps_its_locks_until_it_dies(tmp_path):
    origin, head = origin_with_pull(tmp_path)
    cache = BareRepository(tmp_path / "cache.git")
    await cache.ensure()
    # Another worker process, writing to the same cache right now.
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); "
         "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); time.sleep(120)",
         str(cache.path / WRITER_FILE)], stdout=subprocess.PIPE)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
        its_lock = cache.path / "refs" / "heads" / "main.lock"
        its_lock.parent.mkdir(parents=True, exist_ok=True)
        its_lock.write_text("")
        fetch = asyncio.create_task(cache.fetch(origin.url, ["+refs/heads/main:refs/heads/main"],
                                                token=None))
        await asyncio.sleep(0.5)
        assert not fetch.done() and its_lock.exists()  # waits; the writer's lock is its own
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        await asyncio.wait_for(fetch, 30)  # the kernel dropped the dead writer's flock
        assert await cache.rev_parse("refs/heads/main") == head
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
