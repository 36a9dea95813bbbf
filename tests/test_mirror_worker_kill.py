"""A real ``python -m app worker`` killed mid-push: the job is retried to completion,
the dead worker's git helpers are stopped first, and no token shows in ``ps`` or in
the worker's logs."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

from app.git.orphans import find_orphans
from app.procinfo import start_ticks
from tests.mirror_support import ONEDEV_TOKEN, github_refs, heads_and_tags, make_history

ROOT = Path(__file__).resolve().parent.parent


async def start_worker(env_vars: dict[str, str], log: Path) -> asyncio.subprocess.Process:
    with log.open("ab") as out:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "app", "worker", cwd=ROOT, env=env_vars,
            stdout=out, stderr=out, start_new_session=True)


async def stop(proc: asyncio.subprocess.Process, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)  # the worker (git runs in process groups of its own)
    await asyncio.wait_for(proc.wait(), 30)


async def test_killed_worker_mid_push_is_retried_to_completion(make_env, db_dsn, tmp_path):
    env = await make_env(mode="token", worker=False)
    gh, onedev = env.gh, env.onedev
    repo = make_history(gh, "octo/big")
    repo.commit({"blob.bin": os.urandom(2 * 1024 * 1024)})
    onedev.push_delay = 60.0  # hold the push until the worker is dead
    status, _ = await env.deliver("watch", gh.watch_payload(repo, "alice"))
    assert status == 202

    base = {k: v for k, v in os.environ.items() if not k.startswith("PAO_")}
    env_vars = {
        **base,
        "PAO_DB_URL": db_dsn, "PAO_DATA_DIR": str(tmp_path / "worker-data"),
        "PAO_GITHUB_API_URL": gh.url, "PAO_REPO_TOKEN": gh.personal_token,
        "PAO_ONEDEV_URL": onedev.url, "PAO_ONEDEV_TOKEN": ONEDEV_TOKEN,
        "PAO_WORKERS": "1", "PAO_JOB_POLL_INTERVAL": "0.2", "PAO_JOB_STALL_TIMEOUT": "2",
        "PAO_LOG_FORMAT": "json",
    }
    log1, log2 = tmp_path / "worker1.log", tmp_path / "worker2.log"
    first = await start_worker(env_vars, log1)
    try:
        await asyncio.wait_for(onedev.push_started.wait(), 60)
        ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
        assert "git" in ps and "push" in ps  # the push is running right now...
        for secret in (ONEDEV_TOKEN, gh.personal_token):
            assert secret not in ps  # ...and no token is in anyone's argv
    finally:
        await stop(first, signal.SIGKILL)
    # git died with its worker, but not the helpers it started (git-remote-http,
    # send-pack): they would finish the push behind the retried job's back.
    orphans = await asyncio.to_thread(find_orphans)
    assert orphans, "expected the push's helpers to outlive the killed worker"
    row = await env.mirror_row("octo/big")
    assert row["sync_status"] == "in_progress"

    onedev.push_started.clear()
    second = await start_worker(env_vars, log2)
    try:
        # Lift the delay once the retry pushes: a surviving helper would then push too.
        await asyncio.wait_for(onedev.push_started.wait(), 90)
        onedev.push_delay = 0.0
        row = await env.wait_status("octo/big", "completed", timeout=90)
    finally:
        await stop(second, signal.SIGTERM)
    # The retry stopped them before pushing again.
    assert [(pid, start) for pid, start in orphans if start_ticks(pid) == start] == []
    assert onedev.refs("octo-big") == heads_and_tags(github_refs(repo))
    received = onedev.received("octo-big")
    assert sorted(received) == sorted(set(received))  # each ref pushed once: by the retry
    job = await env.pool.fetchrow("SELECT * FROM jobs WHERE task = 'mirror.sync'")
    assert job["status"] == "succeeded" and job["attempts"] == 2
    outcomes = [r["outcome"] for r in await env.pool.fetch(
        "SELECT outcome FROM job_attempts WHERE job_id = $1 ORDER BY attempt", job["id"])]
    assert outcomes == ["stalled", "succeeded"]
    logs = log1.read_text() + log2.read_text()
    assert "sync_initiated" in logs and "sync_completed" in logs
    for secret in (ONEDEV_TOKEN, gh.personal_token):
        assert secret not in logs


async def test_killed_worker_that_never_learnt_its_new_projects_id_reuses_that_project(
        make_env, db_dsn, tmp_path):
    """OneDev created the project, the worker died before the answer: the retry finds the project
    PAO made (its description names the repository) instead of making a second, suffixed one."""
    env = await make_env(mode="token", worker=False)
    gh, onedev = env.gh, env.onedev
    repo = make_history(gh, "octo/fresh")
    onedev.create_delay = 60.0
    status, _ = await env.deliver("watch", gh.watch_payload(repo, "alice"))
    assert status == 202
    env_vars = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PAO_")},
        "PAO_DB_URL": db_dsn, "PAO_DATA_DIR": str(tmp_path / "worker-data"),
        "PAO_GITHUB_API_URL": gh.url, "PAO_REPO_TOKEN": gh.personal_token,
        "PAO_ONEDEV_URL": onedev.url, "PAO_ONEDEV_TOKEN": ONEDEV_TOKEN,
        "PAO_WORKERS": "1", "PAO_JOB_POLL_INTERVAL": "0.2", "PAO_JOB_STALL_TIMEOUT": "2",
    }
    first = await start_worker(env_vars, tmp_path / "worker1.log")
    try:
        await asyncio.wait_for(onedev.project_created.wait(), 60)
    finally:
        await stop(first, signal.SIGKILL)
    onedev.create_delay = 0.0
    row = await env.mirror_row("octo/fresh")
    assert row["onedev_project_id"] is None  # the crash left no record of the project
    second = await start_worker(env_vars, tmp_path / "worker2.log")
    try:
        row = await env.wait_status("octo/fresh", "completed", timeout=90)
    finally:
        await stop(second, signal.SIGTERM)
    # The end state of an uncrashed run: one project, under the plain name, holding every ref.
    assert [onedev.path_of(p) for p in onedev.projects.values()] == ["octo-fresh"]
    assert row["onedev_project_path"] == "octo-fresh" and not row["onedev_adopted"]
    assert onedev.refs("octo-fresh") == heads_and_tags(github_refs(repo))
    job = await env.pool.fetchrow("SELECT * FROM jobs WHERE task = 'mirror.sync'")
    assert job["status"] == "succeeded" and job["attempts"] == 2
