"""Fixtures for service-request tests: the example catalog synced, tokens, an API client."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from app.api.auth import create_token
from app.requests.config import RequestSettings
from app.sync.engine import sync_repository
from app.sync.gitcache import GitCache
from app.sync.source import catalog_source
from app.web import create_app
from tests.conftest import with_settings
from tests.sync_helpers import CatalogRepo

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "catalog"
SECRET_KEY = Fernet.generate_key().decode()

# An item with every field type, a secret among them.
VAULT_APP = '''\
name: "vault-app"
version: "1.0.0"
description: "An app that needs a password"
owner: "platform-security-team"
presentation:
  fields:
    - {name: "app_name", type: "string", required: true, min_length: 3, max_length: 20,
       regexp: "^[a-z][a-z0-9-]*$"}
    - {name: "password", type: "secret", required: true, min_length: 8}
    - {name: "ratio", type: "number", min_value: 0.5, max_value: 2}
    - {name: "zones", type: "multiselect", oneof: ["a", "b", "c"], min_items: 1, max_items: 2,
       default: ["a"]}
    - {name: "extra", type: "json"}
    - {name: "debug", type: "boolean", default: false}
fulfillment:
  manual:
    system: "github"
    template:
      repository: "platform/requests"
      summary: "Set up {{ app_name }}"
      body: "Zones {{ zones | join(',') }}; password {{ password }}"
'''

SEED_003_BODY: dict[str, Any] = {
    "catalog_bundle": "full-stack-web-app",
    "version": "2.1.0",
    "bundle_parameters": {"solution_name": "customer-portal", "enable_ha": True},
    "item_parameters": {
        "eks-container-app": {"app_name": "customer-portal-api", "environment": "staging",
                              "replicas": 3, "app_type": "web-frontend"},
        "postgres-database": {"database_name": "customer_portal_db", "instance_class": "db.t3.medium",
                              "allocated_storage": 250, "backup_retention": 14},
        "redis-cache": {"enabled": True, "cache_size": "cache.t3.micro"},
        "application-monitoring": {"enabled": True},
    },
    "requester": {"user_id": "sarah-123", "team": "customer-experience", "email": "sarah@example.com"},
}


class RequestsApi:
    def __init__(self, client: Any, tokens: dict[str, str]):
        self.client = client
        self.tokens = tokens

    async def call(self, method: str, url: str, body: Any = None, *, who: str = "sarah",
                   headers: dict[str, str] | None = None) -> tuple[int, Any]:
        from tests.test_api_catalog import check_against_openapi

        resp = await self.client.request(method, url, json=body, headers={
            "Authorization": f"Bearer {self.tokens[who]}", **(headers or {})})
        data = await resp.json()
        check_against_openapi(method, url.split("?")[0], resp.status, data)
        return resp.status, data


async def sync_catalog(tmp_path: Path, settings: Any, pool: Any, runtime: Any,
                       extra: dict[str, str] | None = None) -> CatalogRepo:
    repo = CatalogRepo(tmp_path / "repo")
    shutil.copytree(EXAMPLES, repo.work / "catalog")
    for path, text in (extra or {}).items():
        repo.write(path, text)
    repo.commit_push("catalog")
    runtime.settings = with_settings(settings, repo_url=repo.url, extra={
        **settings.extra, "requests": RequestSettings(secret_key=SECRET_KEY, http_poll_interval=0.05)})
    source = catalog_source(runtime.settings)
    result = await sync_repository(pool, source, GitCache(source, source.cache_dir(settings.data_dir)), None)
    assert result.status == "completed", result.errors
    return repo


@pytest.fixture
async def catalog(tmp_path, settings, pool, runtime) -> CatalogRepo:
    return await sync_catalog(tmp_path, settings, pool, runtime,
                              {"catalog/security/vault-app.yaml": VAULT_APP})


@pytest.fixture
async def rapi(aiohttp_client, runtime, pool, catalog) -> RequestsApi:
    client = await aiohttp_client(create_app(runtime))
    tokens = {}
    for who, user, team, admin in (("sarah", "sarah-123", "customer-experience", False),
                                   ("tom", "tom-7", "customer-experience", False),
                                   ("bob", "bob-9", "payments", False),
                                   ("admin", "root", None, True)):
        _, tokens[who] = await create_token(pool, user_id=user, team=team, is_admin=admin,
                                            email=f"{user}@example.com")
    return RequestsApi(client, tokens)
