"""The catalog and sync REST API over a catalog synced from examples/catalog, checked against OpenAPI."""

from __future__ import annotations

import asyncio
import base64
import re
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from app.api.auth import create_token
from app.api.openapi import DOCUMENT
from app.git.catalog import GitCache
from app.sync.engine import sync_repository
from app.sync.source import catalog_source
from app.web import create_app
from tests.conftest import with_settings
from tests.support import wait_for
from tests.sync_helpers import CatalogRepo, item_yaml

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "catalog"

# Seed 003 step 1 and step 2 (bundle) and step 3 (EKS item), as the portal sees them.
SEED_003_BUNDLE_SUMMARY = {
    "name": "full-stack-web-app", "version": "2.1.0",
    "description": "Complete web application stack with database and monitoring",
    "owner": "platform-solutions-team", "tags": ["web-app", "full-stack", "solution"],
    "href": "/api/v1/catalog/bundles/full-stack-web-app",
}
SEED_003_BUNDLE = {
    "name": "full-stack-web-app", "version": "2.1.0",
    "description": "Complete web application stack with database and monitoring",
    "owner": "platform-solutions-team", "tags": ["web-app", "full-stack", "solution"],
    "bundle": {
        "required_items": [
            {"catalog_item": "eks-container-app", "version": ">=1.2.0",
             "parameters": {"app_type": "web-frontend"}},
            {"catalog_item": "postgres-database", "version": ">=2.0.0"},
        ],
        "optional_items": [
            {"catalog_item": "redis-cache", "version": ">=1.1.0", "default_enabled": False},
            {"catalog_item": "application-monitoring", "version": ">=1.0.0", "default_enabled": True},
        ],
    },
    "presentation": {"bundle_fields": [
        {"name": "solution_name", "type": "string", "required": True,
         "help_text": "Name for this solution deployment"},
        {"name": "enable_ha", "type": "boolean", "default": False,
         "help_text": "Enable high availability mode"},
    ]},
}
SEED_003_EKS = {
    "name": "eks-container-app", "version": "1.2.0",
    "description": "Managed Kubernetes application deployment", "owner": "platform-compute-team",
    "tags": ["containers", "kubernetes", "compute"],
    "presentation": {"fields": [
        {"name": "app_name", "type": "string", "required": True, "max_length": 50, "min_length": 3,
         "regexp": "^[a-z][a-z0-9-]*$",
         "help_text": "Application name (lowercase alphanumeric with hyphens)"},
        {"name": "environment", "type": "selection", "oneof": ["dev", "staging", "prod"],
         "required": True, "help_text": "Target deployment environment"},
        {"name": "replicas", "type": "integer", "min_value": 1, "max_value": 10, "default": 2,
         "help_text": "Number of replicas to deploy"},
    ]},
}


def check_against_openapi(method: str, path: str, status: int, body: Any) -> None:
    """Validate a real response body against the schema the OpenAPI document gives it."""
    for template, ops in DOCUMENT["paths"].items():
        pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"
        if re.match(pattern, path) and method.lower() in ops:
            response = ops[method.lower()]["responses"][str(status)]
            schema = response["content"]["application/json"]["schema"]
            jsonschema.validate(body, {**schema, "components": DOCUMENT["components"]})
            return
    raise AssertionError(f"{method} {path} is not in the OpenAPI document")


class Api:
    def __init__(self, client: Any, token: str):
        self.client = client
        self.token = token

    async def call(self, method: str, url: str, token: str | None = None) -> tuple[int, Any]:
        resp = await self.client.request(method, url, headers={
            "Authorization": f"Bearer {token or self.token}"})
        body = await resp.json()
        check_against_openapi(method, url.split("?")[0], resp.status, body)
        return resp.status, body

    async def get(self, url: str, token: str | None = None) -> tuple[int, Any]:
        return await self.call("GET", url, token)


@pytest.fixture
async def synced(tmp_path, settings, pool, runtime):
    repo = CatalogRepo(tmp_path / "repo")
    shutil.copytree(EXAMPLES, repo.work / "catalog")
    # More items so pages and filters have something to work on.
    for i in range(7):
        repo.write(f"catalog/extra/extra-{i}.yaml", item_yaml(f"extra-{i}", tags=("extra", f"n{i % 2}"),
                                                           owner="extras-team"))
    repo.commit_push("catalog")
    runtime.settings = with_settings(settings, repo_url=repo.url)
    source = catalog_source(runtime.settings)
    cache = GitCache(source, source.cache_dir(settings.data_dir))
    result = await sync_repository(pool, source, cache, None)
    assert result.status == "completed", result.errors
    repo.remove("catalog/extra/extra-6.yaml")
    repo.commit_push("drop one")
    await sync_repository(pool, source, cache, None)
    return repo


