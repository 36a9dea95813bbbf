"""The git side of a mirror: one bare cache per repository, fetched then pushed.

Mirror policy only (which refs, in which order, pruning, disk use); the plumbing
(running git, cache location and creation, stale locks) is ``app.git``.

Only ``refs/heads/*`` and ``refs/tags/*`` are fetched and pushed: GitHub's
``refs/pull/*`` stay out, and OneDev's own ``refs/pulls/*`` are never touched
(``git push --mirror`` would delete them). Every git call that reaches a remote
goes through ``app.git.run.run_git``, which keeps the token out of argv, URLs,
disk and output.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Collection, Iterable
from dataclasses import dataclass
from pathlib import Path

from app.git.locks import writing
from app.git.repo import BareRepository, cache_dir
from app.git.run import GitAuthError, GitError, GitNotFoundError, GitTimeout, run_git
from app.mirror.naming import disk_needed, hook_unsafe, mirrored_refs

REFSPECS = ("+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*")


class DiskFull(Exception):
    """Not enough free disk for the repository, neither for the cache nor in a temp dir."""


@dataclass(frozen=True)
class Remote:
    url: str
    token: str | None
    username: str = "x-access-token"


def cache_path(data_dir: Path, github_repo_id: int) -> Path:
    return cache_dir(data_dir, "mirror", str(github_repo_id))


def _free_bytes(path: Path) -> int:
    probe = path
    while not probe.exists():
        probe = probe.parent
    return shutil.disk_usage(probe).free


@contextlib.asynccontextmanager
async def workdir(cache: Path, size_kb: int) -> AsyncIterator[tuple[Path, bool]]:
    """The bare repository to work in: the cache, or a temp clone when its disk is short.

    Yields ``(path, is_cache)``. A temp clone is removed afterwards, success or not.
    """
    if _use_cache(cache, size_kb):
        await BareRepository(cache).ensure()
        # The whole job writes here (fetch, gc): one writer at a time, stale locks gone.
        async with writing(cache):
            yield cache, True
        return
    tmp_root = Path(tempfile.gettempdir())
    if _free_bytes(tmp_root) < disk_needed(size_kb):
        raise DiskFull(
            f"not enough free disk for a {size_kb // 1024} MB repository: need "
            f"{disk_needed(size_kb) // (1024 * 1024)} MB free under {cache.parent} or {tmp_root}"
        )
    tmp = Path(tempfile.mkdtemp(prefix="pao-mirror-"))
    try:
        repo = tmp / "repo.git"
        await run_git(["init", "--bare", "--quiet", str(repo)])
        async with writing(repo):  # stops a killed attempt's helpers, as in the cache
            yield repo, False
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _use_cache(cache: Path, size_kb: int) -> bool:
    """True when the cache exists or its disk has room for the repository."""
    if cache.exists():
        return True
    if _free_bytes(cache.parent) < disk_needed(size_kb):
        return False
    cache.parent.mkdir(parents=True, exist_ok=True)
    return True


# Auto-gc after every fetch and the forced-update report cost time on each sync;
# caches are tidied on the periodic refresh instead (``tidy``).
_FETCH_CONFIG = ("-c", "gc.auto=0", "-c", "maintenance.auto=false",
                 "-c", "fetch.showForcedUpdates=false")


async def fetch(repo: Path, source: Remote, *, timeout: float) -> None:
    """Fetch branches and tags from GitHub, pruning what GitHub deleted. Never shallow."""
    args = [*_FETCH_CONFIG, "fetch", "--prune", "--no-write-fetch-head", "--quiet"]
    if (repo / "shallow").exists():
        args.append("--unshallow")
    await run_git([*args, source.url, *REFSPECS], cwd=repo, token=source.token,
                  username=source.username, timeout=timeout)


async def tidy(repo: Path, *, timeout: float) -> None:
    """Pack loose objects when git thinks it is time (cheap when it is not)."""
    await run_git(["gc", "--auto", "--quiet"], cwd=repo, timeout=timeout)


async def local_refs(repo: Path) -> dict[str, str]:
    out = await run_git(["for-each-ref", "--format=%(objectname) %(refname)",
                         "refs/heads", "refs/tags"], cwd=repo)
    return mirrored_refs(out.stdout.decode())


def _tree_bytes(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.stat(os.path.join(root, name)).st_size
    return total


async def object_bytes(repo: Path) -> int:
    """Bytes the repository's objects take (loose + packed); a stat walk, no git process."""
    return await asyncio.to_thread(_tree_bytes, repo / "objects")


async def _push(repo: Path, target: Remote, specs: list[str], *, timeout: float,
                prune: bool = False) -> None:
    await run_git(["push", "--quiet", *(["--prune"] if prune else []), target.url, *specs],
                  cwd=repo, token=target.token, username=target.username, timeout=timeout)


async def _push_alone(repo: Path, target: Remote, spec: str, *, timeout: float) -> bool:
    """Push one refspec on its own; False when OneDev refused it. Credentials, a missing
    project and timeouts are not a refusal of that ref: they propagate."""
    try:
        await _push(repo, target, [spec], timeout=timeout)
    except (GitAuthError, GitNotFoundError, GitTimeout):
        raise
    except GitError:
        return False
    return True


def _excluding(refs: Iterable[str]) -> list[str]:
    """The branch and tag refspecs without ``refs`` (negative refspecs, git >= 2.29)."""
    return [*REFSPECS, *(f"^{ref}" for ref in sorted(refs))]


async def push_updates(repo: Path, target: Remote, *, refs: dict[str, str],
                       timeout: float) -> list[str]:
    """Create and move every branch and tag on OneDev, deleting nothing; returns the refs
    OneDev refused.

    Deleting comes later (``prune``), once the default branch is set: OneDev, like git,
    refuses to delete its current branch. A ref OneDev's receive hook cannot forward
    (``naming.hook_unsafe``) would make it refuse the whole push, so such refs go one per
    push after the others.
    """
    unsafe = [ref for ref in refs if hook_unsafe(ref)]
    await _push(repo, target, _excluding(unsafe), timeout=timeout)
    return [ref for ref in sorted(unsafe)
            if not await _push_alone(repo, target, f"+{ref}:{ref}", timeout=timeout)]


async def prune(repo: Path, target: Remote, *, refs: dict[str, str], pushed_before: Collection[str],
                adopted: bool, timeout: float) -> list[str]:
    """Delete on OneDev the branches and tags GitHub deleted; returns the refs OneDev refused.

    In a project PAO created, every branch and tag missing on GitHub goes (``--prune``,
    skipped on the first push into the project, when there is nothing to prune). In
    an adopted project PAO deletes only refs it pushed there itself (``pushed_before``).
    OneDev's own ``refs/pulls/*`` are outside the refspecs and never touched.
    """
    gone = sorted(set(pushed_before) - set(refs))
    # One push per deletion where OneDev may refuse it: a hook-unsafe name, or (adopted)
    # a project whose own protections and default branch PAO does not manage.
    alone = gone if adopted else [ref for ref in gone if hook_unsafe(ref)]
    # The first push into a project has nothing to prune; later ones catch anything left.
    if not adopted and pushed_before:
        await _push(repo, target, _excluding([*alone, *(r for r in refs if hook_unsafe(r))]),
                    timeout=timeout, prune=True)
    return [ref for ref in alone
            if not await _push_alone(repo, target, f":{ref}", timeout=timeout)]


def remove_cache(cache: Path) -> None:
    shutil.rmtree(cache, ignore_errors=True)
