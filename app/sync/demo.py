"""First run for a newcomer: with no ``PAO_REPO_URL``, serve the bundled example catalog.

``pao serve`` calls ``prepare(settings)``. When no catalog repository is
configured it turns ``examples/catalog/`` into a local git repository under the
data dir (committed once; later runs reuse it), points the repository URL at
it, and returns an ``on_ready`` hook that waits for the first sync, creates an
API token and prints it with a curl line that lists the items.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TextIO

from app.config import Settings
from app.git.env import child_env

log = logging.getLogger(__name__)

EXAMPLES = Path(__file__).resolve().parent.parent.parent / "examples" / "catalog"
DEMO_DIR = "demo-catalog"
DEMO_TOKEN_DESCRIPTION = "first-run demo token (pao serve without PAO_REPO_URL)"

OnReady = Callable[[Any, str], Awaitable[None]]


def _git(cwd: Path, *args: str) -> str:
    env = child_env({"GIT_CONFIG_NOSYSTEM": "1", "GIT_AUTHOR_NAME": "PAO",
                     "GIT_AUTHOR_EMAIL": "pao@localhost", "GIT_COMMITTER_NAME": "PAO",
                     "GIT_COMMITTER_EMAIL": "pao@localhost"})
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True,
                          text=True).stdout.strip()


def demo_repository(data_dir: Path, branch: str, examples: Path = EXAMPLES) -> Path:
    """The local catalog repository, created from ``examples`` on first use."""
    repo = data_dir / DEMO_DIR
    if (repo / ".git").is_dir() and _git(repo, "rev-parse", "--verify", "--quiet", "HEAD"):
        return repo
    if not examples.is_dir():
        raise FileNotFoundError(f"{examples} is missing; set PAO_REPO_URL to your catalog repository")
    staging = repo.with_name(DEMO_DIR + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(examples, staging / "catalog")
    (staging / "README.md").write_text(
        "# Example PAO catalog\n\nCreated by `pao serve` from examples/catalog. Edit, commit,"
        " then run `pao sync` (or restart `pao serve`) to see the change in the API.\n")
    _git(staging, "init", "--quiet", f"--initial-branch={branch}")
    _git(staging, "add", "-A")
    _git(staging, "commit", "--quiet", "-m", "Example catalog from examples/catalog")
    shutil.rmtree(repo, ignore_errors=True)
    staging.rename(repo)
    return repo


def prepare(settings: Settings, out: TextIO | None = None) -> tuple[Settings, OnReady | None]:
    """Settings to serve with and an optional ``on_ready`` hook; unchanged when PAO_REPO_URL is set."""
    if settings.repo_url:
        return settings, None
    try:
        repo = demo_repository(settings.data_dir, settings.repo_branch)
    except (FileNotFoundError, subprocess.CalledProcessError) as exc:
        log.warning("no catalog repository: PAO_REPO_URL is unset and the example catalog "
                    "could not be set up (%s)", exc)
        return settings, None
    log.info("PAO_REPO_URL is not set: serving the example catalog from %s", repo)
    settings = dataclasses.replace(settings, repo_url=str(repo))

    async def on_ready(rt: Any, url: str) -> None:
        await announce(rt, url, repo, out or sys.stdout)

    return settings, on_ready


async def wait_for_first_sync(pool: Any, timeout: float = 60.0) -> bool:
    import asyncio

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await pool.fetchval("SELECT last_processed_sha FROM catalog_sync_state LIMIT 1"):
            return True
        await asyncio.sleep(0.2)
    return False


async def announce(rt: Any, url: str, repo: Path, out: TextIO) -> None:
    """Wait for the example catalog to sync, then print a fresh token and how to use it."""
    from app.api.auth import create_token

    synced = await wait_for_first_sync(rt.pool)
    # One demo token at a time: earlier runs' tokens are revoked.
    await rt.pool.execute("UPDATE api_tokens SET revoked_at = now() WHERE description = $1"
                          " AND revoked_at IS NULL", DEMO_TOKEN_DESCRIPTION)
    _, token = await create_token(rt.pool, user_id="demo", team="demo", is_admin=True,
                                  description=DEMO_TOKEN_DESCRIPTION)
    count = await rt.pool.fetchval("SELECT count(*) FROM catalog_items WHERE is_active")
    status = (f"synced {count} items from the example catalog in {repo}" if synced
              else f"the example catalog in {repo} is still syncing (are workers running?)")
    print(f"\nPAO is running at {url}: {status}.\n"
          f"API token (admin, shown once): {token}\n"
          f"List the items:\n"
          f"  curl -H 'Authorization: Bearer {token}' {url}/api/v1/catalog/items\n"
          f"Set PAO_REPO_URL to use your own catalog repository.\n", file=out, flush=True)
