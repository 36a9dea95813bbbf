"""A bare git cache of the catalog repository for pull request checks.

Fetched by URL with the token in the environment (``app.gitutil.run_git``): no
remote is configured, so no URL or credential is written to disk. PR heads come
from ``refs/pull/N/head``, which also carries fork PRs; the base branch from
``refs/heads/<base>``. Trees are listed with ``ls-tree`` and blobs read in one
``cat-file --batch``.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from app.checks.evaluate import Change
from app.gitutil import GitError, run_git

CATALOG_DIR = "catalog"


def cache_dir(data_dir: Path, repository: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", repository)[:80]
    digest = hashlib.sha256(repository.encode()).hexdigest()[:8]
    return Path(data_dir) / "checks" / f"{safe}-{digest}.git"


class RepoCache:
    def __init__(self, path: Path, url: str, token: str | None):
        self.path = path
        self.url = url
        self.token = token

    async def ensure(self) -> None:
        if not (self.path / "HEAD").exists():
            self.path.mkdir(parents=True, exist_ok=True)
            await run_git(["init", "--quiet", "--bare", str(self.path)])

    async def fetch(self, refspecs: list[str]) -> None:
        await run_git(["fetch", "--quiet", "--no-tags", "--force", "--no-write-fetch-head", self.url,
                       *refspecs], cwd=self.path, token=self.token)

    async def fetch_pull(self, number: int, base_ref: str, head_ref: str | None, head_sha: str) -> None:
        """Fetch the base branch and the PR head, falling back to the head branch or SHA."""
        base = f"+refs/heads/{base_ref}:refs/pao/base/{number}"
        attempts = [f"+refs/pull/{number}/head:refs/pao/pull/{number}"]
        if head_ref:
            attempts.append(f"+refs/heads/{head_ref}:refs/pao/pull/{number}")
        attempts.append(f"+{head_sha}:refs/pao/pull/{number}")
        last: GitError | None = None
        for head in attempts:
            try:
                await self.fetch([base, head])
            except GitError as exc:
                if type(exc) is not GitError:  # auth, not found, timeout: no fallback helps
                    raise
                last = exc
                continue
            if await self.has_commit(head_sha):
                return
        if last is not None:
            raise last
        raise GitError(["fetch"], 1, f"head {head_sha} not found after fetching the pull request")

    async def has_commit(self, sha: str) -> bool:
        try:
            await run_git(["cat-file", "-e", f"{sha}^{{commit}}"], cwd=self.path)
        except GitError:
            return False
        return True

    async def rev_parse(self, ref: str) -> str:
        result = await run_git(["rev-parse", "--verify", f"{ref}^{{commit}}"], cwd=self.path)
        return result.stdout.decode().strip()

    async def merge_base(self, a: str, b: str) -> str:
        return (await run_git(["merge-base", a, b], cwd=self.path)).stdout.decode().strip()

    async def tree(self, commit: str) -> dict[str, str]:
        """path -> blob id for every file under catalog/ at ``commit``."""
        out = (await run_git(["ls-tree", "-r", "-z", commit, "--", CATALOG_DIR], cwd=self.path)).stdout
        files: dict[str, str] = {}
        for rec in out.split(b"\0"):
            if not rec:
                continue
            meta, name = rec.split(b"\t", 1)
            _mode, kind, sha = meta.decode().split()
            if kind == "blob":
                files[name.decode("utf-8", "surrogateescape")] = sha
        return files

    async def diff(self, base: str, head: str) -> list[Change]:
        out = (await run_git(["diff", "--name-status", "-z", "-M", "--no-ext-diff", base, head, "--",
                              CATALOG_DIR], cwd=self.path)).stdout
        parts = out.decode("utf-8", "surrogateescape").split("\0")
        changes: list[Change] = []
        i = 0
        while i < len(parts) and parts[i]:
            status = parts[i][0]
            if status in "RC":
                changes.append(Change(status, parts[i + 2], parts[i + 1]))
                i += 3
            else:
                changes.append(Change(status, parts[i + 1]))
                i += 2
        return changes

    async def blobs(self, shas: list[str]) -> dict[str, bytes]:
        """Contents of ``shas`` through one ``git cat-file --batch``."""
        wanted = list(dict.fromkeys(shas))
        if not wanted:
            return {}
        out = (await run_git(["cat-file", "--batch"], cwd=self.path,
                             input=("\n".join(wanted) + "\n").encode())).stdout
        result: dict[str, bytes] = {}
        pos = 0
        for sha in wanted:
            end = out.index(b"\n", pos)
            header = out[pos:end].split()
            if len(header) < 3 or header[1] != b"blob":
                raise GitError(["cat-file"], 1, f"object {sha} is missing or not a blob")
            size = int(header[2])
            result[sha] = out[end + 1:end + 1 + size]
            pos = end + 1 + size + 1
        return result
