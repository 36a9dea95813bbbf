"""pytest fixtures for the GitHub fake (loaded from tests/conftest.py via ``pytest_plugins``).

- ``github_app_key`` (session): the test App's ``AppKey`` (id, PEM key pair).
- ``github_fake``: a started ``FakeGitHub`` on 127.0.0.1 (``.url`` is both the API base
  and the git host). At teardown it fails the test if PAO sent a request GitHub's
  OpenAPI description rejects (or the fake answered off-spec).
- ``github_settings``: the ``settings`` fixture pointed at the fake in App mode.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from app.config import Settings
from tests.fakes.github import AppKey, FakeGitHub


@pytest.fixture(scope="session")
def github_app_key() -> AppKey:
    return AppKey.generate()


@pytest.fixture
async def github_fake(aiohttp_server, github_app_key: AppKey, tmp_path: Path) -> AsyncIterator[FakeGitHub]:
    fake = FakeGitHub(tmp_path / "github", github_app_key)
    server = await aiohttp_server(fake.app)
    fake.url = str(server.make_url("")).rstrip("/")
    yield fake
    fake.assert_openapi_clean()


@pytest.fixture
def github_settings(settings: Settings, github_fake: FakeGitHub) -> Settings:
    return dataclasses.replace(settings, **github_fake.pao_settings("app"))
