"""A real ``pao worker`` stopped while a big sync parses in its pool processes.

The pool's processes are forked by multiprocessing's forkserver, not by the worker,
so they are not the worker's children: these tests check that none of them (nor the
forkserver, nor its resource tracker) outlives a killed worker, that the retried sync
stores exactly what an uncrashed sync of the same commit stores, and that a graceful
stop lets the parse finish and leaves no process behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path

import asyncpg
import psutil
import pytest

from app.git.catalog import GitCache
from app.sync.engine import sync_repository
from app.sync.source import catalog_source
from app.sync.tasks import queue_sync
from tests.conftest import with_settings
from tests.support import wait_for
from tests.sync_helpers import CatalogRepo, item_yaml
from tests.test_sync_process import ROOT, free_port, pao_env, start_pao

FILES = 1000  # four chunks of 250: two pool processes take two each


def big_catalog(root: Path) -> tuple[CatalogRepo, str]:
    """A catalog of ``FILES`` files: items (every fifth with 4,000 tags, so the parse
    lasts about a second of CPU), a broken file, and a name held twice."""
    repo = CatalogRepo(root)
    many_tags = tuple(f"t{i}" for i in range(4000))
    for i in range(FILES - 2):
        repo.write(f"catalog/team-{i % 7}/item-{i:04d}.yaml",
                   item_yaml(f"item-{i:04d}", f"1.{i}.0", tags=many_tags if i % 5 == 0 else ("db",)))
    repo.write("catalog/x/broken.yaml", "name: [unclosed\n")
    repo.write("catalog/x/twin.yaml", item_yaml("item-0001"))
    return repo, repo.commit_push("big catalog")


def multiprocessing_descendants(pid: int) -> list[psutil.Process]:
    """The forkserver, its pool processes and the resource tracker a process started."""
    found = []
    for p in psutil.Process(pid).children(recursive=True):
        try:
            if "multiprocessing" in " ".join(p.cmdline()):
                found.append(p)
        except psutil.NoSuchProcess:
            continue
    return found


async def parsing_in_processes(pid: int) -> list[psutil.Process]:
    """Once pool processes parse: every multiprocessing process the worker started."""
    found = multiprocessing_descendants(pid)
    # The pool's processes are forked from the forkserver and show its command line.
    forked = [p for p in found if "forkserver" in " ".join(p.cmdline())]
    return found if len(forked) >= 2 else []


def gone(processes: list[psutil.Process]) -> bool:
    """Exited (a zombie of a parent that does not reap counts: it runs nothing)."""
    for p in processes:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                return False
        except psutil.NoSuchProcess:
            continue
    return True


async def end(worker: asyncio.subprocess.Process, helpers: list[psutil.Process]) -> None:
    """Test clean-up: no process of this test left running, whatever failed."""
    for p in helpers:  # first: while one holds the worker's stdout, asyncio's wait() hangs
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()
    if worker.returncode is None:
        worker.kill()
    await worker.wait()


async def catalog_rows(pool: asyncpg.Pool) -> dict[str, list[tuple]]:
    """What the catalog tables hold, without ids and timestamps."""
    rows = {}
    for table, skip in (("catalog_items", {"id", "created_at", "updated_at"}),
                        ("catalog_bundles", {"id", "created_at", "updated_at"}),
                        ("catalog_files", set())):
        records = await pool.fetch(f"SELECT * FROM {table}")
        rows[table] = sorted(tuple((k, str(v)) for k, v in r.items() if k not in skip) for r in records)
    return rows


async def test_a_worker_killed_mid_parse_leaves_no_process_and_the_retry_stores_what_an_uncrashed_sync_does(
        tmp_path, db_dsn, pool, settings):
    repo, head = big_catalog(tmp_path / "repo")
    source = catalog_source(with_settings(settings, repo_url=str(repo.remote)))
    env = pao_env(PAO_DB_URL=db_dsn, PAO_REPO_URL=str(repo.remote), PAO_DATA_DIR=str(tmp_path / "data"),
                  PAO_JOB_STALL_TIMEOUT="2", PAO_SYNC_PARSE_PROCESSES="2")
    log = tmp_path / "worker.log"
    job_id = await queue_sync(pool, source, triggered_by="webhook")

    worker = await start_pao("worker", env=env, log=log)
    helpers: list[psutil.Process] = []
    try:
        helpers = await wait_for(lambda: parsing_in_processes(worker.pid), timeout=60, interval=0.01,
                                 what="the sync's pool processes")
        worker.send_signal(signal.SIGKILL)  # the worker alone, as the OOM killer would
        # The pool's processes, the forkserver and its resource tracker all end with it.
        await wait_for(lambda: asyncio.to_thread(gone, helpers), timeout=15,
                       what=f"the killed worker's processes {[p.pid for p in helpers]} to exit")
    finally:
        await end(worker, helpers)
    assert await pool.fetchval("SELECT count(*) FROM catalog_files") == 0  # nothing half-written
    assert await pool.fetchval("SELECT status FROM jobs WHERE id = $1", job_id) == "doing"

    worker = await start_pao("worker", env=env, log=log)
    helpers = []
    try:
        async def synced() -> bool:
            return await pool.fetchval("SELECT last_processed_sha FROM catalog_sync_state") == head
        await wait_for(synced, timeout=60, what="the retried sync")
        helpers = multiprocessing_descendants(worker.pid)
        worker.send_signal(signal.SIGTERM)
        await wait_for(lambda: asyncio.to_thread(gone, helpers), timeout=30, what="the forkserver to exit")
    finally:
        await end(worker, helpers)
    runs = await pool.fetch("SELECT status, error FROM catalog_sync_runs ORDER BY id")
    assert [r["status"] for r in runs] == ["failed", "completed_with_errors"]
    assert "parsing process failed" not in log.read_text()  # the retry parsed in processes
    retried = await catalog_rows(pool)
    assert len(retried["catalog_files"]) == FILES

    # The same commit synced from scratch, without a crash, parsed by one thread.
    await pool.execute("TRUNCATE catalog_items, catalog_bundles, catalog_files, catalog_sync_state")
    cache = GitCache(source, source.cache_dir(tmp_path / "reference"))
    result = await sync_repository(pool, source, cache, None, parse_processes=1)
    assert (result.mode, result.to_sha) == ("full", head)
    assert await catalog_rows(pool) == retried


@pytest.mark.parametrize("whole_group", [False, True], ids=["worker", "process-group"])
async def test_a_graceful_stop_mid_parse_finishes_the_sync_and_leaves_no_process(
        tmp_path, db_dsn, pool, settings, whole_group):
    """SIGTERM to the worker (as `pao serve` stops its worker process), or to its whole
    process group (as systemd stops a service: the pool's processes die, and the sync's
    thread parses what they had)."""
    repo, head = big_catalog(tmp_path / "repo")
    source = catalog_source(with_settings(settings, repo_url=str(repo.remote)))
    env = pao_env(PAO_DB_URL=db_dsn, PAO_REPO_URL=str(repo.remote), PAO_DATA_DIR=str(tmp_path / "data"),
                  PAO_SYNC_PARSE_PROCESSES="2")
    job_id = await queue_sync(pool, source, triggered_by="webhook")
    log = tmp_path / "worker.log"
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app", "worker", cwd=ROOT, env=env, stdout=asyncio.subprocess.DEVNULL,
        stderr=log.open("ab"), start_new_session=True)  # a process group of its own
    helpers = []
    try:
        helpers = await wait_for(lambda: parsing_in_processes(worker.pid), timeout=60, interval=0.01,
                                 what="the sync's pool processes")
        if whole_group:
            os.killpg(worker.pid, signal.SIGTERM)
        else:
            worker.send_signal(signal.SIGTERM)
        # Within the worker's grace period for running jobs (25 s): the sync needs ~1 s.
        everyone = [psutil.Process(worker.pid), *helpers]
        await wait_for(lambda: asyncio.to_thread(gone, everyone), timeout=60,
                       what=f"the worker and its processes {[p.pid for p in helpers]} to exit")
    finally:
        await end(worker, helpers)
    assert worker.returncode == 0
    job = await pool.fetchrow("SELECT status, attempts FROM jobs WHERE id = $1", job_id)
    assert (job["status"], job["attempts"]) == ("succeeded", 1)
    assert await pool.fetchval("SELECT last_processed_sha FROM catalog_sync_state") == head
    assert await pool.fetchval("SELECT count(*) FROM catalog_files") == FILES
    text = log.read_text()
    assert text.count("parsing process failed") <= 1 and "Traceback" not in text, text[-3000:]


async def test_pao_serve_killed_mid_parse_leaves_its_worker_to_finish_the_sync_and_no_process(
        tmp_path, db_dsn, pool, settings):
    """`pao serve` with its worker in a child process, SIGKILLed mid-parse: the orphaned
    worker stops gracefully (its sync commits) and takes its pool processes with it."""
    repo, head = big_catalog(tmp_path / "repo")
    source = catalog_source(with_settings(settings, repo_url=str(repo.remote)))
    env = pao_env(PAO_DB_URL=db_dsn, PAO_REPO_URL=str(repo.remote), PAO_DATA_DIR=str(tmp_path / "data"),
                  PAO_SYNC_PARSE_PROCESSES="2", PAO_WEB_PROCESSES="2", PAO_PORT=str(free_port()))
    await queue_sync(pool, source, triggered_by="webhook")
    serve = await start_pao("serve", env=env, log=tmp_path / "serve.log")
    descendants: list[psutil.Process] = []
    try:
        await wait_for(lambda: parsing_in_processes(serve.pid), timeout=60, interval=0.01,
                       what="the sync's pool processes")
        descendants = psutil.Process(serve.pid).children(recursive=True)
        serve.send_signal(signal.SIGKILL)
        await wait_for(lambda: asyncio.to_thread(gone, descendants), timeout=60,
                       what=f"pao serve's processes {[p.pid for p in descendants]} to exit")
    finally:
        await end(serve, descendants)
    assert await pool.fetchval("SELECT last_processed_sha FROM catalog_sync_state") == head
    assert await pool.fetchval("SELECT count(*) FROM catalog_files") == FILES
