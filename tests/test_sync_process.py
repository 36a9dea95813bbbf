"""Catalog sync with real PAO processes: a worker killed mid-sync, the token out of ps and logs,
start-up catch-up, and the first run with no configuration."""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import socket
import sys
from pathlib import Path

import aiohttp
import pytest

from app.git.catalog import GitCache
from app.github import GitHubClients
from app.service import make_worker, run_startup_hooks
from app.sync.engine import sync_repository
from app.sync.source import catalog_source
from app.sync.store import SYNC_LOCK_NS
from app.sync.tasks import queue_sync
from tests.conftest import with_settings
from tests.support import wait_for
from tests.sync_helpers import TOKEN, git, item_yaml, start_git_host

ROOT = Path(__file__).resolve().parent.parent
FULL_NAME = "org/pao-repository"


def pao_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAO_")}
    env.update({"PAO_WORKERS": "1", "PAO_JOB_POLL_INTERVAL": "0.2", "PAO_LOG_LEVEL": "DEBUG",
                "PYTHONPATH": str(ROOT)})
    env.update(extra)
    return env


async def start_pao(*args: str, env: dict[str, str], log: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app", *args, cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=log.open("ab"))


def command_lines() -> list[str]:
    """What ``ps`` shows: every process's argv."""
    lines = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                lines.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace"))
            except OSError:
                continue
    return lines


@pytest.fixture
async def host(aiohttp_server, tmp_path: Path):
    return await start_git_host(aiohttp_server, tmp_path / "host")


async def test_worker_killed_mid_sync_leaves_old_state_and_the_retry_completes(
        host, tmp_path, db_dsn, pool, settings):
    repo = host.repo(tmp_path / "repo", FULL_NAME)
    for name in ("alpha", "beta", "gamma"):
        repo.write(f"catalog/x/{name}.yaml", item_yaml(name))
    head = repo.commit_push("catalog")
    source = catalog_source(with_settings(settings, repo_url=host.url(FULL_NAME)))
    env = pao_env(PAO_DB_URL=db_dsn, PAO_REPO_URL=host.url(FULL_NAME), PAO_REPO_TOKEN=TOKEN,
                  PAO_DATA_DIR=str(tmp_path / "data"), PAO_JOB_STALL_TIMEOUT="2")
    log = tmp_path / "worker.log"
    job_id = await queue_sync(pool, source, triggered_by="webhook")

    host.gate = asyncio.Event()  # hold the fetch so git is running while we look at ps
    blocker = await pool.acquire()
    await blocker.execute("SELECT pg_advisory_lock($1, hashtext($2))", SYNC_LOCK_NS, source.key)
    worker = await start_pao("worker", env=env, log=log)
    try:
        async def fetching() -> bool:
            return host.fetches > 0
        await wait_for(fetching, what="the worker's git fetch")
        basic = base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()
        shown = command_lines()
        assert any("fetch" in line and "pao-repository" in line for line in shown)
        assert not any(TOKEN in line or basic in line for line in shown)
        host.gate.set()

        async def waiting_to_commit() -> bool:
            return await pool.fetchval(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted") > 0
        await wait_for(waiting_to_commit, what="the sync to reach its commit")
        worker.send_signal(signal.SIGKILL)
        await worker.wait()
    finally:
        if worker.returncode is None:
            worker.kill()
            await worker.wait()
        await blocker.execute("SELECT pg_advisory_unlock_all()")
        await pool.release(blocker)

    # The crash left the previous (empty) state: nothing half-written.
    assert await pool.fetchval("SELECT count(*) FROM catalog_items") == 0
    assert await pool.fetchval("SELECT count(*) FROM catalog_sync_state") == 0
    assert await pool.fetchval("SELECT status FROM jobs WHERE id = $1", job_id) == "doing"

    # A new worker finds the stalled job, and the retry syncs everything.
    worker = await start_pao("worker", env=env, log=log)
    try:
        async def synced() -> bool:
            return await pool.fetchval("SELECT last_processed_sha FROM catalog_sync_state") == head
        await wait_for(synced, timeout=30, what="the retried sync")
    finally:
        worker.send_signal(signal.SIGTERM)
        await worker.wait()
    assert await pool.fetchval("SELECT count(*) FROM catalog_items WHERE is_active") == 3
    runs = await pool.fetch("SELECT status, error FROM catalog_sync_runs ORDER BY id")
    assert [r["status"] for r in runs] == ["failed", "completed"]
    assert "interrupted" in runs[0]["error"]
    attempts = await pool.fetch("SELECT outcome FROM job_attempts WHERE job_id = $1 ORDER BY attempt", job_id)
    assert [a["outcome"] for a in attempts] == ["stalled", "succeeded"]

    text = log.read_text()
    assert "catalog sync" in text  # the log is there and says what happened
    assert TOKEN not in text and base64.b64encode(TOKEN.encode()).decode() not in text
    cache_config = next((tmp_path / "data" / "git" / "catalog").glob("*.git")) / "config"
    assert TOKEN not in cache_config.read_text()


async def test_start_up_catches_up_on_pushes_missed_while_down(host, tmp_path, runtime, pool):
    repo = host.repo(tmp_path / "repo", FULL_NAME)
    repo.write("catalog/x/one.yaml", item_yaml("one"))
    repo.commit_push("one")
    runtime.settings = with_settings(runtime.settings, repo_url=host.url(FULL_NAME), repo_token=TOKEN)
    runtime.github = GitHubClients.from_settings(runtime.settings, runtime.http)
    source = catalog_source(runtime.settings)
    cache = GitCache(source, source.cache_dir(runtime.settings.data_dir))
    await sync_repository(pool, source, cache, TOKEN)

    # Current: starting up queues nothing.
    await run_startup_hooks(runtime)
    assert await pool.fetchval("SELECT count(*) FROM jobs WHERE task = 'sync_catalog'") == 0

    # A push while PAO was down (no webhook arrives).
    repo.write("catalog/x/two.yaml", item_yaml("two"))
    head = repo.commit_push("two")
    await run_startup_hooks(runtime)
    job = await pool.fetchrow("SELECT task, args FROM jobs WHERE task = 'sync_catalog'")
    assert job["args"]["triggered_by"] == "startup"
    worker = make_worker(runtime)
    worker.tasks = {"sync_catalog": worker.tasks["sync_catalog"]}
    assert await worker.run_one()
    run = await pool.fetchrow("SELECT * FROM catalog_sync_runs ORDER BY id DESC LIMIT 1")
    assert (run["triggered_by"], run["mode"], run["to_sha"], run["items_added"]) == (
        "startup", "incremental", head, 1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def serve_until_announced(
        env: dict[str, str], log: Path) -> tuple[asyncio.subprocess.Process, str, str]:
    proc = await start_pao("serve", env=env, log=log)
    assert proc.stdout is not None
    token = url = None
    try:
        async with asyncio.timeout(60):
            while url is None:
                line = (await proc.stdout.readline()).decode()
                assert line, f"pao serve exited: {log.read_text()[-2000:]}"
                if line.startswith("API token"):
                    token = line.split(":", 1)[1].strip()
                if "curl" in line:
                    url = line.split()[-1]
    except BaseException:
        proc.kill()
        await proc.wait()
        raise
    assert token is not None
    return proc, token, url


async def test_first_run_without_configuration_serves_the_examples(tmp_path, db_dsn):
    data = tmp_path / "data"
    env = pao_env(PAO_DB_URL=db_dsn, PAO_DATA_DIR=str(data), PAO_PORT=str(free_port()),
                  PAO_LOG_LEVEL="INFO")
    log = tmp_path / "serve.log"
    tokens = []
    for run in range(2):
        proc, token, url = await serve_until_announced(env, log)
        try:
            async with aiohttp.ClientSession() as http:
                async with http.get(url, headers={"Authorization": f"Bearer {token}"}) as resp:
                    assert resp.status == 200
                    names = [i["name"] for i in (await resp.json())["items"]]
                async with http.get(url.replace("catalog/items", "catalog/bundles/full-stack-web-app"),
                                    headers={"Authorization": f"Bearer {token}"}) as resp:
                    assert (await resp.json())["display_name"] == "Full Stack Web Application"
                if run == 1:  # the first run's token was replaced
                    async with http.get(url, headers={"Authorization": f"Bearer {tokens[0]}"}) as resp:
                        assert resp.status == 401
        finally:
            proc.send_signal(signal.SIGTERM)
            await proc.wait()
        tokens.append(token)
        assert names == ["application-monitoring", "eks-container-app", "mysql-database",
                         "postgres-database", "redis-cache"]
    # Committed once; the second run reused the repository.
    assert git(data / "demo-catalog", "rev-list", "--count", "HEAD") == "1"
    assert tokens[0] not in log.read_text() and tokens[1] not in log.read_text()


async def test_pao_sync_command_reconciles_and_reports(tmp_path, db_dsn, pool):
    from tests.sync_helpers import CatalogRepo

    repo = CatalogRepo(tmp_path / "repo")
    repo.write("catalog/x/one.yaml", item_yaml("one"))
    repo.write("catalog/x/bad.yaml", "name: [\n")
    repo.commit_push("one")
    env = pao_env(PAO_DB_URL=db_dsn, PAO_REPO_URL=str(repo.remote), PAO_DATA_DIR=str(tmp_path / "d"))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app", "sync", cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode == 1, err.decode()  # completed, with an error to look at
    assert '"items_added": 1' in out.decode() and '"status": "completed_with_errors"' in out.decode()
    run = await pool.fetchrow("SELECT triggered_by, mode FROM catalog_sync_runs")
    assert (run["triggered_by"], run["mode"]) == ("manual", "full")

    env.pop("PAO_REPO_URL")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app", "sync", cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await proc.communicate()
    assert proc.returncode == 2 and b"PAO_REPO_URL" in err