@pytest.fixture
async def api(aiohttp_client, runtime, pool, synced):
    client = await aiohttp_client(create_app(runtime))
    _, token = await create_token(pool, user_id="sarah-123", team="customer-experience")
    return Api(client, token)


async def test_seed_003_bundle_list_and_detail(api):
    status, body = await api.get("/api/v1/catalog/bundles?tags=web-app")
    assert status == 200 and body["pagination"] == {"next_cursor": None, "has_more": False}
    [bundle] = body["bundles"]
    assert {k: bundle[k] for k in SEED_003_BUNDLE_SUMMARY} == SEED_003_BUNDLE_SUMMARY
    status, body = await api.get("/api/v1/catalog/bundles/full-stack-web-app")
    assert {k: body[k] for k in SEED_003_BUNDLE} == SEED_003_BUNDLE
    assert body["display_name"] == "Full Stack Web Application"
    assert body["source_file_path"] == "catalog/bundles/full-stack-web-app.yaml"


async def test_seed_003_item_detail(api):
    status, body = await api.get("/api/v1/catalog/items/eks-container-app")
    assert status == 200
    header = [k for k in SEED_003_EKS if k != "presentation"]
    assert {k: body[k] for k in header} == {k: SEED_003_EKS[k] for k in header}
    # The example adds an app_type field (the bundle sets it); the seed's fields come first, as shown.
    seed_fields = SEED_003_EKS["presentation"]["fields"]
    assert body["presentation"]["fields"][:len(seed_fields)] == seed_fields
    assert body["category"] == "compute" and body["fulfillment"] is not None
    assert body["updated_at"] and body["is_active"] is True


async def test_filters(api):
    async def names(query: str) -> list[str]:
        status, body = await api.get(f"/api/v1/catalog/items?{query}")
        assert status == 200
        return [i["name"] for i in body["items"]]

    assert await names("tags=database,storage") == ["mysql-database", "postgres-database"]
    assert await names("tags=database&tags=mysql") == ["mysql-database"]
    assert await names("owner=platform-data-team") == ["mysql-database", "postgres-database", "redis-cache"]
    assert await names("category=compute") == ["eks-container-app"]
    assert await names("q=KUBERNETES") == ["eks-container-app"]  # a tag, any case
    assert await names("q=postgresql") == ["postgres-database"]  # the description
    assert await names("q=100%25") == []  # LIKE wildcards are literal
    assert "extra-6" not in await names("owner=extras-team")
    assert "extra-6" in await names("owner=extras-team&include_inactive=true")


async def test_cursor_pages_cover_everything_once(api):
    seen: list[str] = []
    url = "/api/v1/catalog/items?limit=3"
    pages = 0
    while True:
        status, body = await api.get(url)
        assert status == 200 and len(body["items"]) <= 3
        seen += [i["name"] for i in body["items"]]
        pages += 1
        if not body["pagination"]["has_more"]:
            assert body["pagination"]["next_cursor"] is None
            break
        url = f"/api/v1/catalog/items?limit=3&cursor={body['pagination']['next_cursor']}"
    status, everything = await api.get("/api/v1/catalog/items?limit=200")
    assert seen == [i["name"] for i in everything["items"]] and len(seen) == 11 and pages == 4
    cursor = url.split("cursor=")[1]
    status, body = await api.get(f"/api/v1/catalog/items?limit=3&owner=x&cursor={cursor}")
    assert status == 400 and body["parameter"] == "cursor"


@pytest.mark.parametrize("query,parameter", [
    ("limit=0", "limit"), ("limit=201", "limit"), ("limit=ten", "limit"),
    ("cursor=not-a-cursor", "cursor"), ("include_inactive=maybe", "include_inactive"),
    ("colour=blue", "colour"), ("owner=a&owner=b", "owner"),
    # Base64 of deeply nested JSON: json.loads raised RecursionError, a 500.
    ("cursor=" + base64.urlsafe_b64encode(b"[" * 2500 + b"]" * 2500).decode(), "cursor"),
])
async def test_bad_parameters_are_400_naming_the_parameter(api, query, parameter):
    status, body = await api.get(f"/api/v1/catalog/items?{query}")
    assert status == 400
    assert body["error"] == "invalid parameter" and body["parameter"] == parameter
    assert body["detail"].startswith(parameter)


