"""Benchmark: evaluating a one-file pull request against a large catalog.

Builds a git repository with N generated catalog files (default 10,000; see
bench/validate.py for their shape), syncs it into PostgreSQL (embedded, a temp
dir) as PAO does on a push, opens a PR that changes one file, and times the
check job's git + parse + evaluate part (no GitHub), in interleaved rounds:

* cold, parsing everything: a first check after a start (empty parse cache,
  git cache on disk) that parses every head blob (PAO before this change);
* cold, synced state: the same first check taking unchanged files from the
  synced catalog in PostgreSQL (the PR's base is the synced head);
* warm: a second push to the PR (only the new blob is parsed).

Prints the medians and the raw git floor for the same reads.

Usage: python bench/check_eval.py [--files N] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.validate import generate  # noqa: E402

ENV = {"GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@example.com", "GIT_COMMITTER_NAME": "b",
       "GIT_COMMITTER_EMAIL": "b@example.com", "PATH": "/usr/bin:/bin:/usr/local/bin", "HOME": "/tmp"}


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True,
                          env=ENV).stdout.strip()


def push(work: Path, n: int, text: str) -> str:
    target = work / "catalog" / "databases" / "item-0.yaml"
    lines = target.read_text().splitlines(keepends=True)
    lines[1] = f'version: "1.0.{n}"\n'
    lines[2] = f'description: "{text}"\n'
    target.write_text("".join(lines))
    git(work, "commit", "-qam", f"change {n}")
    sha = git(work, "rev-parse", "HEAD")
    git(work, "update-ref", "refs/pull/1/head", sha)
    return sha


async def check(cache_path: Path, work: Path, head: str,
                synced: Any = None) -> tuple[float, int]:
    from app.checks.task import evaluate_commits
    from app.git.catalog import RepoCache

    start = time.perf_counter()
    cache = RepoCache(cache_path, str(work), None)
    await cache.ensure()
    await cache.fetch_pull(1, "main", None, head)
    base = await cache.merge_base("refs/pao/base/1", head)
    ev = await evaluate_commits(cache, base, head, synced)
    return time.perf_counter() - start, len(ev.all_findings)


def cold_start() -> None:
    """Forget every parsed file, as a freshly started worker has."""
    from app.checks import task
    from app.checks.evaluate import ParseCache

    task._cache = ParseCache()


async def run(root: Path, work: Path, rounds: int) -> None:
    from app import db
    from app.config import Settings
    from app.git.catalog import GitCache
    from app.sync.engine import sync_repository
    from app.sync.source import catalog_source
    from app.sync.store import load_synced_files

    embedded = db.EmbeddedPostgres(root)
    dsn = await asyncio.to_thread(embedded.start)
    try:
        conn = await db.connect(dsn)
        await db.migrate(conn)
        await conn.close()
        pool = await db.create_pool(dsn)
        settings = Settings(repo_url=str(work), repo_branch="main", data_dir=root / "data")
        source = catalog_source(settings)
        assert source is not None
        started = time.perf_counter()
        await sync_repository(pool, source, GitCache(source, source.cache_dir(settings.data_dir)),
                              None)
        print(f"synced the catalog into PostgreSQL in {time.perf_counter() - started:.1f} s")

        async def synced(paths: list[str]) -> Any:
            return await load_synced_files(pool, source.key, paths)

        git(work, "checkout", "-qb", "pr")
        first = push(work, 1, "first change")
        # The checks' git cache lives on disk across restarts: a cold start finds it there.
        for mode in ("parse", "synced"):
            await check(root / f"cache-{mode}.git", work, first)
        times: dict[str, list[float]] = {"parse": [], "synced": []}
        findings: dict[str, int] = {}
        for r in range(rounds):
            order = ["parse", "synced"] if r % 2 == 0 else ["synced", "parse"]
            for mode in order:
                cold_start()
                elapsed, findings[mode] = await check(
                    root / f"cache-{mode}.git", work, first, synced if mode == "synced" else None)
                times[mode].append(elapsed)
        assert findings["parse"] == findings["synced"], findings
        second = push(work, 2, "second change")
        warm, _ = await check(root / "cache-synced.git", work, second, synced)
        await pool.close()
    finally:
        await asyncio.to_thread(embedded.stop)
    n = len(git(work, "ls-files", "catalog").splitlines())
    for mode, label in (("parse", "parsing every file"), ("synced", "synced state in PostgreSQL")):
        print(f"{n} files; one-file PR, first check (cold), {label:<27}: median "
              f"{statistics.median(times[mode]):6.3f} s  (rounds: "
              f"{', '.join(f'{t:.3f}' for t in times[mode])}; {findings[mode]} findings)")
    ratio = statistics.median(times["synced"]) / statistics.median(times["parse"])
    print(f"ratio synced / parsing: {ratio:.2f}x")
    print(f"next push to the PR (warm cache, 1 new blob): {warm:6.3f} s")
    start = time.perf_counter()
    listing = git(work, "ls-tree", "-r", second, "--", "catalog")
    git(work, "diff", "--name-status", f"{first}", second)
    floor = time.perf_counter() - start
    print(f"raw git floor (ls-tree of {len(listing.splitlines())} files + diff): {floor:6.3f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="pao-bench-check-"))
    try:
        work = root / "work"
        generate(work, args.files)
        git(work, "init", "-q", "-b", "main")
        git(work, "add", "-A")
        git(work, "commit", "-qm", "catalog")
        asyncio.run(run(root, work, args.rounds))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
