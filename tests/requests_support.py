"""Fixtures for service-request tests: the example catalog synced, tokens, an API client."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from app.api.auth import create_token
from app.git.catalog import GitCache
from app.requests.config import HttpCredential, RequestSettings
from app.sync.engine import sync_repository
from app.sync.source import catalog_source
from app.web import create_app
from tests.conftest import with_settings
from tests.support import wait_for
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

# An item fulfilled by an e-mail to the access team.
ACCESS_GRANT = '''\
name: "access-grant"
version: "1.0.0"
description: "Access to a production system"
owner: "platform-security-team"
presentation:
  fields:
    - {name: "system", type: "selection", oneof: ["billing", "crm"], required: true}
fulfillment:
  manual:
    system: "email"
    template:
      to: "access@example.com"
      summary: "Grant {{ requester.user_id }} access to {{ system }}"
      body: "Team {{ requester.team }} asks for {{ system }} access."
'''

# An item fulfilled by a ServiceNow incident.
FIREWALL_RULE = '''\
name: "firewall-rule"
version: "1.0.0"
description: "Open a port between two networks"
owner: "network-team"
presentation:
  fields:
    - {name: "port", type: "integer", min_value: 1, max_value: 65535, required: true}
fulfillment:
  manual:
    system: "servicenow"
    template:
      summary: "Open port {{ port }} for {{ requester.team }}"
      description: "Requested by {{ requester.user_id }}"
      assignment_group: "network"
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
                              {"catalog/security/vault-app.yaml": VAULT_APP,
                               "catalog/security/access-grant.yaml": ACCESS_GRANT,
                               "catalog/network/firewall-rule.yaml": FIREWALL_RULE})


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


class Endpoint:
    """A real HTTP server standing in for the systems HttpPost steps call.

    ``script[path]`` is a list of answers (status, json body, headers) consumed one per
    call; the last one repeats. Every call is recorded with its headers and JSON body.
    """

    def __init__(self) -> None:
        self.script: dict[str, list[tuple[int, Any, dict[str, str]]]] = {}
        self.calls: list[dict[str, Any]] = []
        self.url = ""
        self.hold: dict[str, Any] = {}  # path -> asyncio.Event the handler waits on
        # idempotent: honour Idempotency-Key as a real API would: one effect per key.
        self.idempotent = False
        self.effects: dict[tuple[str, str], tuple[int, Any, dict[str, str]]] = {}

    def answer(self, path: str, *answers: tuple[int, Any] | tuple[int, Any, dict[str, str]]) -> None:
        self.script[path] = [(a[0], a[1], a[2] if len(a) > 2 else {}) for a in answers]

    def calls_to(self, path: str) -> list[dict[str, Any]]:
        return [c for c in self.calls if c["path"] == path]

    async def handle(self, request: Any) -> Any:
        from aiohttp import web

        body = await request.json() if request.can_read_body else None
        self.calls.append({"path": request.path, "method": request.method, "json": body,
                           "headers": dict(request.headers)})
        key = request.headers.get("Idempotency-Key")
        if self.idempotent and key and (request.path, key) in self.effects:
            status, data, headers = self.effects[(request.path, key)]  # a retry: the same answer
            return web.json_response(data, status=status, headers=headers)
        answers = self.script.get(request.path) or [(404, {"error": "no such path"}, {})]
        status, data, headers = answers.pop(0) if len(answers) > 1 else answers[0]
        if self.idempotent and key:
            self.effects[(request.path, key)] = (status, data, headers)  # the work is done here
        if request.path in self.hold:
            await self.hold[request.path].wait()
        return web.json_response(data, status=status, headers=headers)


@pytest.fixture
async def endpoint(aiohttp_server) -> Endpoint:
    from aiohttp import web

    ep = Endpoint()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", ep.handle)
    server = await aiohttp_server(app)
    ep.url = str(server.make_url("")).rstrip("/")
    return ep


@pytest.fixture
async def worker(runtime, pool, db_dsn, http_session):
    """In-process workers running request steps (and every other task) until the test ends.

    List it after the fixture that syncs the catalog: that one sets ``runtime.settings``.
    """
    import asyncio

    from app.jobs.worker import Worker

    w = Worker(pool, db_dsn, runtime.settings, runtime.github, http_session, concurrency=4,
               poll_interval=0.1, stall_timeout=5.0)
    runner = asyncio.create_task(w.run())
    yield w
    w.stop()
    await runner


@pytest.fixture(params=["cloud"])
async def jira(request, aiohttp_server, runtime):
    """A FakeJira wired into the runtime's request settings (``jira_flavour`` param: cloud)."""
    import dataclasses

    from tests.fakes.jira import FakeJira

    fake = FakeJira(flavour=request.param)
    server = await aiohttp_server(fake.app())
    fake.url = str(server.make_url("")).rstrip("/")
    fake.configure = lambda rt: _with_jira(rt, fake, dataclasses)  # type: ignore[attr-defined]
    return fake