def _cursor_after(after: str) -> str:
    """A well-formed cursor for the unfiltered list whose last name is ``after``."""
    from multidict import MultiDict

    from app.api.params import encode_cursor, parse_list_query
    return encode_cursor(after, parse_list_query(MultiDict()).fingerprint())


@pytest.mark.parametrize("query,parameter", [
    ("q=%00", "q"), ("owner=a%00b", "owner"), ("category=%00", "category"), ("tags=db,%00", "tags"),
    (f"cursor={_cursor_after(chr(0))}", "cursor"), (f"cursor={_cursor_after(chr(0xD800))}", "cursor"),
])
async def test_text_postgres_cannot_hold_is_a_400_not_a_500(api, query, parameter):
    status, body = await api.get(f"/api/v1/catalog/items?{query}")
    assert (status, body["parameter"]) == (400, parameter)


async def test_odd_names_and_run_ids_are_client_errors(api):
    status, body = await api.get("/api/v1/catalog/items/a%00b")
    assert status == 400 and body["parameter"] == "name"
    assert (await api.get("/api/v1/catalog/bundles/%E2%98%83"))[0] == 404  # unicode: just unknown
    status, body = await api.get("/api/v1/sync/runs/%C2%B2")  # '²' is a digit to str.isdigit
    assert status == 400 and "run_id" in body["detail"]


async def test_unknown_and_inactive_are_404(api):
    status, body = await api.get("/api/v1/catalog/items/no-such-thing")
    assert status == 404 and "no-such-thing" in body["detail"]
    assert (await api.get("/api/v1/catalog/items/extra-6"))[0] == 404
    assert (await api.get("/api/v1/catalog/items/extra-6?include_inactive=true"))[0] == 200
    assert (await api.get("/api/v1/catalog/bundles/mysql-database"))[0] == 404


async def test_tokens_are_required_and_sync_needs_admin(api, pool):
    resp = await api.client.get("/api/v1/catalog/items")
    assert resp.status == 401
    check_against_openapi("GET", "/api/v1/catalog/items", 401, await resp.json())
    status, body = await api.call("POST", "/api/v1/sync")
    assert status == 403
    _, admin = await create_token(pool, user_id="mike", is_admin=True)
    status, body = await api.call("POST", "/api/v1/sync", token=admin)
    assert status == 202
    job = await pool.fetchrow("SELECT task, args, status FROM jobs WHERE id = $1", body["job_id"])
    assert (job["task"], job["args"]["full"], job["args"]["triggered_by"]) == ("sync_catalog", True, "manual")
    # A second request while that one waits returns the same job.
    assert (await api.call("POST", "/api/v1/sync", token=admin))[1]["job_id"] == body["job_id"]


async def test_forcing_a_sync_upgrades_a_waiting_push_sync_to_a_full_reconcile(api, pool, runtime):
    from app.sync.source import catalog_source
    from app.sync.tasks import queue_sync

    source = catalog_source(runtime.settings)
    waiting = await queue_sync(pool, source, triggered_by="webhook")
    _, admin = await create_token(pool, user_id="mike", is_admin=True)
    status, body = await api.call("POST", "/api/v1/sync", token=admin)
    assert status == 202 and body["job_id"] == waiting
    args = await pool.fetchval("SELECT args FROM jobs WHERE id = $1", waiting)
    assert (args["full"], args["triggered_by"]) == (True, "manual")


async def test_sync_status_and_runs(api):
    status, body = await api.get("/api/v1/sync/status")
    assert status == 200 and len(body["recent_runs"]) == 2
    assert body["last_processed_sha"] == body["recent_runs"][0]["to_sha"]
    latest = body["recent_runs"][0]
    assert (latest["mode"], latest["items_removed"], latest["files_changed"]) == ("incremental", 1, 1)
    status, run = await api.get(f"/api/v1/sync/runs/{latest['id']}")
    assert status == 200 and run == latest
    assert (await api.get("/api/v1/sync/runs/99999"))[0] == 404
    status, body = await api.get("/api/v1/sync/runs/abc")
    assert status == 400 and "run_id" in body["detail"]


