"""Helpers for the console tests: a runtime whose catalog holds the examples."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from app.config import Settings
from app.console.config import ConsoleSettings
from app.git.catalog import GitCache
from app.github import GitHubClients
from app.sync.engine import sync_repository
from app.sync.source import catalog_source
from tests.conftest import with_settings
from tests.sync_helpers import CatalogRepo

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "catalog"


async def sync_examples(runtime: Any, tmp_path: Path, extra_files: dict[str, str] | None = None,
                        **settings_changes: Any) -> CatalogRepo:
    """Commit examples/catalog (and ``extra_files``, path -> text) to a new repository and sync it
    into the runtime's database."""
    repo = CatalogRepo(tmp_path / "catalog-repo")
    shutil.copytree(EXAMPLES, repo.work / "catalog")
    for path, text in (extra_files or {}).items():
        repo.write(path, text)
    repo.commit_push("catalog")
    runtime.settings = with_settings(runtime.settings, repo_url=repo.url, **settings_changes)
    source = catalog_source(runtime.settings)
    result = await sync_repository(runtime.pool, source,
                                   GitCache(source, source.cache_dir(runtime.settings.data_dir)), None)
    assert result.status == "completed", result.errors
    return repo


async def resync(runtime: Any) -> Any:
    """Sync the runtime's catalog repository again (after a test committed to it)."""
    source = catalog_source(runtime.settings)
    return await sync_repository(runtime.pool, source,
                                 GitCache(source, source.cache_dir(runtime.settings.data_dir)), None)


SECRET_KEY = "test-secret-key-0123456789-abcdefghij"


def with_console(settings: Settings, **console: Any) -> Settings:
    """``settings`` with console settings (PAO_SECRET_KEY set unless given)."""
    console.setdefault("secret_key", SECRET_KEY)
    return with_settings(settings, extra={**settings.extra, "console": ConsoleSettings(**console)})


def point_at_github(runtime: Any, github_fake: Any, **console: Any) -> None:
    """Give ``runtime`` console settings and GitHub clients that talk to ``github_fake``."""
    runtime.settings = with_console(with_settings(runtime.settings, github_api_url=github_fake.url),
                                    github_url=github_fake.url, **console)
    runtime.github = GitHubClients.from_settings(runtime.settings, runtime.http)


def sign_in(client: Any, runtime: Any, login: str = "sarah", team: str | None = "customer-experience",
            *, admin: bool = False) -> None:
    """Give ``client`` (an aiohttp test client) the session cookie sign-in would have set."""
    from app.console.session import SESSION_COOKIE, new_identity, session_cookie_value

    teams = [f"acme/{team}"] if team else []
    value = session_cookie_value(runtime.settings, new_identity(login, team, teams, admin))
    client.session.cookie_jar.update_cookies({SESSION_COOKIE: value}, client.make_url("/"))