def _with_jira(runtime: Any, fake: Any, dataclasses: Any) -> None:
    rs = runtime.settings.extra["requests"]
    runtime.settings.extra["requests"] = dataclasses.replace(
        rs, jira_url=fake.url, jira_token=fake.token,
        jira_user=fake.user if fake.flavour == "cloud" else None,
        jira_webhook_secret="jira-hook-secret", ticket_poll_interval=0.2)


@pytest.fixture
def smtp_server():
    """A real SMTP server (aiosmtpd) on a free local port; ``.messages`` holds what it received."""
    import socket
    from email import message_from_bytes

    from aiosmtpd.controller import Controller

    class Inbox:
        def __init__(self) -> None:
            self.messages: list[Any] = []

        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            self.messages.append((envelope.rcpt_tos, message_from_bytes(envelope.content)))
            return "250 OK"

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    inbox.port = port  # type: ignore[attr-defined]
    yield inbox
    controller.stop()


def hook_item(base: str) -> str:
    return f'''\
name: "hook-app"
version: "1.0.0"
description: "An app provisioned over HTTP"
owner: "platform-compute-team"
presentation:
  fields:
    - {{name: "app_name", type: "string", required: true}}
    - {{name: "token", type: "secret"}}
fulfillment:
  automation:
    steps:
      - id: "create"
        type: "HttpPost"
        config:
          url: "{base}/create"
          headers: {{X-Team: "{{{{ requester.team }}}}"}}
          body: {{name: "{{{{ app_name }}}}", who: "{{{{ requester.user_id }}}}", token: "{{{{ token }}}}"}}
        outputs: ["endpoint"]
      - id: "notify"
        type: "HttpPost"
        depends_on: ["create"]
        config:
          url: "{base}/notify"
          body: {{endpoint: "{{{{ steps.create.outputs.endpoint }}}}", request: "{{{{ request.id }}}}"}}
      - id: "audit"
        type: "HttpPost"
        config:
          url: "{base}/audit"
          body: {{app: "{{{{ app_name }}}}"}}
'''


@pytest.fixture
async def hooks(tmp_path, settings, pool, runtime, endpoint, aiohttp_client):
    await sync_catalog(tmp_path, settings, pool, runtime,
                       {"catalog/apps/hook-app.yaml": hook_item(endpoint.url)})
    rs = runtime.settings.extra["requests"]
    runtime.settings.extra["requests"] = type(rs)(
        **{**rs.__dict__, "http_credentials": (HttpCredential(endpoint.url + "/create", "HOOK_AUTH",
                                                              "Bearer hook-secret-1"),)})
    client = await aiohttp_client(create_app(runtime))
    tokens = {}
    for who, user, admin in (("sarah", "sarah-123", False), ("admin", "root", True)):
        _, tokens[who] = await create_token(pool, user_id=user, team="customer-experience",
                                            is_admin=admin, email=f"{user}@example.com")
    return RequestsApi(client, tokens)


BODY = {"catalog_item": "hook-app", "parameters": {"app_name": "shop", "token": "tok-abcdef"}}


async def status_of(api, href: str, wanted: str) -> dict:
    async def check():
        _, body = await api.call("GET", href)
        return body if body["status"] == wanted else None
    return await wait_for(check, timeout=20, what=f"request {wanted}")