async def test_openapi_document_is_public_and_valid(api):
    resp = await api.client.get("/api/v1/openapi.json")
    assert resp.status == 200
    doc = await resp.json()
    assert doc["openapi"].startswith("3.1") and "/api/v1/catalog/items" in doc["paths"]
    for schema in doc["components"]["schemas"].values():
        jsonschema.Draft202012Validator.check_schema(schema)


def test_openapi_document_describes_exactly_the_routes_served():
    import importlib

    from app.web import ROUTE_MODULES

    served = {(r.method.lower(), r.path) for m in ROUTE_MODULES
              for r in importlib.import_module(m).routes if r.path.startswith("/api/")}
    documented = {(method, path) for path, ops in DOCUMENT["paths"].items() for method in ops}
    assert served == documented


async def test_a_forced_sync_is_not_lost_when_the_waiting_sync_starts_meanwhile(pool, settings, tmp_path):
    from app.sync.tasks import queue_sync

    source = catalog_source(with_settings(settings, repo_url=str(tmp_path / "catalog")))
    waiting = await queue_sync(pool, source, triggered_by="webhook")
    async with pool.acquire() as worker_conn:
        # A worker claims the waiting push sync just as the forced one is being queued.
        claim = worker_conn.transaction()
        await claim.start()
        await worker_conn.execute("SELECT 1 FROM jobs WHERE id = $1 FOR UPDATE", waiting)
        forced = asyncio.create_task(queue_sync(pool, source, triggered_by="manual", full=True))

        async def blocked() -> bool:
            return await pool.fetchval("SELECT count(*) FROM pg_locks WHERE NOT granted") > 0
        await wait_for(blocked, what="the forced sync's upgrade to wait for the row")
        await worker_conn.execute(
            "UPDATE jobs SET status = 'doing', worker_id = 'w1', started_at = now(),"
            " heartbeat_at = now(), attempts = 1 WHERE id = $1", waiting)
        await claim.commit()
        job_id = await forced
    # The running job was queued as an incremental sync; the full reconcile must still come.
    job = await pool.fetchrow("SELECT status, args FROM jobs WHERE id = $1", job_id)
    assert job_id != waiting and job["status"] == "todo" and job["args"]["full"] is True


async def test_a_file_that_lost_its_name_is_listed_until_head_is_fixed(api, synced, runtime, pool, settings):
    # The sync recorded a duplicate name as 'duplicate-name' at 1:1 while pao-cli validate
    # said PAO040 at the name, and only the run that saw it listed the file.
    from app.catalog.parse import parse_catalog_file, validate_catalog

    source = catalog_source(runtime.settings)
    cache = GitCache(source, source.cache_dir(settings.data_dir))
    dup = "catalog/zz/again.yaml"
    text = "# the same name as extra-0\n" + item_yaml("extra-0", "9.9.9")
    synced.write(dup, text)
    synced.commit_push("a second extra-0")
    run = await sync_repository(pool, source, cache, None)
    owner = "catalog/extra/extra-0.yaml"
    files = {p: parse_catalog_file(p, (synced.work / p).read_bytes()) for p in (owner, dup)}
    [expected] = validate_catalog(files)
    [error] = run.errors
    assert error == expected and (error.code, error.line, error.col) == ("PAO040", 2, 7)

    async def files_with_errors() -> list[dict[str, str]]:
        status, body = await api.get("/api/v1/sync/status")
        assert status == 200
        return body["files_with_errors"]

    assert await files_with_errors() == [{"path": dup, "message": expected.message}]
    synced.write("catalog/zz/other.yaml", item_yaml("other"))
    synced.commit_push("an unrelated change")
    run = await sync_repository(pool, source, cache, None)
    assert run.errors == [] and await files_with_errors() == [{"path": dup, "message": expected.message}]
    # The holder goes: the other declaration takes the name and its error is gone.
    synced.remove(owner)
    synced.commit_push("holder removed")
    run = await sync_repository(pool, source, cache, None)
    assert run.status == "completed" and await files_with_errors() == []
    status, item = await api.get("/api/v1/catalog/items/extra-0")
    assert status == 200 and (item["version"], item["source_file_path"]) == ("9.9.9", dup)
