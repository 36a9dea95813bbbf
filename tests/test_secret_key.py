"""The secret key without ``PAO_SECRET_KEY``: generated once into the data dir, shared, never shown."""

from __future__ import annotations

import asyncio
import logging
import stat
import sys
from pathlib import Path

import pytest

from app import service
from app.config import ConfigError, Settings
from app.console.config import console_settings
from app.requests.config import request_settings
from app.secret_key import KEY_FILE, load_or_create, with_secret_key
from app.web import create_app

ROOT = Path(__file__).resolve().parent.parent


def test_the_first_start_creates_a_private_key_file_and_later_starts_reuse_it(tmp_path):
    data_dir = tmp_path / "data"
    key, created = load_or_create(data_dir)
    path = data_dir / KEY_FILE
    assert created and len(key) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again, created_again = load_or_create(data_dir)
    assert (again, created_again) == (key, False)
    assert sorted(p.name for p in data_dir.iterdir()) == [KEY_FILE]  # no temporary file left


async def test_processes_starting_together_agree_on_one_key(tmp_path):
    data_dir = tmp_path / "shared"
    script = ("import sys; from pathlib import Path; from app.secret_key import load_or_create; "
              "print(load_or_create(Path(sys.argv[1]))[0])")
    procs = [await asyncio.create_subprocess_exec(sys.executable, "-c", script, str(data_dir), cwd=ROOT,
                                                  stdout=asyncio.subprocess.PIPE)
             for _ in range(8)]
    keys = {(await p.communicate())[0].decode().strip() for p in procs}
    assert all(p.returncode == 0 for p in procs)
    assert keys == {(data_dir / KEY_FILE).read_text().strip()}
    assert sorted(p.name for p in data_dir.iterdir()) == [KEY_FILE]


def test_the_key_is_never_written_to_the_log(tmp_path, caplog):
    settings = Settings.from_env({"PAO_DATA_DIR": str(tmp_path / "data")})
    with caplog.at_level(logging.INFO, logger="app.secret_key"):
        resolved = with_secret_key(settings)
    key = (tmp_path / "data" / KEY_FILE).read_text().strip()
    assert console_settings(resolved).secret_key == key == request_settings(resolved).secret_key
    assert "generated into" in caplog.text and str(tmp_path / "data" / KEY_FILE) in caplog.text
    assert key not in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="app.secret_key"):
        with_secret_key(settings)
    assert "read from" in caplog.text


def test_an_explicit_secret_key_wins_and_no_file_is_made(tmp_path, caplog):
    explicit = "an-explicit-secret-key-0123456789-abcdef"
    settings = Settings.from_env({"PAO_DATA_DIR": str(tmp_path / "data"), "PAO_SECRET_KEY": explicit})
    with caplog.at_level(logging.INFO, logger="app.secret_key"):
        resolved = with_secret_key(settings)
    assert console_settings(resolved).secret_key == explicit == request_settings(resolved).secret_key
    assert "from PAO_SECRET_KEY" in caplog.text and explicit not in caplog.text
    assert not (tmp_path / "data").exists()


def test_a_damaged_key_file_is_an_error_naming_it_never_replaced(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / KEY_FILE).write_text("short\n")
    with pytest.raises(ConfigError) as info:
        load_or_create(data_dir)
    assert str(data_dir / KEY_FILE) in str(info.value) and "PAO_SECRET_KEY" in str(info.value)
    assert (data_dir / KEY_FILE).read_text() == "short\n"


def test_a_key_file_pao_cannot_read_or_create_is_an_error_naming_it(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (tmp_path / "elsewhere").write_text("k" * 64)
    (data_dir / KEY_FILE).symlink_to(tmp_path / "elsewhere")  # never followed
    with pytest.raises(ConfigError) as info:
        load_or_create(data_dir)
    assert str(data_dir / KEY_FILE) in str(info.value)
    blocked = tmp_path / "not-a-dir"  # PAO_DATA_DIR naming a file
    blocked.write_text("")
    with pytest.raises(ConfigError) as info:
        load_or_create(blocked)
    assert str(blocked) in str(info.value) and "Not a directory" in str(info.value)


async def test_a_first_start_without_a_secret_key_opens_setup(db_dsn, tmp_path, aiohttp_client):
    settings = Settings.from_env({"PAO_DB_URL": db_dsn, "PAO_DATA_DIR": str(tmp_path / "data")})
    async with service.runtime(settings) as rt:
        pao = await aiohttp_client(create_app(rt))
        resp = await pao.get("/setup")
        assert resp.status == 200 and "set-up token" in (await resp.text()).lower()
    assert (tmp_path / "data" / KEY_FILE).exists()
