"""A bare git repository used as a local cache, and parsers for the git output it reads.

The catalog sync and the pull-request checks both keep one of these per
repository: fetched by URL (no remote is configured, so no URL or credential is
written to disk), read in bulk (one ``ls-tree``, one ``diff --raw``, one
``cat-file --batch``). Every call goes through ``app.gitutil.run_git``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from app.gitutil import GitError, run_git

log = logging.getLogger(__name__)

ZERO_OID = "0" * 40
# git holds a ref's lock file for the moment it takes to update the ref; one this
# old was left by a git that was killed (with its worker), and would fail every fetch.
STALE_LOCK_SECONDS = 120.0
# Symlinks and submodules are not files, whatever their names.
NOT_FILES = (b"120000", b"160000")


@dataclass(frozen=True)
class RawChange:
    """One entry of ``git diff --raw -M``: status letter, paths and blob ids."""

    status: str  # A, M, D, R, T (type change), C (copy)
    path: str
    old_path: str | None
    oid: str | None  # the new blob; None when deleted
    old_oid: str | None


def parse_ls_tree(data: bytes) -> dict[str, str]:
    """``git ls-tree -r -z`` output -> {path: blob id} for regular files."""
    files: dict[str, str] = {}
    for entry in data.split(b"\0"):
        if not entry:
            continue
        meta, _, path_bytes = entry.partition(b"\t")
        parts = meta.split()
        if len(parts) != 3 or parts[1] != b"blob" or parts[0] in NOT_FILES:
            continue
        files[path_bytes.decode("utf-8", "surrogateescape")] = parts[2].decode()
    return files


def parse_diff_raw(data: bytes) -> list[RawChange]:
    """``git diff --raw -z --no-abbrev -M`` output -> changes, in git's order."""
    out: list[RawChange] = []
    fields = data.split(b"\0")
    i = 0
    while i < len(fields):
        meta = fields[i]
        if not meta:
            i += 1
            continue
        # ":100644 100644 <old> <new> M" ; renames and copies carry two paths.
        parts = meta.lstrip(b":").split()
        old_oid, new_oid, status = parts[2].decode(), parts[3].decode(), parts[4].decode()[0]
        if parts[1] in NOT_FILES:
            new_oid = ZERO_OID  # became a symlink or submodule: no longer a file
        if status in ("R", "C"):
            old_path = fields[i + 1].decode("utf-8", "surrogateescape")
            path = fields[i + 2].decode("utf-8", "surrogateescape")
            i += 3
        else:
            old_path = None
            path = fields[i + 1].decode("utf-8", "surrogateescape")
            i += 2
        out.append(RawChange(
            status=status, path=path, old_path=old_path,
            oid=None if status == "D" or new_oid == ZERO_OID else new_oid,
            old_oid=None if status == "A" or old_oid == ZERO_OID else old_oid,
        ))
    return out


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

    def remove_stale_locks(self, refs: Iterable[str]) -> list[Path]:
        """Delete lock files of ``refs`` (and packed-refs) a killed git left behind; return them."""
        now = time.time()
        removed = []
        for lock in [*(self.path / f"{ref}.lock" for ref in refs), self.path / "packed-refs.lock"]:
            with contextlib.suppress(FileNotFoundError):
                if now - lock.stat().st_mtime > STALE_LOCK_SECONDS:
                    lock.unlink()
                    removed.append(lock)
        return removed

    async def fetch(self, url: str, refspecs: list[str], *, token: str | None) -> None:
        """Fetch ``refspecs`` from ``url`` (passed each time: a changed URL leaves nothing stale)."""
        await self.ensure()
        targets = [spec.partition(":")[2] for spec in refspecs if ":" in spec]
        for lock in await asyncio.to_thread(self.remove_stale_locks, targets):
            log.warning("removed %s, left by a git process that was killed", lock)
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
