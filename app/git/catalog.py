"""The catalog repository's bare caches: the sync's (one branch) and the checks' (pull requests).

Thin layers over ``app.git.repo.BareRepository`` that know which files are
catalog files (``app.catalog.parse``). The sync's ``GitCache`` follows the
synced branch; the checks' ``RepoCache`` fetches a pull request's base and head
from ``refs/pull/N/head``, which also carries fork PRs. Each keeps its own
directory (``cache_dir``'s ``use``), so the two never contend.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from app.catalog.parse import CATALOG_DIR, is_catalog_path
from app.checks.evaluate import Change
from app.git.parse import RawChange
from app.git.repo import BareRepository
from app.git.repo import ls_remote_head as ls_remote_branch_head
from app.git.run import GitError

if TYPE_CHECKING:
    from app.sync.source import CatalogSource


class GitCache:
    """One bare repository under the data dir, fetched from ``source.url``."""

    def __init__(self, source: CatalogSource, path: Path, timeout: float = 600.0):
        self.source = source
        self.path = Path(path)
        self.repo = BareRepository(self.path, timeout=timeout)

    @property
    def tracking_ref(self) -> str:
        return f"refs/remotes/origin/{self.source.branch}"

    async def fetch(self, token: str | None) -> str:
        """Bring the cache up to the remote branch (creating it on first use); return the head SHA."""
        await self.repo.fetch(self.source.url, [f"+refs/heads/{self.source.branch}:{self.tracking_ref}"],
                              token=token)
        return await self.repo.rev_parse(self.tracking_ref)

    async def is_ancestor(self, old: str, new: str) -> bool:
        return await self.repo.is_ancestor(old, new)

    async def list_catalog(self, sha: str) -> dict[str, str]:
        """Every catalog YAML file at ``sha``: path -> blob id."""
        tree = await self.repo.ls_tree(sha, CATALOG_DIR)
        return {path: oid for path, oid in tree.items() if is_catalog_path(path)}

    async def diff(self, old: str, new: str) -> list[RawChange]:
        """Catalog changes between two commits (renames detected), with blob ids."""
        return await self.repo.diff(old, new, CATALOG_DIR)

    async def read_blobs(self, oids: Iterable[str]) -> dict[str, bytes]:
        return await self.repo.read_blobs(oids)


async def ls_remote_head(source: CatalogSource, token: str | None, timeout: float = 60.0) -> str | None:
    """The remote branch's head SHA without fetching, or None when the branch does not exist."""
    return await ls_remote_branch_head(source.url, source.branch, token, timeout)


class RepoCache(BareRepository):
    """The catalog repository's bare cache, with the pull request's base and head fetched."""

    def __init__(self, path: Path, url: str, token: str | None):
        super().__init__(path)
        self.url = url
        self.token = token

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
                await self.fetch(self.url, [base, head], token=self.token)
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

    async def tree(self, commit: str) -> dict[str, str]:
        """path -> blob id for every file under catalog/ at ``commit``."""
        return await self.ls_tree(commit, CATALOG_DIR)

    async def changes(self, base: str, head: str) -> list[Change]:
        return [Change(c.status, c.path, c.old_path)
                for c in await self.diff(base, head, CATALOG_DIR)]

    async def blobs(self, shas: list[str]) -> dict[str, bytes]:
        """Contents of ``shas`` through one ``git cat-file --batch``; every one must exist."""
        contents = await self.read_blobs(shas)
        missing = [sha for sha in shas if sha not in contents]
        if missing:
            raise GitError(["cat-file"], 1, f"object {missing[0]} is missing or not a blob")
        return contents
