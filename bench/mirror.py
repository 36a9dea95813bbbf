"""Benchmark: first mirror and one-commit update, against raw git clone --mirror + push.

Generates a repository (thousands of commits, tens of MB, many branches and tags),
serves it over git smart HTTP on loopback, and mirrors it into the OneDev fake:

1. raw:  ``git clone --mirror`` + ``git push`` of refs/heads/* and refs/tags/* into an
   empty OneDev project (the floor any mirror tool stands on);
2. ours: the ``mirror.sync`` job, run by a real worker against a real PostgreSQL
   (goal: within 1.1x of raw);
3. update: one new commit on the source, then the job again (goal: under 1 s).

Usage: python bench/mirror.py [--commits 3000] [--mb 30] [--branches 50] [--tags 100]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app import db
from app.config import Settings
from app.git.run import auth_env
from app.mirror import requests as mirror_requests
from app.mirror import store
from app.mirror.config import MirrorSettings
from app.mirror.store import GitHubRepo
from app.service import Runtime, make_worker
from bench.support import migrated_database, serve
from tests.fakes.git_http import GitHttpBackend
from tests.fakes.onedev import OneDevFake

TOKEN = "bench-onedev-token"


def generate(repo: Path, commits: int, megabytes: int, branches: int, tags: int) -> None:
    """A bare repository written with git fast-import."""
    subprocess.run(["git", "init", "--bare", "-q", "-b", "main", str(repo)], check=True)
    blob_every = max(1, commits // max(1, megabytes))
    lines: list[bytes] = []
    when = 1_700_000_000
    for i in range(1, commits + 1):
        msg = f"commit {i}".encode()
        lines += [b"commit refs/heads/main", f"mark :{i}".encode(),
                  f"committer Bench <bench@example.com> {when + i} +0000".encode(),
                  f"data {len(msg)}".encode(), msg]
        if i > 1:
            lines.append(f"from :{i - 1}".encode())
        text = f"line {i}\n".encode() * 20
        lines += [f"M 100644 inline src/file{i % 200}.txt".encode(), f"data {len(text)}".encode(),
                  text]
        if i % blob_every == 0:
            data = os.urandom(1024 * 1024)
            lines += [f"M 100644 inline assets/blob{i}.bin".encode(), f"data {len(data)}".encode(),
                      data]
    for b in range(branches):
        base = 1 + (b * commits) // max(1, branches)
        msg = f"branch {b}".encode()
        text = f"branch {b}\n".encode()
        lines += [f"commit refs/heads/feature/{b}".encode(),
                  f"committer Bench <bench@example.com> {when + commits + b} +0000".encode(),
                  f"data {len(msg)}".encode(), msg, f"from :{base}".encode(),
                  f"M 100644 inline branch-{b}.txt".encode(), f"data {len(text)}".encode(), text]
    for t in range(tags):
        mark = 1 + (t * commits) // max(1, tags)
        lines += [f"reset refs/tags/v{t}".encode(), f"from :{mark}".encode()]
    stream = b"\n".join(lines) + b"\n\ndone\n"
    subprocess.run(["git", "fast-import", "--quiet", "--done"], cwd=repo, input=stream,
                   check=True)
    subprocess.run(["git", "gc", "-q"], cwd=repo, check=True)


def git_env(token: str) -> dict[str, str]:
    return {**os.environ, **auth_env(token, username="pao")}


async def git_remote(*args: str, cwd: Path | None = None, token: str) -> None:
    """git against a loopback server: async, so this process keeps serving it."""
    proc = await asyncio.create_subprocess_exec("git", *args, cwd=cwd, env=git_env(token))
    if await proc.wait() != 0:
        raise RuntimeError(f"git {args[0]} failed")


def git_local(*args: str, cwd: Path, stdin: bytes | None = None) -> str:
    return subprocess.run(["git", *args], cwd=cwd, input=stdin, capture_output=True,
                          check=True).stdout.decode()


async def raw_mirror(src_url: str, dst_url: str, work: Path) -> float:
    started = time.perf_counter()
    await git_remote("clone", "-q", "--mirror", src_url, str(work), token="unused-source-token")
    await git_remote("push", "-q", dst_url, "+refs/heads/*:refs/heads/*",
                     "+refs/tags/*:refs/tags/*", cwd=work, token=TOKEN)
    return time.perf_counter() - started


async def main(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="pao-bench-mirror-"))
    pg = None
    try:
        src_root = tmp / "github"
        src = src_root / "bench" / "big.git"
        src.parent.mkdir(parents=True)
        t0 = time.perf_counter()
        generate(src, args.commits, args.mb, args.branches, args.tags)
        size_kb = sum(p.stat().st_size for p in src.rglob("*") if p.is_file()) // 1024
        refs = len(git_local("for-each-ref", cwd=src).splitlines())
        print(f"generated {args.commits} commits, {refs} refs, {size_kb / 1024:.1f} MB "
              f"in {time.perf_counter() - t0:.1f}s")

        source_app = web.Application()
        source_app.router.add_route("*", r"/{repo:.+\.git}/{tail:.*}",
                                    GitHttpBackend(src_root).route)
        onedev = OneDevFake(tmp / "onedev", tokens={TOKEN: True})
        runners = []
        runner, src_url = await serve(source_app)
        runners.append(runner)
        runner, onedev_url = await serve(onedev.app())
        runners.append(runner)
        clone_url = f"{src_url}/bench/big.git"

        raw_times = []
        for i in range(args.rounds):
            onedev.add_project(f"raw-{i}")
            raw_times.append(await raw_mirror(clone_url, f"{onedev_url}/raw-{i}.git", tmp / f"raw-{i}.git"))
        raw = min(raw_times)

        pg, dsn = await migrated_database(tmp)
        ours_times, job_times = [], []
        async with aiohttp.ClientSession() as http:
            for i in range(args.rounds):
                settings = Settings(
                    db_url=dsn, data_dir=tmp / f"data-{i}", repo_token="unused-source-token",
                    extra={"mirror": MirrorSettings(onedev_url=onedev_url, onedev_token=TOKEN,
                                                    name_template=f"ours{i}-{{repo}}")})
                pool = await db.create_pool(dsn)
                from app.github import GitHubClients

                rt = Runtime(settings, dsn, pool, http, GitHubClients.from_settings(settings, http))
                worker = make_worker(rt, 1)
                repo = GitHubRepo(id=1000 + i, full_name="bench/big", owner="bench", name="big",
                                  html_url="", clone_url=clone_url, default_branch="main",
                                  private=False, size_kb=size_kb)
                async with pool.acquire() as conn, conn.transaction():
                    await conn.execute("DELETE FROM repositories")
                    decision = await mirror_requests.request_mirror(
                        conn, mirror_requests.pool_enqueue(conn), repo, installation_id=None,
                        source="manual", starred_by=None)
                started = time.perf_counter()
                assert await worker.run_one()
                ours_times.append(time.perf_counter() - started)
                row = await store.get(pool, decision.repository_id)
                assert row is not None and row["sync_status"] == "completed", row
                job_times.append(await pool.fetchval(
                    "SELECT duration_seconds FROM sync_logs WHERE repository_id = $1",
                    decision.repository_id))
                if i == args.rounds - 1:
                    # One new commit, then the update.
                    git_local("fast-import", "--quiet", cwd=src,
                              stdin=b"commit refs/heads/main\ncommitter B <b@e> 1800000000 +0000\n"
                                    b"data 3\nnew\nfrom refs/heads/main^0\n"
                                    b"M 100644 inline NEW.txt\ndata 4\nnew\n\n")
                    updates = []
                    for _ in range(3):
                        async with pool.acquire() as conn, conn.transaction():
                            await mirror_requests.queue_sync(mirror_requests.pool_enqueue(conn),
                                                             row["id"], repo.id, "push")
                        started = time.perf_counter()
                        assert await worker.run_one()
                        updates.append(time.perf_counter() - started)
                    path = row["onedev_project_path"]
                    mirrored = onedev.refs(path)
                    source_refs = git_local("for-each-ref", "--format=%(objectname) %(refname)",
                                            cwd=src).splitlines()
                    assert mirrored == {r: s for s, r in (x.split(" ", 1) for x in source_refs)}
                await pool.close()
        ours = min(ours_times)
        print(f"raw clone --mirror + push : {raw:6.2f} s  (best of {args.rounds}: "
              f"{', '.join(f'{t:.2f}' for t in raw_times)})")
        print(f"PAO first mirror (job)    : {ours:6.2f} s  (best of {args.rounds}: "
              f"{', '.join(f'{t:.2f}' for t in ours_times)}; in-task "
              f"{', '.join(f'{t:.2f}' for t in job_times)})")
        print(f"ratio                     : {ours / raw:6.2f}x  (goal <= 1.1x)")
        print(f"update after one commit   : {updates[0]:6.3f} s  (goal < 1 s)")
        print(f"update, nothing new       : {min(updates[1:]):6.3f} s")
        for runner in runners:
            await runner.cleanup()
    finally:
        if pg is not None:
            pg.cleanup()  # type: ignore[attr-defined]
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--commits", type=int, default=3000)
    parser.add_argument("--mb", type=int, default=30)
    parser.add_argument("--branches", type=int, default=50)
    parser.add_argument("--tags", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=2)
    asyncio.run(main(parser.parse_args()))
