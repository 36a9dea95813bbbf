"""The job queue: locks, retries, stalled workers, shutdown, with real worker processes."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import tests.jobs_tasks  # noqa: F401  (registers the test tasks)
from app import jobs
from app.cli import main as cli_main
from app.github import GitHubClients
from app.jobs.worker import Worker, recover_stalled, register_worker, release_dead_local_workers
from app.procinfo import ProcessIdentity
from tests.jobs_tasks import CREATE_LOG
from tests.support import wait_for

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
async def queue(pool):
    await pool.execute(CREATE_LOG)
    return pool


def make_worker(pool, dsn, settings, session, **kw) -> Worker:
    return Worker(pool, dsn, settings, GitHubClients.from_settings(settings, session), session,
                  poll_interval=0.1, **kw)


async def job(pool, job_id):
    return await pool.fetchrow("SELECT * FROM jobs WHERE id = $1", job_id)


def start_worker_process(dsn: str, *, concurrency: int = 2, stall: float = 1.5) -> subprocess.Popen:
    env = {**os.environ, "PAO_DB_URL": dsn, "PAO_JOB_STALL_TIMEOUT": str(stall),
           "PAO_JOB_POLL_INTERVAL": "0.1", "PAO_LOG_LEVEL": "INFO"}
    code = ("import tests.jobs_tasks; from app.cli import main; "
            f"raise SystemExit(main(['worker', '--concurrency', '{concurrency}']))")
    return subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def stop_process(proc: subprocess.Popen) -> str:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.stderr.read().decode() if proc.stderr else ""


# -- enqueue and the queueing lock ----------------------------------------------

async def test_queueing_lock_allows_one_waiting_job(queue):
    first = await jobs.enqueue(queue, "test_sleep", {"label": "a"}, queueing_lock="repo:1")
    second = await jobs.enqueue(queue, "test_sleep", {"label": "b"}, queueing_lock="repo:1")
    assert first.created and not second.created
    assert second.job_id == first.job_id
    other = await jobs.enqueue(queue, "test_sleep", {}, queueing_lock="repo:2")
    assert other.created and other.job_id != first.job_id


async def test_enqueue_is_part_of_the_callers_transaction(queue):
    with pytest.raises(RuntimeError):
        async with queue.acquire() as conn, conn.transaction():
            await jobs.enqueue(conn, "test_sleep", {})
            raise RuntimeError("handler failed")
    assert await queue.fetchval("SELECT count(*) FROM jobs") == 0


async def test_unknown_task_is_refused(queue):
    with pytest.raises(ValueError, match="unknown task"):
        await jobs.enqueue(queue, "no_such_task", {})


async def test_job_enqueued_while_its_twin_runs_is_not_lost(queue, db_dsn, settings, http_session):
    worker = make_worker(queue, db_dsn, settings, http_session, concurrency=2)
    first = await jobs.enqueue(queue, "test_sleep", {"seconds": 0.6, "label": "first"},
                               queueing_lock="catalog", lock="catalog")
    runner = asyncio.create_task(worker.run())
    try:
        await wait_for(lambda: queue.fetchval(
            "SELECT status = 'doing' FROM jobs WHERE id = $1", first.job_id), what="first running")
        # A push arrives while the sync runs: it must wait, not be dropped.
        second = await jobs.enqueue(queue, "test_sleep", {"label": "second"},
                                    queueing_lock="catalog", lock="catalog")
        assert second.created and second.job_id != first.job_id
        # A third while the second waits folds into the second.
        third = await jobs.enqueue(queue, "test_sleep", {"label": "third"},
                                   queueing_lock="catalog", lock="catalog")
        assert third.job_id == second.job_id and not third.created
        await wait_for(lambda: queue.fetchval(
            "SELECT count(*) = 2 FROM jobs WHERE status = 'succeeded'"), what="both done")
    finally:
        worker.stop()
        await runner
    rows = await queue.fetch("SELECT label, started_at, finished_at FROM job_log "
                             "WHERE label NOT LIKE 'started:%' ORDER BY started_at")
    assert [r["label"] for r in rows] == ["first", "second"]
    # Same lock: the second started only after the first finished.
    assert rows[1]["started_at"] >= rows[0]["finished_at"]


# -- retries ----------------------------------------------------------------------

async def test_failing_job_retries_with_backoff_then_succeeds(queue, db_dsn, settings, http_session):
    worker = make_worker(queue, db_dsn, settings, http_session)
    queued = await jobs.enqueue(queue, "test_flaky", {"fail_times": 2})
    assert await worker.run_one()
    row = await job(queue, queued.job_id)
    assert row["status"] == "todo" and row["attempts"] == 1
    assert "remote unavailable (attempt 1)" in row["last_error"]
    assert row["scheduled_at"] > row["started_at"]  # backed off, not due at once
    runner = asyncio.create_task(worker.run())
    try:
        await wait_for(lambda: queue.fetchval(
            "SELECT status = 'succeeded' FROM jobs WHERE id = $1", queued.job_id), what="success")
    finally:
        worker.stop()
        await runner
    attempts = await queue.fetch(
        "SELECT attempt, outcome FROM job_attempts WHERE job_id = $1 ORDER BY attempt", queued.job_id)
    assert [(a["attempt"], a["outcome"]) for a in attempts] == [
        (1, "retry"), (2, "retry"), (3, "succeeded")]


async def test_job_out_of_attempts_fails_and_keeps_its_error(queue, db_dsn, settings, http_session):
    worker = make_worker(queue, db_dsn, settings, http_session)
    queued = await jobs.enqueue(queue, "test_flaky", {"fail_times": 10}, max_attempts=2)
    runner = asyncio.create_task(worker.run())
    try:
        await wait_for(lambda: queue.fetchval(
            "SELECT status = 'failed' FROM jobs WHERE id = $1", queued.job_id), what="failure")
    finally:
        worker.stop()
        await runner
    row = await job(queue, queued.job_id)
    assert row["attempts"] == 2 and "attempt 2" in row["last_error"]


async def test_permanent_error_fails_at_once(queue, db_dsn, settings, http_session):
    worker = make_worker(queue, db_dsn, settings, http_session)
    queued = await jobs.enqueue(queue, "test_permanent", {})
    assert await worker.run_one()
    row = await job(queue, queued.job_id)
    assert row["status"] == "failed" and row["attempts"] == 1
    assert "credentials rejected" in row["last_error"]


async def test_superseded_work_ends_the_job_at_once_without_an_error(queue, db_dsn, settings, http_session,
                                                                      caplog):
    worker = make_worker(queue, db_dsn, settings, http_session)
    queued = await jobs.enqueue(queue, "test_superseded", {})
    assert await worker.run_one()
    row = await job(queue, queued.job_id)
    assert (row["status"], row["attempts"]) == ("cancelled", 1)
    assert row["last_error"] == "commit abc is gone: nothing to do"
    assert await queue.fetchval("SELECT outcome FROM job_attempts WHERE job_id = $1",
                                queued.job_id) == "superseded"
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]


async def test_job_errors_are_scrubbed_of_secrets(queue, db_dsn, settings, http_session):
    worker = make_worker(queue, db_dsn, settings, http_session)
    queued = await jobs.enqueue(queue, "test_secret_error", {"token": "ghs_" + "A1b2" * 9})
    assert await worker.run_one()
    row = await job(queue, queued.job_id)
    assert row["status"] == "failed"
    assert "ghs_" not in row["last_error"] and "***" in row["last_error"]


async def test_cli_retries_failed_jobs(queue, db_dsn, monkeypatch, capsys, settings, http_session):
    worker = make_worker(queue, db_dsn, settings, http_session)
    queued = await jobs.enqueue(queue, "test_permanent", {})
    await worker.run_one()
    monkeypatch.setenv("PAO_DB_URL", db_dsn)
    code = await asyncio.to_thread(cli_main, ["jobs", "retry", str(queued.job_id)])
    assert code == 0
    row = await job(queue, queued.job_id)
    assert row["status"] == "todo" and row["attempts"] == 0
    # Not failed any more, so retrying again is refused with a clear message.
    code = await asyncio.to_thread(cli_main, ["jobs", "retry", str(queued.job_id)])
    assert code == 1
    assert "is not failed" in capsys.readouterr().err


# -- stalled workers ----------------------------------------------------------------

async def test_stalled_job_is_requeued_or_failed(queue):
    queued = await jobs.enqueue(queue, "test_sleep", {}, max_attempts=2)
    await queue.execute("UPDATE jobs SET status = 'doing', attempts = 1, worker_id = 'dead:1', "
                        "started_at = now(), heartbeat_at = now() - interval '1 hour' WHERE id = $1",
                        queued.job_id)
    assert await recover_stalled(queue, 60) == [queued.job_id]
    row = await job(queue, queued.job_id)
    assert row["status"] == "todo" and "stopped responding" in row["last_error"]
    await queue.execute("UPDATE jobs SET status = 'doing', attempts = 2, worker_id = 'dead:2', "
                        "heartbeat_at = now() - interval '1 hour' WHERE id = $1", queued.job_id)
    await recover_stalled(queue, 60)
    assert (await job(queue, queued.job_id))["status"] == "failed"


async def test_stalled_job_with_waiting_twin_is_superseded(queue):
    stalled = await jobs.enqueue(queue, "test_sleep", {}, queueing_lock="k")
    await queue.execute("UPDATE jobs SET status = 'doing', attempts = 1, worker_id = 'dead:1', "
                        "started_at = now(), heartbeat_at = now() - interval '1 hour' WHERE id = $1",
                        stalled.job_id)
    twin = await jobs.enqueue(queue, "test_sleep", {}, queueing_lock="k")
    await recover_stalled(queue, 60)
    row = await job(queue, stalled.job_id)
    assert row["status"] == "cancelled" and f"superseded by job {twin.job_id}" in row["last_error"]
    assert (await job(queue, twin.job_id))["status"] == "todo"


# -- real processes -----------------------------------------------------------------

async def listening_workers(pool) -> int:
    return await pool.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND query LIKE 'LISTEN%'")


async def _at_least(count, n: int) -> bool:
    return (await count) >= n


async def test_two_worker_processes_never_share_a_job_or_a_lock(queue, db_dsn):
    procs = [start_worker_process(db_dsn, concurrency=3) for _ in range(2)]
    locks = [f"lock{n}" for n in range(6)]
    try:
        await wait_for(lambda: _at_least(listening_workers(queue), 2),
                       what="both workers listening")
        ids = []
        for i in range(36):
            lock = locks[i % len(locks)]
            queued = await jobs.enqueue(queue, "test_sleep", {"seconds": 0.1, "label": lock},
                                        lock=lock)
            ids.append(queued.job_id)
        await wait_for(lambda: queue.fetchval(
            "SELECT count(*) = 36 FROM jobs WHERE status = 'succeeded'"), timeout=60, what="all done")
    finally:
        logs = [stop_process(p) for p in procs]
    runs = await queue.fetch("SELECT job_id, label, pid, started_at, finished_at FROM job_log "
                             "WHERE label NOT LIKE 'started:%' ORDER BY started_at")
    assert sorted(r["job_id"] for r in runs) == sorted(ids)  # each job ran exactly once
    assert len({r["pid"] for r in runs}) == 2, f"both workers should take jobs:\n{logs}"
    for lock in locks:
        same = [r for r in runs if r["label"] == lock]
        for a, b in itertools.pairwise(same):
            assert b["started_at"] >= a["finished_at"], f"{lock}: two jobs ran at once"


async def test_worker_killed_mid_job_leaves_job_retried_by_another(queue, db_dsn):
    queued = await jobs.enqueue(queue, "test_sleep", {"seconds": 1.0, "label": "victim"},
                                lock="victim")
    first = start_worker_process(db_dsn)
    second = None
    try:
        await wait_for(lambda: queue.fetchval(
            "SELECT status = 'doing' FROM jobs WHERE id = $1", queued.job_id), what="job started")
        first.send_signal(signal.SIGKILL)
        first.wait()
        second = start_worker_process(db_dsn)
        await wait_for(lambda: queue.fetchval(
            "SELECT status = 'succeeded' FROM jobs WHERE id = $1", queued.job_id),
            timeout=60, what="job completed by the second worker")
    finally:
        stop_process(first)
        if second is not None:
            stop_process(second)
    row = await job(queue, queued.job_id)
    assert row["attempts"] == 2
    finished = await queue.fetch("SELECT pid FROM job_log WHERE label = 'victim'")
    assert [r["pid"] for r in finished] == [second.pid]
    outcomes = await queue.fetch(
        "SELECT outcome FROM job_attempts WHERE job_id = $1 ORDER BY attempt", queued.job_id)
    assert [r["outcome"] for r in outcomes] == ["stalled", "succeeded"]


async def test_a_worker_starting_after_a_kill_takes_the_dead_workers_job_at_once(queue, db_dsn):
    queued = await jobs.enqueue(queue, "test_sleep", {"seconds": 1.0, "label": "victim"},
                                lock="victim")
    # A stall timeout no test waits out: only seeing that the process is gone frees the job.
    first = start_worker_process(db_dsn, stall=600)
    second = None
    try:
        await wait_for(lambda: queue.fetchval(
            "SELECT status = 'doing' FROM jobs WHERE id = $1", queued.job_id), what="job started")
        dead = await queue.fetchval("SELECT worker_id FROM jobs WHERE id = $1", queued.job_id)
        first.send_signal(signal.SIGKILL)
        first.wait()
        second = start_worker_process(db_dsn, stall=600)
        await wait_for(lambda: queue.fetchval(
            "SELECT status = 'succeeded' FROM jobs WHERE id = $1", queued.job_id),
            timeout=60, what="job completed by the restarted worker")
    finally:
        stop_process(first)
        if second is not None:
            stop_process(second)
    attempts = await queue.fetch(
        "SELECT outcome, error FROM job_attempts WHERE job_id = $1 ORDER BY attempt", queued.job_id)
    assert [r["outcome"] for r in attempts] == ["stalled", "succeeded"]
    assert attempts[0]["error"] == f"worker {dead} is gone (its process no longer exists)"
    finished = await queue.fetch("SELECT pid FROM job_log WHERE label = 'victim'")
    assert [r["pid"] for r in finished] == [second.pid]
    # The dead worker is forgotten; the stopped one removed itself.
    assert await queue.fetchval("SELECT count(*) FROM job_workers") == 0


async def test_only_a_local_worker_whose_process_is_gone_loses_its_jobs(queue):
    me = ProcessIdentity.of()
    workers = {
        "alive": me,  # this very process
        # Same pid, later start time: the pid was reused by another process.
        "pid-reused": dataclasses.replace(me, start=me.start + 1),
        "exited": dataclasses.replace(me, pid=_free_pid()),
        # Another host (or container): nothing can be known from here.
        "elsewhere": dataclasses.replace(me, boot_id="another-boot", pid=_free_pid()),
        "other-pids": dataclasses.replace(me, pid_ns="pid:[1]", pid=_free_pid()),
    }
    ids = {}
    for name, identity in workers.items():
        await register_worker(queue, name, identity)
        ids[name] = await queue.fetchval(
            "INSERT INTO jobs (task, status, attempts, worker_id, heartbeat_at, started_at)"
            " VALUES ('test_sleep', 'doing', 1, $1, now(), now()) RETURNING id", name)
    recovered = await release_dead_local_workers(queue, 600.0, "asker")
    assert sorted(recovered) == sorted([ids["pid-reused"], ids["exited"]])
    status = {r["worker_id"] or r["last_error"]: r["status"] for r in await queue.fetch(
        "SELECT worker_id, status, last_error FROM jobs")}
    assert status == {"alive": "doing", "elsewhere": "doing", "other-pids": "doing",
                      "worker pid-reused is gone (its process no longer exists)": "todo",
                      "worker exited is gone (its process no longer exists)": "todo"}
    assert sorted(r["worker_id"] for r in await queue.fetch("SELECT worker_id FROM job_workers")) \
        == ["alive", "elsewhere", "other-pids"]


def _free_pid() -> int:
    """A pid no process holds right now (a child that has exited and been reaped)."""
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


async def test_job_taken_over_from_a_slow_worker_stops_running_there(queue, db_dsn):
    # The first worker holds its event loop past the stall timeout (alive, but
    # silent); the second takes the job over. When the first wakes up it must
    # stop its now-orphaned run, not finish it alongside the new one.
    queued = await jobs.enqueue(queue, "test_block_first",
                                {"blocked": 4.0, "seconds": 2.0, "label": "slow"}, lock="slow")
    first = start_worker_process(db_dsn)
    second = None
    try:
        await wait_for(lambda: queue.fetchval(
            "SELECT status = 'doing' FROM jobs WHERE id = $1", queued.job_id), what="job started")
        second = start_worker_process(db_dsn)
        await wait_for(lambda: queue.fetchval(
            "SELECT status = 'succeeded' FROM jobs WHERE id = $1", queued.job_id),
            timeout=60, what="job completed by the second worker")
        await asyncio.sleep(3.0)  # long enough for the first run to have finished, had it gone on
    finally:
        stop_process(first)
        if second is not None:
            stop_process(second)
    finished = await queue.fetch("SELECT attempt, pid FROM job_log WHERE label = 'slow'")
    assert [(r["attempt"], r["pid"]) for r in finished] == [(2, second.pid)]


async def test_a_lone_worker_that_was_slow_does_not_take_over_its_own_job(queue, db_dsn):
    # One worker, its event loop held past the stall timeout: once it wakes up,
    # it must know the job is still its own, not requeue and run it a second time.
    queued = await jobs.enqueue(queue, "test_block_first",
                                {"blocked": 4.0, "seconds": 1.0, "label": "lone"})
    proc = start_worker_process(db_dsn)
    try:
        await wait_for(lambda: queue.fetchval(
            "SELECT status = 'succeeded' FROM jobs WHERE id = $1", queued.job_id),
            timeout=60, what="job completed")
        await asyncio.sleep(1.5)
    finally:
        stop_process(proc)
    runs = await queue.fetch("SELECT attempt, pid FROM job_log WHERE label = 'lone'")
    assert [(r["attempt"], r["pid"]) for r in runs] == [(1, proc.pid)]
    row = await job(queue, queued.job_id)
    assert row["status"] == "succeeded" and row["attempts"] == 1


async def test_job_requeued_and_claimed_again_by_the_same_worker_runs_once(
        queue, db_dsn, settings, http_session):
    # A peer requeued the job as stalled, and this very worker claimed it again:
    # the older run must stop, and its outcome must not be taken for the newer one's.
    worker = make_worker(queue, db_dsn, settings, http_session, concurrency=2,
                         stall_timeout=60)
    queued = await jobs.enqueue(queue, "test_sleep", {"seconds": 1.5, "label": "twice"})
    runner = asyncio.create_task(worker.run())
    try:
        await wait_for(lambda: queue.fetchval(
            "SELECT status = 'doing' FROM jobs WHERE id = $1", queued.job_id), what="job started")
        await queue.execute("UPDATE jobs SET heartbeat_at = now() - interval '1 hour' "
                            "WHERE id = $1", queued.job_id)
        assert await recover_stalled(queue, 30) == [queued.job_id]  # a peer's check
        await wait_for(lambda: queue.fetchval(
            "SELECT attempts = 2 AND status = 'doing' FROM jobs WHERE id = $1", queued.job_id),
            what="claimed again")
        await wait_for(lambda: queue.fetchval(
            "SELECT status = 'succeeded' FROM jobs WHERE id = $1", queued.job_id), what="done")
    finally:
        worker.stop()
        await runner
    finished = await queue.fetch("SELECT attempt FROM job_log WHERE label = 'twice'")
    assert [r["attempt"] for r in finished] == [2]
    outcomes = await queue.fetch(
        "SELECT attempt, outcome FROM job_attempts WHERE job_id = $1 ORDER BY attempt",
        queued.job_id)
    assert [(r["attempt"], r["outcome"]) for r in outcomes] == [(1, "stalled"), (2, "succeeded")]


async def test_sigterm_lets_the_running_job_finish(queue, db_dsn):
    queued = await jobs.enqueue(queue, "test_sleep", {"seconds": 0.8, "label": "graceful"})
    proc = start_worker_process(db_dsn)
    try:
        await wait_for(lambda: queue.fetchval(
            "SELECT status = 'doing' FROM jobs WHERE id = $1", queued.job_id), what="job started")
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(proc.wait, 30)
    finally:
        stderr = stop_process(proc)
    assert code == 0, stderr
    assert (await job(queue, queued.job_id))["status"] == "succeeded"


async def test_stop_with_every_slot_busy_releases_the_job_after_the_grace(
        queue, db_dsn, settings, http_session):
    # One slot, one long job: stop() must still start the grace period (SIGTERM
    # with a 10-minute job must not hold the process for 10 minutes).
    worker = make_worker(queue, db_dsn, settings, http_session, concurrency=1,
                         shutdown_grace=0.5)
    queued = await jobs.enqueue(queue, "test_sleep", {"seconds": 60, "label": "long"})
    runner = asyncio.create_task(worker.run())
    await wait_for(lambda: queue.fetchval(
        "SELECT status = 'doing' FROM jobs WHERE id = $1", queued.job_id), what="job started")
    worker.stop()
    await asyncio.wait_for(runner, 10)
    row = await job(queue, queued.job_id)
    # Released for another worker, and the attempt does not count.
    assert row["status"] == "todo" and row["attempts"] == 0 and row["worker_id"] is None


async def test_job_finishing_during_shutdown_keeps_heartbeating(queue, db_dsn, settings,
                                                                 http_session):
    # The job needs longer than the stall timeout to finish after stop(); a peer
    # checking for stalled jobs meanwhile must not take it from a live worker.
    worker = make_worker(queue, db_dsn, settings, http_session, stall_timeout=1.0,
                         shutdown_grace=10)
    queued = await jobs.enqueue(queue, "test_sleep", {"seconds": 2.5, "label": "slow"})
    runner = asyncio.create_task(worker.run())
    await wait_for(lambda: queue.fetchval(
        "SELECT status = 'doing' FROM jobs WHERE id = $1", queued.job_id), what="job started")
    worker.stop()
    taken = []
    while not runner.done():
        taken += await recover_stalled(queue, 1.0)
        await asyncio.sleep(0.2)
    await runner
    assert taken == []
    row = await job(queue, queued.job_id)
    assert row["status"] == "succeeded" and row["attempts"] == 1


async def test_worker_without_database_reports_configuration_error(tmp_path):
    env = {**os.environ, "PAO_DB_URL": "mysql://nope", "PAO_PORT": "99999"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app", "worker", cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await proc.communicate()
    assert proc.returncode == 2
    assert b"PAO_DB_URL" in err and b"PAO_PORT" in err


async def test_notify_wakes_an_idle_worker_quickly(queue, db_dsn, settings, http_session):
    # Poll interval is long here: only NOTIFY can make this finish promptly.
    worker = Worker(queue, db_dsn, settings, GitHubClients.from_settings(settings, http_session),
                    http_session, poll_interval=30)
    runner = asyncio.create_task(worker.run())
    try:
        await asyncio.sleep(0.3)  # worker is now idle, waiting
        queued = await jobs.enqueue(queue, "test_sleep", {})
        await wait_for(lambda: queue.fetchval(
            "SELECT status = 'succeeded' FROM jobs WHERE id = $1", queued.job_id),
            timeout=10, what="NOTIFY to wake the worker")
    finally:
        worker.stop()
        await runner




async def test_purge_history_keeps_failed_jobs_and_recent_rows(queue, db_dsn, settings, http_session):
    from app.jobs.maintenance import PURGE_LOCK

    old_ok = await jobs.enqueue(queue, "test_sleep", {})
    old_failed = await jobs.enqueue(queue, "test_sleep", {})
    recent_ok = await jobs.enqueue(queue, "test_sleep", {})
    await queue.execute("UPDATE jobs SET status = 'succeeded', finished_at = now() - interval '40 days'"
                        " WHERE id = $1", old_ok.job_id)
    await queue.execute("UPDATE jobs SET status = 'failed', finished_at = now() - interval '40 days'"
                        " WHERE id = $1", old_failed.job_id)
    await queue.execute("UPDATE jobs SET status = 'succeeded', finished_at = now() WHERE id = $1",
                        recent_ok.job_id)
    await queue.execute(
        "INSERT INTO webhook_events (delivery_id, event, signature_valid, received_at) VALUES"
        " ('old', 'push', true, now() - interval '40 days'), ('new', 'push', true, now())")
    await queue.execute("INSERT INTO notification_keys (target, dedup_key, created_at) VALUES"
                        " ('slack', 'old', now() - interval '40 days'), ('slack', 'new', now())")
    purge = await jobs.enqueue(queue, "purge_history", {}, queueing_lock=PURGE_LOCK)
    worker = make_worker(queue, db_dsn, settings, http_session)
    assert await worker.run_one()
    row = await job(queue, purge.job_id)
    assert row["status"] == "succeeded", row["last_error"]
    assert row["result"] == {"jobs": 1, "webhook_events": 1, "notification_keys": 1}
    assert await queue.fetchval("SELECT array_agg(dedup_key) FROM notification_keys") == ["new"]
    remaining = {r["id"] for r in await queue.fetch("SELECT id FROM jobs")}
    assert old_ok.job_id not in remaining
    assert {old_failed.job_id, recent_ok.job_id} <= remaining
    assert [r["delivery_id"] for r in await queue.fetch("SELECT delivery_id FROM webhook_events")] == ["new"]
    # It queued its next run, an hour out.
    nxt = await queue.fetchrow("SELECT * FROM jobs WHERE queueing_lock = $1 AND status = 'todo'", PURGE_LOCK)
    assert nxt is not None and nxt["scheduled_at"] > row["finished_at"]


async def test_cli_refuses_a_negative_list_limit(db_dsn, monkeypatch, capsys):
    monkeypatch.setenv("PAO_DB_URL", db_dsn)
    with pytest.raises(SystemExit) as info:
        await asyncio.to_thread(cli_main, ["jobs", "list", "--limit", "-1"])
    assert info.value.code == 2
    assert "--limit" in capsys.readouterr().err


async def test_new_work_brings_a_backed_off_twin_forward(queue, db_dsn, settings, http_session):
    """A push arriving while its sync waits out a retry backoff must not wait that long too."""
    worker = make_worker(queue, db_dsn, settings, http_session)
    queued = await jobs.enqueue(queue, "test_flaky", {"fail_times": 1}, queueing_lock="repo:9")
    await queue.execute("UPDATE jobs SET scheduled_at = now() WHERE id = $1", queued.job_id)
    assert await worker.run_one()  # attempt 1 fails: backs off
    await queue.execute("UPDATE jobs SET scheduled_at = now() + interval '10 minutes' WHERE id = $1",
                        queued.job_id)
    again = await jobs.enqueue(queue, "test_flaky", {"fail_times": 1}, queueing_lock="repo:9")
    assert again.job_id == queued.job_id and not again.created
    due = await queue.fetchval("SELECT scheduled_at <= now() FROM jobs WHERE id = $1", queued.job_id)
    assert due, "the waiting job should be due now"
    assert await worker.run_one()
    assert (await job(queue, queued.job_id))["status"] == "succeeded"


async def test_enqueue_never_postpones_a_waiting_twin(queue):
    first = await jobs.enqueue(queue, "test_sleep", {}, queueing_lock="periodic:x", delay=60)
    later = await jobs.enqueue(queue, "test_sleep", {}, queueing_lock="periodic:x", delay=3600)
    assert later.job_id == first.job_id
    wait = await queue.fetchval("SELECT extract(epoch FROM scheduled_at - now()) FROM jobs WHERE id = $1",
                                first.job_id)
    assert 0 < wait <= 60
