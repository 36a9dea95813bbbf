"""A bare git cache of the catalog repository for pull request checks.

An ``app.git.repo.BareRepository``. PR heads come from ``refs/pull/N/head``,
which also carries fork PRs; the base branch from ``refs/heads/<base>``.
"""

from __future__ import annotations

from pathlib import Path

from app.catalog.parse import CATALOG_DIR
from app.checks.evaluate import Change
from app.git.repo import BareRepository
from app.git.run import GitError


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
