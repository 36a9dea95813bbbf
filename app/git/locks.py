"""Lock files a killed git left in a cache, and the writer lock that tells them stale.

git creates ``<ref>.lock`` (or ``packed-refs.lock``, ``config.lock``...) while it
updates a file and renames it into place; a git killed in between leaves the lock,
and every later fetch into that cache fails with "cannot lock ref" until it is
removed. Every PAO git that writes to a cache runs inside ``writing(cache)``, which
holds an ``flock`` on the cache's writer file: the kernel drops it the moment its
holder dies. So whoever holds it knows that any lock file present belongs to a
dead git, and removes it at once (no age threshold to wait out), after stopping
the git helpers a killed worker left running (``app.git.orphans``).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path

from app.git.orphans import stop_orphans

log = logging.getLogger(__name__)

# Not "*.lock": git's own lock files are the ones removed below.
WRITER_FILE = "pao-writer"
_POLL_SECONDS = 0.05


def git_lock_files(repo: Path) -> list[Path]:
    """Every lock file git may leave in a bare repository: refs, packed-refs, HEAD, config, shallow."""
    repo = Path(repo)
    return sorted({*repo.glob("*.lock"), *repo.glob("refs/**/*.lock")})


def remove_git_locks(repo: Path) -> list[Path]:
    """Delete every git lock file in ``repo``; only call while holding ``writing(repo)``."""
    removed = []
    for lock in git_lock_files(repo):
        with contextlib.suppress(FileNotFoundError):
            lock.unlink()
            removed.append(lock)
    return removed


@contextlib.asynccontextmanager
async def writing(repo: Path) -> AsyncIterator[None]:
    """Be the only PAO writer of ``repo`` (across processes), with its stale git locks removed.

    Waits (cancellably) while another job writes to the same cache.
    """
    fd = os.open(Path(repo) / WRITER_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                await asyncio.sleep(_POLL_SECONDS)
        # A killed worker's git helpers may still be writing here (or pushing from here).
        for pid in await asyncio.to_thread(stop_orphans):
            log.warning("stopped git process %d, left running by a killed worker", pid)
        for lock in await asyncio.to_thread(remove_git_locks, repo):
            log.warning("removed %s, left by a git process that was killed", lock)
        yield
    finally:
        os.close(fd)  # releases the flock
