"""The bare git cache of a catalog repository, and the few git reads a sync needs.

Every call that reaches the remote goes through ``app.gitutil.run_git`` so the
token travels in the environment only. Reads are bulk: one ``ls-tree`` for a
full load, one ``diff --raw`` for an increment, one ``cat-file --batch`` for all
the blobs a sync needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from app.gitutil import GitError, run_git
from app.sync.changes import RawChange, parse_diff_raw, parse_ls_tree
from app.sync.source import CATALOG_DIR, CatalogSource

ZERO_SHA = "0" * 40


@dataclass
class GitCache:
    """One bare repository under the data dir, fetched from ``source.url``."""

    source: CatalogSource
    path: Path
    timeout: float = 600.0

    @property
    def tracking_ref(self) -> str:
        return f"refs/remotes/origin/{self.source.branch}"

    async def fetch(self, token: str | None) -> str:
        """Bring the cache up to the remote branch (cloning on first use); return the head SHA."""
        if not (self.path / "HEAD").exists():
            await self._create()
        refspec = f"+refs/heads/{self.source.branch}:{self.tracking_ref}"
        # The URL is passed on each fetch rather than stored as a remote, so
        # changing PAO_REPO_URL never leaves a stale remote behind.
        await run_git(["fetch", "--quiet", "--no-tags", "--no-write-fetch-head", self.source.url,
                       refspec], cwd=self.path, token=token, timeout=self.timeout)
        return await self.rev_parse(self.tracking_ref)

    async def _create(self) -> None:
        # Build beside the final path and rename, so a crash never leaves a
        # half-made cache where the next sync would trust it.
        self.path.parent.mkdir(parents=True, exist_ok=True)
        staging = self.path.with_name(self.path.name + ".tmp")
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(staging)
        await run_git(["init", "--quiet", "--bare", str(staging)])
        # Enough for the object reads a sync does; no reflogs or hooks in use.
        await run_git(["config", "core.logAllRefUpdates", "false"], cwd=staging)
        await asyncio.to_thread(staging.rename, self.path)

    async def rev_parse(self, ref: str) -> str:
        out = await run_git(["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], cwd=self.path)
        return out.stdout.decode().strip()

    async def _exit_ok(self, args: list[str]) -> bool:
        try:
            await run_git(args, cwd=self.path)
        except GitError:
            return False
        return True

    async def is_ancestor(self, old: str, new: str) -> bool:
        """True when ``old`` exists here and ``new`` descends from it (no force push between)."""
        # One process: exit 1 means "not an ancestor", 128 "no such commit"; both mean reconcile.
        return await self._exit_ok(["merge-base", "--is-ancestor", old, new])

    async def list_catalog(self, sha: str) -> dict[str, str]:
        """Every catalog YAML file at ``sha``: path -> blob id."""
        out = await run_git(["ls-tree", "-r", "-z", "--full-tree", sha, "--", CATALOG_DIR + "/"],
                            cwd=self.path)
        return parse_ls_tree(out.stdout)

    async def diff(self, old: str, new: str) -> list[RawChange]:
        """Catalog changes between two commits (renames detected), with blob ids."""
        out = await run_git(["diff", "--raw", "-z", "--no-abbrev", "-M", old, new, "--",
                             CATALOG_DIR + "/"], cwd=self.path)
        return parse_diff_raw(out.stdout)

    async def read_blobs(self, oids: Iterable[str]) -> dict[str, bytes]:
        """The contents of many blobs through one ``git cat-file --batch`` process."""
        wanted = list(dict.fromkeys(oids))
        if not wanted:
            return {}
        out = await run_git(["cat-file", "--batch"], cwd=self.path,
                            input=("\n".join(wanted) + "\n").encode())
        return parse_cat_file_batch(out.stdout)


def parse_cat_file_batch(data: bytes) -> dict[str, bytes]:
    """Parse ``git cat-file --batch`` output: ``<oid> <type> <size>\\n<content>\\n`` repeated."""
    blobs: dict[str, bytes] = {}
    pos = 0
    end = len(data)
    while pos < end:
        nl = data.index(b"\n", pos)
        header = data[pos:nl].split()
        if len(header) == 2 and header[1] == b"missing":
            pos = nl + 1
            continue
        oid, size = header[0].decode(), int(header[2])
        start = nl + 1
        blobs[oid] = data[start:start + size]
        pos = start + size + 1
    return blobs


async def ls_remote_head(source: CatalogSource, token: str | None, timeout: float = 60.0) -> str | None:
    """The remote branch's head SHA without fetching, or None when the branch does not exist."""
    out = await run_git(["ls-remote", "--heads", source.url, f"refs/heads/{source.branch}"],
                        token=token, timeout=timeout)
    for line in out.stdout.decode().splitlines():
        sha, _, ref = line.partition("\t")
        if ref == f"refs/heads/{source.branch}":
            return sha
    return None
