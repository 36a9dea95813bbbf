"""The catalog repository's bare git cache: the few git reads a sync needs.

A thin layer over ``app.git.repo.BareRepository`` that knows the branch being
synced and which files are catalog files.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from app.catalog.parse import CATALOG_DIR, is_catalog_path
from app.git.parse import RawChange
from app.git.repo import BareRepository
from app.git.repo import ls_remote_head as ls_remote_branch_head
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
