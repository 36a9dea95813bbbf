"""A bare git repository used as a local cache, and where caches live.

The catalog sync, the pull-request checks and the mirror keep one per
repository under ``$PAO_DATA_DIR/git/<use>/`` (``cache_dir``): fetched by URL (no
remote is configured, so no URL or credential is written to disk), read in bulk
(one ``ls-tree``, one ``diff --raw``, one ``cat-file --batch``). Every call goes
through ``app.git.run.run_git``; every write holds ``app.git.locks.writing``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import shutil
from collections.abc import Iterable
from pathlib import Path

from app.git.locks import writing
from app.git.parse import RawChange, parse_cat_file_batch, parse_diff_raw, parse_ls_tree
from app.git.run import GitError, run_git


def cache_dir(data_dir: Path, use: str, name: str, key: str | None = None) -> Path:
    """The one rule for where a bare cache lives: ``<data_dir>/git/<use>/<name>-<digest>.git``.

    ``use`` keeps the sync's, the checks' and the mirror's caches apart (they never
    contend); ``name`` makes the directory readable; the digest of ``key`` (default
    ``name``) makes it unique whatever ``name`` had to lose to become a file name.
    """
    slug = re.sub(r"[^a-zA-Z0-9._-]+", "-", name).strip("-")
    digest = hashlib.sha256((key if key is not None else name).encode()).hexdigest()[:10]
    return Path(data_dir) / "git" / use / f"{slug or 'repo'}-{digest}.git"


class BareRepository:
    """A bare repository at ``path``, created on first use."""

    def __init__(self, path: Path, *, timeout: float = 600.0):
        self.path = Path(path)
        self.timeout = timeout

    async def ensure(self) -> None:
        """Create the repository if needed; never leaves a half-made one behind."""
        if (self.path / "HEAD").exists():
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Build beside the final path and rename, so a crash never leaves a
        # half-made cache that the next run would trust.
        staging = self.path.with_name(self.path.name + ".tmp")
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(staging)
        await run_git(["init", "--quiet", "--bare", str(staging)])
        await run_git(["config", "core.logAllRefUpdates", "false"], cwd=staging)
        await asyncio.to_thread(staging.rename, self.path)

    async def fetch(self, url: str, refspecs: list[str], *, token: str | None) -> None:
        """Fetch ``refspecs`` from ``url`` (passed each time: a changed URL leaves nothing stale)."""
        await self.ensure()
        async with writing(self.path):
            await run_git(["fetch", "--quiet", "--no-tags", "--no-write-fetch-head", url, *refspecs],
                          cwd=self.path, token=token, timeout=self.timeout)

    async def _succeeds(self, args: list[str]) -> bool:
        try:
            await run_git(args, cwd=self.path)
        except GitError:
            return False
        return True

    async def rev_parse(self, ref: str) -> str:
        out = await run_git(["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], cwd=self.path)
        return out.stdout.decode().strip()

    async def has_commit(self, sha: str) -> bool:
        return await self._succeeds(["cat-file", "-e", f"{sha}^{{commit}}"])

    async def is_ancestor(self, old: str, new: str) -> bool:
        """True when ``old`` exists here and ``new`` descends from it (no force push between)."""
        # Exit 1 means "not an ancestor", 128 "no such commit": either way, False.
        return await self._succeeds(["merge-base", "--is-ancestor", old, new])

    async def merge_base(self, a: str, b: str) -> str:
        return (await run_git(["merge-base", a, b], cwd=self.path)).stdout.decode().strip()

    async def ls_tree(self, commit: str, prefix: str) -> dict[str, str]:
        """Every regular file under ``prefix/`` at ``commit``: path -> blob id."""
        out = await run_git(["ls-tree", "-r", "-z", "--full-tree", commit, "--", prefix + "/"],
                            cwd=self.path)
        return parse_ls_tree(out.stdout)

    async def diff(self, old: str, new: str, prefix: str) -> list[RawChange]:
        """Changes under ``prefix/`` between two commits (renames detected), with blob ids."""
        out = await run_git(["diff", "--raw", "-z", "--no-abbrev", "--no-ext-diff", "-M", old, new,
                             "--", prefix + "/"], cwd=self.path)
        return parse_diff_raw(out.stdout)

    async def read_blobs(self, oids: Iterable[str]) -> dict[str, bytes]:
        """The contents of many blobs through one ``git cat-file --batch``; missing ones are absent."""
        wanted = list(dict.fromkeys(oids))
        if not wanted:
            return {}
        out = await run_git(["cat-file", "--batch"], cwd=self.path,
                            input=("\n".join(wanted) + "\n").encode())
        return parse_cat_file_batch(out.stdout)


async def ls_remote_head(url: str, branch: str, token: str | None, timeout: float = 60.0) -> str | None:
    """A remote branch's head SHA without fetching, or None when the branch does not exist."""
    out = await run_git(["ls-remote", "--heads", url, f"refs/heads/{branch}"],
                        token=token, timeout=timeout)
    for line in out.stdout.decode().splitlines():
        sha, _, ref = line.partition("\t")
        if ref == f"refs/heads/{branch}":
            return sha
    return None
