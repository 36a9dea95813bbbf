"""``pao serve`` and ``pao worker`` refuse to start on a resource the configuration names but
that cannot be used (database, listen address, data dir): one line naming the variable, no
traceback, no password."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


async def start_failure(*args: str, **variables: str) -> tuple[int, str]:
    """Exit code and output of ``pao ARGS`` with ``variables``, which must stop it at start-up."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAO_")}
    env.update({"PYTHONPATH": str(ROOT), **variables})
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app", *args, cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("command", [("serve",), ("worker",), ("migrate",)])
async def test_an_unreachable_database_is_named_without_its_password(command, tmp_path):
    url = f"postgresql://pao:db-passw0rd@127.0.0.1:{closed_port()}/pao"
    code, out = await start_failure(*command, PAO_DB_URL=url, PAO_DATA_DIR=str(tmp_path))
    assert code == 1
    assert "pao: PAO_DB_URL: cannot use the database at postgresql://***@127.0.0.1:" in out
    assert "Traceback" not in out and "db-passw0rd" not in out


async def test_a_listen_address_in_use_or_unknown_is_named(db_dsn, tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        common = {"PAO_DB_URL": db_dsn, "PAO_DATA_DIR": str(tmp_path), "PAO_WORKERS": "0"}
        code, out = await start_failure("serve", PAO_PORT=str(port), **common)
        assert code == 1 and "Traceback" not in out
        assert f"pao: PAO_HOST/PAO_PORT: cannot listen on 127.0.0.1:{port}" in out
        code, out = await start_failure("serve", PAO_HOST="x" * 300, **common)
        assert code == 1 and "Traceback" not in out and "pao: PAO_HOST/PAO_PORT" in out
        code, out = await start_failure("serve", PAO_PORT=str(closed_port()),
                                        PAO_METRICS_LISTEN=f"127.0.0.1:{port}", **common)
        assert code == 1 and "Traceback" not in out
        assert f"pao: PAO_METRICS_LISTEN: cannot listen on 127.0.0.1:{port}" in out


async def test_a_data_dir_that_cannot_be_created_is_named(db_dsn, tmp_path):
    (tmp_path / "file").write_text("not a directory")
    code, out = await start_failure("serve", PAO_DB_URL=db_dsn, PAO_PORT=str(closed_port()),
                                    PAO_DATA_DIR=str(tmp_path / "file" / "pao"))
    assert code == 1 and "Traceback" not in out
    assert f"pao: PAO_DATA_DIR: cannot use {tmp_path / 'file' / 'pao'}: Not a directory" in out
