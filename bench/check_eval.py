"""Benchmark: evaluating a one-file pull request against a large catalog.

Builds a git repository with N generated catalog files (default 10,000; see
bench/validate.py for their shape), opens a PR that changes one file, and times
the check job's git + parse + evaluate part (no GitHub): the first check (cold
parse cache: every head blob is parsed) and a second push to the PR (warm:
only the new blob is parsed). Prints the raw git floor for the same reads.

Usage: python bench/check_eval.py [--files N]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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


async def check(cache_path: Path, work: Path, head: str) -> tuple[float, int]:
    from app.checks.task import evaluate_commits
    from app.git.catalog import RepoCache

    start = time.perf_counter()
    cache = RepoCache(cache_path, str(work), None)
    await cache.ensure()
    await cache.fetch_pull(1, "main", None, head)
    base = await cache.merge_base("refs/pao/base/1", head)
    ev = await evaluate_commits(cache, base, head)
    return time.perf_counter() - start, len(ev.all_findings)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="pao-bench-check-"))
    try:
        work = root / "work"
        generate(work, args.files)
        git(work, "init", "-q", "-b", "main")
        git(work, "add", "-A")
        git(work, "commit", "-qm", "catalog")
        git(work, "checkout", "-qb", "pr")
        first = push(work, 1, "first change")
        cold, findings = asyncio.run(check(root / "cache.git", work, first))
        print(f"{args.files} files; one-file PR, first check (cold parse cache): {cold:6.3f} s "
              f"({findings} findings)")
        second = push(work, 2, "second change")
        warm, findings = asyncio.run(check(root / "cache.git", work, second))
        print(f"next push to the PR (warm cache, 1 new blob):             {warm:6.3f} s "
              f"({findings} findings)")
        start = time.perf_counter()
        listing = git(root / "cache.git", "ls-tree", "-r", second, "--", "catalog")
        git(root / "cache.git", "diff", "--name-status", f"{first}", second)
        floor = time.perf_counter() - start
        print(f"raw git floor (ls-tree of {len(listing.splitlines())} files + diff):       {floor:6.3f} s")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
