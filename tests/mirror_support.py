"""Fixtures and helpers shared by the mirror tests: GitHub and OneDev fakes, PAO wired to both."""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from app.config import Settings
from app.github import GitHubClients
from app.mirror.config import MirrorSettings
from app.service import Runtime, make_worker
from app.web import create_app
from tests.fakes.github import FakeGitHub, FakeRepo
from tests.fakes.onedev import OneDevFake
from tests.support import wait_for, webhook

ONEDEV_TOKEN = "onedev-secret-token"
WEBHOOK_URL = "/api/v1/webhooks/github"


@pytest.fixture
def gh(github_fake: FakeGitHub) -> FakeGitHub:
    """The GitHub fake (it also checks PAO's requests against GitHub's OpenAPI description)."""
    return github_fake


@pytest.fixture
async def onedev(aiohttp_server, tmp_path: Path) -> OneDevFake:
    fake = OneDevFake(tmp_path / "onedev", tokens={ONEDEV_TOKEN: True})
    server = await aiohttp_server(fake.app())
    fake.url = str(server.make_url("")).rstrip("/")  # type: ignore[attr-defined]
    return fake


def mirror_settings_for(onedev: OneDevFake, **changes: Any) -> MirrorSettings:
    return dataclasses.replace(MirrorSettings(onedev_url=onedev.url, onedev_token=ONEDEV_TOKEN),
                               **changes)


@dataclass
class Env:
    gh: FakeGitHub
    onedev: OneDevFake
    runtime: Runtime
    pool: asyncpg.Pool
    client: Any
    worker: Any = None
    worker_task: asyncio.Task | None = None

    async def deliver(self, event: str, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        body, headers = webhook(event, payload)
        resp = await self.client.post(WEBHOOK_URL, data=body, headers=headers)
        return resp.status, await resp.json()

    def start_worker(self) -> None:
        self.worker = make_worker(self.runtime, concurrency=2)
        self.worker_task = asyncio.create_task(self.worker.run())

    async def stop_worker(self) -> None:
        if self.worker is not None and self.worker_task is not None:
            self.worker.stop()
            await self.worker_task
            self.worker = self.worker_task = None

    async def mirror_row(self, full_name: str) -> asyncpg.Record | None:
        return await self.pool.fetchrow(
            "SELECT * FROM repositories WHERE github_full_name = $1", full_name)

    async def wait_status(self, full_name: str, status: str, timeout: float = 30.0,
                          successes: int = 1) -> asyncpg.Record:
        async def check() -> asyncpg.Record | None:
            row = await self.mirror_row(full_name)
            if row is None or row["sync_status"] != status:
                return None
            if status == "completed":
                done = await self.pool.fetchval(
                    "SELECT count(*) FROM sync_logs WHERE repository_id = $1 AND status = 'success'",
                    row["id"])
                if done < successes:
                    return None
            return row
        return await wait_for(check, timeout=timeout, what=f"{full_name} {status}")

    async def logs(self, full_name: str) -> list[asyncpg.Record]:
        return await self.pool.fetch(
            """SELECT l.* FROM sync_logs l JOIN repositories r ON r.id = l.repository_id
                WHERE r.github_full_name = $1 ORDER BY l.id""", full_name)


def make_env_settings(settings: Settings, gh: FakeGitHub, onedev: OneDevFake, *, mode: str = "app",
                      **mirror: Any) -> Settings:
    return dataclasses.replace(settings, **gh.pao_settings(mode),
                               extra={**settings.extra,
                                      "mirror": mirror_settings_for(onedev, **mirror)})


@pytest.fixture
async def make_env(aiohttp_client, settings: Settings, pool: asyncpg.Pool, db_dsn: str,
                   http_session: aiohttp.ClientSession, gh: FakeGitHub, onedev: OneDevFake,
                   ) -> AsyncIterator[Any]:
    envs: list[Env] = []

    async def build(*, mode: str = "app", worker: bool = True, **mirror: Any) -> Env:
        s = make_env_settings(settings, gh, onedev, mode=mode, **mirror)
        runtime = Runtime(s, db_dsn, pool, http_session, GitHubClients.from_settings(s, http_session))
        client = await aiohttp_client(create_app(runtime))
        env = Env(gh, onedev, runtime, pool, client)
        envs.append(env)
        if worker:
            env.start_worker()
        return env

    yield build
    for env in envs:
        await env.stop_worker()


def github_refs(repo: FakeRepo) -> dict[str, str]:
    """Every ref of the GitHub repository."""
    out = repo.git("for-each-ref", "--format=%(objectname) %(refname)")
    return {ref: sha for sha, ref in (line.split(" ", 1) for line in out.splitlines())}


def heads_and_tags(refs: dict[str, str]) -> dict[str, str]:
    return {r: s for r, s in refs.items() if r.startswith(("refs/heads/", "refs/tags/"))}


def make_history(gh: FakeGitHub, full_name: str, *, private: bool = False, installation: Any = None,
                 default_branch: str = "trunk") -> FakeRepo:
    """A repository with several branches, an annotated and a light tag, and a pull ref."""
    repo = gh.create_repo(full_name, private=private, installation=installation,
                          default_branch=default_branch)
    for i in range(3):
        repo.commit({"README.md": f"hello {i}\n", f"src/{i}.txt": "x" * 100})
    repo.tag("v1.0", message="release 1.0")
    repo.commit({"aaa.txt": "first alphabetically\n"}, branch="aaa", base=default_branch)
    repo.commit({"feature.txt": "feature\n"}, branch="feature/x", base=default_branch)
    repo.tag("light", ref="feature/x")
    pr = repo.commit({"pr.txt": "pull\n"}, branch="tmp-pr", base=default_branch)
    repo.set_ref("refs/pull/1/head", pr)
    repo.set_ref("tmp-pr", None)
    return repo


def project_head(onedev: OneDevFake, path: str) -> str:
    return subprocess.run(["git", "symbolic-ref", "HEAD"], cwd=onedev.repo_dir(path),
                          capture_output=True, text=True, check=True).stdout.strip()
