"""A fake GitHub for tests: the REST API paths PAO calls, git hosting, webhooks.

``FakeGitHub`` is an aiohttp application that follows the real API's paths, status
codes and body shapes for the operations PAO uses. It is stricter than GitHub in
one way, on purpose: API and git calls without credentials are refused (401
``Requires authentication``) even for public repositories, so a code path that
forgets to authenticate fails in tests instead of working by accident.

Test-facing API (see ``tests/fakes/fixtures.py`` for the fixtures):

- ``AppKey.generate()``: the test GitHub App's RSA key pair and App id.
- ``fake.install(account, ...)`` -> ``FakeInstallation``; ``fake.create_repo("owner/name",
  private=..., installation=...)`` -> ``FakeRepo``; ``repo.commit({path: text | bytes | None})``
  -> new SHA (None deletes a file); branches, tags, ``repo.set_ref`` (force push).
- ``fake.rename_repo(old, new)`` (a rename or transfer); ``fake.star(user, "owner/name")``;
  ``fake.personal_token`` (token mode); ``fake.git_delay``;
  ``fake.revoke(token)`` / ``fake.revoke_all()``; ``fake.token_lifetime`` (seconds).
- ``fake.requests`` (every API request: method, path, query, headers sans secrets,
  JSON body, status), ``fake.git_requests``, ``fake.check_runs`` (id -> stored run),
  ``fake.openapi_violations`` (requests whose shape the OpenAPI subset rejects).
- ``fake.hook_url``/``hook_secret``, ``await fake.deliver_hook(event, payload)``,
  ``fake.record_hook_delivery(...)``, ``fake.hook_deliveries``: the App's delivery log
  (``GET /app/hook/deliveries``, redelivery with ``POST .../{id}/attempts``).
- ``fake.push_payload(...)``, ``pull_request_payload``, ``check_suite_payload``,
  ``check_run_payload``, ``star_payload``, ``watch_payload``, ``ping_payload``,
  ``installation_payload``,
  ``installation_repositories_payload``: webhook bodies built from GitHub's published
  examples (``webhook-examples.json``, see ``scripts/refresh_webhook_examples.py``) with
  this fake's repositories, users and installations filled in; an event, action or
  top-level field GitHub never sends is a ``ValueError``;
  ``await send_webhook(url, event, payload, secret)`` signs and posts one.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import html
import itertools
import json
import secrets
import string
import subprocess
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.fakes import openapi_check
from tests.fakes.git_http import GitHttpBackend, basic_credentials
from tests.fakes.github_repo import ZERO_SHA, FakeRepo, FileContent
from tests.fakes.github_repo import iso_time as _iso
from tests.fakes.github_repo import node_id as _node_id
from tests.fakes.webhook_sender import WebhookResult, send_webhook, sign_payload

__all__ = ["ZERO_SHA", "AppKey", "FakeGitHub", "FakeInstallation", "FakeRepo", "FileContent",
           "RecordedRequest", "WebhookResult", "send_webhook", "sign_payload"]

DOCS = "https://docs.github.com/rest"
# What the App asks for in app.yml; installations grant these unless a test says otherwise.
DEFAULT_PERMISSIONS = {"contents": "read", "checks": "write", "metadata": "read",
                       "pull_requests": "read", "members": "read"}
DEFAULT_EVENTS = ["push", "pull_request", "check_suite", "check_run", "star", "watch",
                  "installation", "installation_repositories"]
JWT_MAX_LIFETIME = 600  # GitHub: exp no more than 10 minutes after iat
CHECK_STATUSES = ("queued", "in_progress", "completed", "waiting", "requested", "pending")
CHECK_CONCLUSIONS = ("action_required", "cancelled", "failure", "neutral", "success", "skipped",
                     "stale", "timed_out")
_ALNUM = string.ascii_letters + string.digits

# GitHub's published webhook examples: {event: {action or "": payload}}.
WEBHOOK_EXAMPLES: dict[str, dict[str, dict[str, Any]]] = json.loads(
    (Path(__file__).with_name("webhook-examples.json")).read_text())
# Top-level fields about the examples' own organisation and enterprise: dropped.
_EXAMPLE_CONTEXT = {"organization", "enterprise", "installation"}


def from_example(event: str, action: str | None, fill: Mapping[str, Any]) -> dict[str, Any]:
    """A delivery shaped like GitHub's own example of ``event``/``action``, with ``fill``'s
    values (this fake's objects) over the example's; ``installation`` is added when given,
    as GitHub adds it for an App."""
    examples = WEBHOOK_EXAMPLES.get(event, {})
    if (action or "") not in examples:
        raise ValueError(f"GitHub sends no {event!r} webhook with action {action!r} "
                         f"(it sends: {sorted(examples) or 'none'})")
    example = examples[action or ""]
    # Any field GitHub shows in an example of this event, whatever the action.
    known = {key for other in examples.values() for key in other}
    unknown = set(fill) - known - {"installation"}
    if unknown:
        raise ValueError(f"GitHub's {event!r} webhook has no {', '.join(sorted(unknown))}")
    payload: dict[str, Any] = {}
    for key, value in example.items():
        if key in _EXAMPLE_CONTEXT:
            continue
        if key in fill:
            ours = fill[key]
            payload[key] = ({**copy.deepcopy(value), **ours}
                            if isinstance(value, dict) and isinstance(ours, dict) else ours)
        else:
            payload[key] = copy.deepcopy(value)
    for key, value in fill.items():
        if key not in payload and key != "installation":
            payload[key] = value
    if fill.get("installation"):
        payload["installation"] = fill["installation"]
    return payload


def _random_token(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_ALNUM) for _ in range(36))


@dataclass(frozen=True)
class AppKey:
    """The test GitHub App: its id and RSA key pair (PEM private key for PAO)."""

    app_id: int
    private_pem: str
    public_pem: str
    slug: str = "pao-test"

    @classmethod
    def generate(cls, app_id: int = 424242, slug: str = "pao-test") -> AppKey:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        private = key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
        public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo).decode()
        return cls(app_id, private, public, slug)


@dataclass
class FakeInstallation:
    id: int
    account: str
    account_type: str = "Organization"
    repository_selection: str = "selected"  # or "all": every repository of the account
    repos: set[str] = field(default_factory=set)  # full names, for "selected"
    permissions: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_PERMISSIONS))
    suspended: bool = False

    def covers(self, repo: FakeRepo) -> bool:
        if self.repository_selection == "all":
            return repo.owner.lower() == self.account.lower()
        return repo.full_name.lower() in {r.lower() for r in self.repos}


@dataclass
class IssuedToken:
    token: str
    installation_id: int
    expires_at: float
    repos: set[str] | None = None  # a token scoped to some repositories
    revoked: bool = False


@dataclass
class FakeHook:
    """A repository's or an organisation's webhook (token mode), with its own delivery log."""

    id: int
    owner: str
    repo: str | None  # None: the organisation's webhook
    url: str
    secret: str
    events: list[str] = field(default_factory=lambda: ["push"])
    deliveries: list[dict[str, Any]] = field(default_factory=list)

    @property
    def scope(self) -> str:
        return f"repos/{self.owner}/{self.repo}" if self.repo else f"orgs/{self.owner}"


@dataclass
class RecordedRequest:
    """One API request as the fake received it; ``headers`` has credentials masked."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    json: Any
    status: int = 0
    auth: str = "none"  # none | jwt | installation | user | invalid


@dataclass
class Principal:
    kind: str  # jwt | installation | user
    installation: FakeInstallation | None = None
    token: IssuedToken | None = None
    login: str | None = None


class ApiError(web.HTTPException):
    """An error answered with GitHub's JSON shape."""

    def __init__(self, status: int, message: str, *, docs: str = DOCS,
                 extra: Mapping[str, Any] | None = None, headers: Mapping[str, str] | None = None):
        self.status_code = status
        body = {"message": message, "documentation_url": docs, "status": str(status), **(extra or {})}
        super().__init__(text=json.dumps(body), content_type="application/json", headers=headers)


PRINCIPAL: web.RequestKey[Principal | None] = web.RequestKey("principal", object)
BODY: web.RequestKey[Any] = web.RequestKey("body", object)


def not_found() -> ApiError:
    return ApiError(404, "Not Found")


class FakeGitHub:
    """The fake GitHub server state and its aiohttp application (``fake.app``)."""

    def __init__(self, root: str | Path, app_key: AppKey, *, token_lifetime: float = 3600.0,
                 clock_drift: float = 30.0,
                 validate_openapi: bool = True):
        self.root = Path(root)
        self.git_root = self.root / "git"
        self.git_root.mkdir(parents=True, exist_ok=True)
        self.app_key = app_key
        self.token_lifetime = token_lifetime
        self.clock_drift = clock_drift
        self.url = "http://github.invalid"  # set by the fixture once the server listens
        self.installations: dict[int, FakeInstallation] = {}
        self.repos: dict[str, FakeRepo] = {}  # lower-case full name -> repo
        self.tokens: dict[str, IssuedToken] = {}
        self.personal_tokens: dict[str, str] = {}  # token -> login
        self.stars: dict[str, dict[str, float]] = {}  # user -> full name -> starred at
        self.users: set[str] = set()
        self.personal_token = self.add_personal_token("pao-admin")
        self.check_runs: dict[int, dict[str, Any]] = {}
        # Issues by repository full name, then number: {number, title, body, labels, state, ...}.
        self.issues: dict[str, dict[int, dict[str, Any]]] = {}
        self.requests: list[RecordedRequest] = []
        self.git_requests: list[dict[str, Any]] = []
        self.jwt_claims: list[dict[str, Any]] = []
        self.openapi_violations: list[str] = []  # PAO sent what GitHub's description rejects
        self.response_violations: list[str] = []  # the fake answered in a shape GitHub never would
        self.validate_openapi = validate_openapi
        self.git_delay = 0.0  # seconds each git request waits first (slow-network tests)
        self._ids = itertools.count(1000)
        # The App's webhook: where it points, its secret, and its delivery log (attempts,
        # oldest first) as ``GET /app/hook/deliveries`` shows it.
        self.hook_url: str | None = None
        self.hook_secret = ""
        self.hook_deliveries: list[dict[str, Any]] = []
        self._hook_ids = itertools.count(90_000_000_001)
        self._redeliveries: set[asyncio.Task[Any]] = set()
        self.redelivery_error: int | None = None  # answer POST .../attempts with this error
        self.hooks: dict[int, FakeHook] = {}  # repository and organisation webhooks (token mode)
        self._check_suites: dict[tuple[str, str], int] = {}
        # The web side (github.com pages a browser visits): manifest flow and OAuth.
        self.manifests: list[dict[str, Any]] = []  # {"owner": org or None, "manifest": {...}}
        self.manifest_codes: dict[str, dict[str, Any]] = {}  # code -> manifest, used once
        self.oauth_clients: dict[str, dict[str, Any]] = {}  # client_id -> secret, callback_urls
        self.oauth_codes: dict[str, dict[str, Any]] = {}  # code -> client_id, login, redirect_uri
        self.registered_webhook_secret: str | None = None
        self.teams: dict[tuple[str, str], set[str]] = {}  # (org, slug) -> member logins
        self.backend = GitHttpBackend(self.git_root, self._authorize_git, realm="GitHub")
        from tests.fakes.github_actions import FakeActions  # it builds on this module's helpers

        self.actions = FakeActions(self)  # Actions, contents, refs, pulls (service-request steps)
        self.app = self._make_app()

    # ----- test helpers: state -------------------------------------------------------------

    def install(self, account: str, *, repos: Iterable[str] = (), selection: str = "selected",
                account_type: str = "Organization",
                permissions: Mapping[str, str] | None = None) -> FakeInstallation:
        """Install the App on ``account``; ``repos`` are full names (for "selected")."""
        inst = FakeInstallation(next(self._ids), account, account_type, selection, set(repos),
                                dict(permissions or DEFAULT_PERMISSIONS))
        self.installations[inst.id] = inst
        self.users.add(account)
        return inst

    def uninstall(self, installation: FakeInstallation | int) -> None:
        """Remove an installation: its tokens stop working, token requests get 404."""
        self.installations.pop(installation if isinstance(installation, int) else installation.id, None)

    def add_user(self, login: str) -> None:
        """Make ``login`` a known user (unknown users' star lists are 404)."""
        self.users.add(login)

    def create_repo(self, full_name: str, *, private: bool = False, default_branch: str = "main",
                    installation: FakeInstallation | int | None = None,
                    description: str | None = None, files: Mapping[str, FileContent] | None = None,
                    ) -> FakeRepo:
        """A new bare repository, optionally with a first commit of ``files``."""
        owner, name = full_name.split("/")
        repo = FakeRepo(self, owner, name, id=next(self._ids), private=private,
                        default_branch=default_branch, description=description)
        subprocess.run(["git", "init", "--bare", "-q", "-b", default_branch, str(repo.path)],
                       check=True, capture_output=True)
        self.repos[full_name.lower()] = repo
        self.users.add(owner)
        if installation is not None:
            inst = self.installations[installation if isinstance(installation, int) else installation.id]
            inst.repos.add(full_name)
        if files:
            repo.commit(files, "Initial commit")
        return repo

    def repo(self, full_name: str) -> FakeRepo:
        return self.repos[full_name.lower()]

    def rename_repo(self, full_name: str, new_full_name: str) -> FakeRepo:
        """Rename or transfer a repository: same id, new name and URLs. The old name is free
        for another repository (this fake does not redirect it)."""
        repo = self.repos.pop(full_name.lower())
        for starred in self.stars.values():
            if repo.full_name in starred:
                starred[new_full_name] = starred.pop(repo.full_name)
        for inst in self.installations.values():
            if full_name in inst.repos:
                inst.repos.discard(full_name)
                inst.repos.add(new_full_name)
        repo.owner, repo.name = new_full_name.split("/")
        new_path = self.git_root / repo.owner / f"{repo.name}.git"
        new_path.parent.mkdir(parents=True, exist_ok=True)
        repo.path.rename(new_path)
        repo.path = new_path
        self.repos[new_full_name.lower()] = repo
        self.users.add(repo.owner)
        return repo
    def add_hook(self, owner: str, repo: str | None, url: str, secret: str, *,
                 events: Iterable[str] = ("push",)) -> FakeHook:
        """A webhook on repository ``owner/repo`` (``repo`` None: on organisation ``owner``)."""
        hook = FakeHook(next(self._ids), owner, repo, url, secret, list(events))
        self.hooks[hook.id] = hook
        return hook

    def record_hook_delivery(self, event: str, payload: Mapping[str, Any], *, status_code: int,
                             status: str | None = None, guid: str | None = None,
                             redelivery: bool = False, delivered_at: float | None = None,
                             response: str | None = None, hook: FakeHook | None = None) -> dict[str, Any]:
        """Add one attempt to the delivery log of ``hook``, else the App's (``status_code`` 0: no answer)."""
        action = payload.get("action")
        installation = payload.get("installation")
        repository = payload.get("repository")
        attempt = {
            "id": next(self._hook_ids), "guid": guid or str(uuid.uuid4()),
            "delivered_at": _iso(delivered_at if delivered_at is not None else time.time()),
            "redelivery": redelivery, "duration": 0.05,
            "status": status or ("OK" if 200 <= status_code < 300 else
                                 f"Invalid HTTP Response: {status_code}" if status_code
                                 else "failed to connect to host"),
            "status_code": status_code, "event": event,
            "action": action if isinstance(action, str) else None,
            "installation_id": installation.get("id") if isinstance(installation, dict) else None,
            "repository_id": repository.get("id") if isinstance(repository, dict) else None,
            "throttled_at": None,
            "_payload": dict(payload), "_response": response,
        }
        (hook.deliveries if hook is not None else self.hook_deliveries).append(attempt)
        return attempt

    async def deliver_hook(self, event: str, payload: Mapping[str, Any], *, guid: str | None = None,
                           redelivery: bool = False, hook: FakeHook | None = None) -> dict[str, Any]:
        """Send a delivery to ``hook``'s URL (else the App's ``hook_url``) as GitHub does and log
        the attempt, whatever happens."""
        guid = guid or str(uuid.uuid4())
        url, secret = (hook.url, hook.secret) if hook is not None else (self.hook_url, self.hook_secret)
        if url is None:
            raise RuntimeError("set fake.hook_url first")
        try:
            result = await send_webhook(url, event, dict(payload), secret, delivery_id=guid)
        except (TimeoutError, OSError):  # aiohttp's connection errors are OSErrors
            return self.record_hook_delivery(event, payload, status_code=0, guid=guid,
                                             redelivery=redelivery, hook=hook)
        text = result.body if isinstance(result.body, str) else json.dumps(result.body)
        return self.record_hook_delivery(event, payload, status_code=result.status, guid=guid,
                                         redelivery=redelivery, response=text, hook=hook)

    async def wait_for_redeliveries(self) -> None:
        """Wait until every redelivery asked for so far has been attempted."""
        while self._redeliveries:
            await asyncio.gather(*list(self._redeliveries), return_exceptions=True)

    def add_team(self, org: str, slug: str, members: Iterable[str]) -> None:
        """A team of ``org`` (seen by ``GET /user/teams``) with these members."""
        self.teams[(org, slug)] = set(members)
        self.users.update(members)

    def add_personal_token(self, login: str, token: str | None = None) -> str:
        """A personal access token for ``login`` (sees every repository, as an org admin)."""
        token = token or _random_token("ghp_")
        self.personal_tokens[token] = login
        self.users.add(login)
        return token

    def star(self, user: str, full_name: str, *, at: float | None = None) -> None:
        self.users.add(user)
        self.stars.setdefault(user, {})[self.repo(full_name).full_name] = at or time.time()

    def unstar(self, user: str, full_name: str) -> None:
        self.stars.get(user, {}).pop(self.repo(full_name).full_name, None)

    def stargazers(self, repo: FakeRepo) -> int:
        return sum(1 for starred in self.stars.values() if repo.full_name in starred)

    def revoke(self, token: str) -> None:
        """Revoke an installation token before it expires (the next use gets 401)."""
        self.tokens[token].revoked = True

    def revoke_all(self) -> None:
        for issued in self.tokens.values():
            issued.revoked = True

    def issued_tokens(self, installation_id: int | None = None) -> list[IssuedToken]:
        return [t for t in self.tokens.values()
                if installation_id is None or t.installation_id == installation_id]

    def api_requests(self, method: str | None = None, path_prefix: str = "") -> list[RecordedRequest]:
        return [r for r in self.requests
                if (method is None or r.method == method) and r.path.startswith(path_prefix)]

    def assert_openapi_clean(self) -> None:
        """Fail if PAO sent, or the fake answered, something GitHub's description rejects."""
        assert not self.openapi_violations, "requests GitHub's OpenAPI description rejects:\n" + "\n".join(
            self.openapi_violations)
        assert not self.response_violations, "the fake answered off-spec:\n" + "\n".join(
            self.response_violations)

    def pao_settings(self, mode: str = "app") -> dict[str, Any]:
        """``Settings`` fields pointing PAO at this fake (``with_settings(settings, **...)``)."""
        if mode == "app":
            return {"app_id": str(self.app_key.app_id), "private_key": self.app_key.private_pem,
                    "github_api_url": self.url, "repo_token": None}
        return {"app_id": None, "private_key": None, "github_api_url": self.url,
                "repo_token": self.personal_token}

    # ----- JSON shapes -------------------------------------------------------------------

    def account_json(self, login: str, account_type: str | None = None) -> dict[str, Any]:
        number = int.from_bytes(hashlib.sha256(login.lower().encode()).digest()[:3], "big")
        kind = account_type or next(
            (i.account_type for i in self.installations.values() if i.account.lower() == login.lower()),
            "User")
        user_api = f"{self.url}/users/{login}"
        return {"login": login, "id": number, "node_id": _node_id(kind, number),
                "avatar_url": f"{self.url}/avatars/{login}", "gravatar_id": "", "url": user_api,
                "html_url": f"{self.url}/{login}", "followers_url": f"{user_api}/followers",
                "following_url": f"{user_api}/following{{/other_user}}",
                "gists_url": f"{user_api}/gists{{/gist_id}}",
                "starred_url": f"{user_api}/starred{{/owner}}{{/repo}}",
                "subscriptions_url": f"{user_api}/subscriptions",
                "organizations_url": f"{user_api}/orgs", "repos_url": f"{user_api}/repos",
                "events_url": f"{user_api}/events{{/privacy}}",
                "received_events_url": f"{user_api}/received_events", "type": kind,
                "user_view_type": "public", "site_admin": False}

    def app_json(self) -> dict[str, Any]:
        key = self.app_key
        return {
            "id": key.app_id, "slug": key.slug, "node_id": _node_id("Integration", key.app_id),
            "client_id": f"Iv1.{key.app_id:016x}", "owner": self.account_json("pao-owner"),
            "name": "PAO (test)", "description": "Platform catalog sync and mirror",
            "external_url": "https://pao.example.com", "html_url": f"{self.url}/apps/{key.slug}",
            "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:00Z",
            "permissions": dict(DEFAULT_PERMISSIONS), "events": list(DEFAULT_EVENTS),
            "installations_count": len(self.installations),
        }

    def installation_json(self, inst: FakeInstallation) -> dict[str, Any]:
        account = self.account_json(inst.account, inst.account_type)
        return {
            "id": inst.id, "account": account, "repository_selection": inst.repository_selection,
            "access_tokens_url": f"{self.url}/app/installations/{inst.id}/access_tokens",
            "repositories_url": f"{self.url}/installation/repositories",
            "html_url": f"{self.url}/organizations/{inst.account}/settings/installations/{inst.id}",
            "app_id": self.app_key.app_id, "app_slug": self.app_key.slug,
            "target_id": account["id"], "target_type": inst.account_type,
            "permissions": dict(inst.permissions), "events": list(DEFAULT_EVENTS),
            "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:00Z",
            "single_file_name": None, "has_multiple_single_files": False, "single_file_paths": [],
            "suspended_by": None, "suspended_at": "2024-01-02T00:00:00Z" if inst.suspended else None,
        }

    def check_run_json(self, run: dict[str, Any]) -> dict[str, Any]:
        repo_api = f"{self.url}/repos/{run['repository']}"
        output = run["output"]
        return {
            "id": run["id"], "node_id": _node_id("CheckRun", run["id"]), "head_sha": run["head_sha"],
            "external_id": run["external_id"], "url": f"{repo_api}/check-runs/{run['id']}",
            "html_url": f"{self.url}/{run['repository']}/runs/{run['id']}",
            "details_url": run["details_url"], "status": run["status"],
            "conclusion": run["conclusion"], "started_at": run["started_at"],
            "completed_at": run["completed_at"], "name": run["name"],
            "output": {"title": output.get("title"), "summary": output.get("summary"),
                       "text": output.get("text"), "annotations_count": len(run["annotations"]),
                       "annotations_url": f"{repo_api}/check-runs/{run['id']}/annotations"},
            "check_suite": {"id": run["check_suite_id"]},
            "app": {k: v for k, v in self.app_json().items() if k != "installations_count"},
            "pull_requests": [],
        }

    # ----- webhook payload builders -----------------------------------------------------

    def _event_installation(self, installation: FakeInstallation | int | None) -> dict[str, Any]:
        if installation is None:
            return {"installation": None}
        inst_id = installation if isinstance(installation, int) else installation.id
        return {"installation": {"id": inst_id, "node_id": _node_id("Installation", inst_id)}}

    def _installation_for(self, repo: FakeRepo) -> FakeInstallation | None:
        return next((i for i in self.installations.values() if i.covers(repo)), None)

    def push_payload(self, repo: FakeRepo, *, before: str, after: str | None = None,
                     ref: str | None = None, pusher: str = "octocat", forced: bool = False,
                     installation: FakeInstallation | int | None = None) -> dict[str, Any]:
        """A ``push`` delivery for ``ref`` moving from ``before`` to ``after`` (zeros = create/delete)."""
        ref = ref or f"refs/heads/{repo.default_branch}"
        after = after or repo.ref_target(ref) or ZERO_SHA
        commits = repo.commits_between(before, after)
        installation = installation if installation is not None else self._installation_for(repo)
        return from_example("push", None, {
            "ref": ref, "before": before, "after": after,
            "repository": repo.to_json(for_event="push"),
            "pusher": {"name": pusher, "email": f"{pusher}@example.com"},
            "sender": self.account_json(pusher),
            "created": before == ZERO_SHA, "deleted": after == ZERO_SHA, "forced": forced,
            "base_ref": None,
            "compare": f"{self.url}/{repo.full_name}/compare/{before[:12]}...{after[:12]}",
            "commits": commits, "head_commit": commits[-1] if commits else None,
            **self._event_installation(installation),
        })

    def pull_request_payload(self, repo: FakeRepo, *, action: str = "opened", number: int = 1,
                             head_ref: str, head_sha: str | None = None, base_ref: str | None = None,
                             title: str = "Change the catalog", user: str = "octocat",
                             merged: bool = False, state: str | None = None,
                             installation: FakeInstallation | int | None = None) -> dict[str, Any]:
        """A ``pull_request`` delivery for a branch of the same repository."""
        base_ref = base_ref or repo.default_branch
        head_sha = head_sha or repo.sha(f"refs/heads/{head_ref}")
        base_sha = repo.sha(f"refs/heads/{base_ref}")
        installation = installation if installation is not None else self._installation_for(repo)
        pr_id = next(self._ids)
        repo_json = repo.to_json()
        api = f"{self.url}/repos/{repo.full_name}/pulls/{number}"
        pr = {
            "url": api, "id": pr_id, "node_id": _node_id("PullRequest", pr_id), "number": number,
            "html_url": f"{self.url}/{repo.full_name}/pull/{number}",
            "state": state or ("closed" if action == "closed" else "open"), "locked": False,
            "title": title, "user": self.account_json(user), "body": None, "draft": False,
            "created_at": _iso(time.time()), "updated_at": _iso(time.time()),
            "closed_at": _iso(time.time()) if action == "closed" else None,
            "merged_at": _iso(time.time()) if merged else None, "merged": merged,
            "merge_commit_sha": None, "commits_url": f"{api}/commits",
            "head": {"label": f"{repo.owner}:{head_ref}", "ref": head_ref, "sha": head_sha,
                     "user": self.account_json(repo.owner), "repo": repo_json},
            "base": {"label": f"{repo.owner}:{base_ref}", "ref": base_ref, "sha": base_sha,
                     "user": self.account_json(repo.owner), "repo": repo_json},
            "author_association": "MEMBER",
        }
        return from_example("pull_request", action, {
            "action": action, "number": number, "pull_request": pr, "repository": repo_json,
            "sender": self.account_json(user), **self._event_installation(installation)})

    def check_suite_payload(self, repo: FakeRepo, *, action: str = "requested", head_sha: str,
                            head_branch: str | None = None,
                            pull_requests: list[dict[str, Any]] | None = None,
                            installation: FakeInstallation | int | None = None) -> dict[str, Any]:
        """A ``check_suite`` delivery (``requested`` / ``rerequested`` / ``completed``)."""
        suite_id = self._suite_id(repo.full_name, head_sha)
        installation = installation if installation is not None else self._installation_for(repo)
        suite = {
            "id": suite_id, "node_id": _node_id("CheckSuite", suite_id), "head_branch": head_branch,
            "head_sha": head_sha, "status": "completed" if action == "completed" else "queued",
            "conclusion": None, "url": f"{self.url}/repos/{repo.full_name}/check-suites/{suite_id}",
            "before": None, "after": head_sha, "pull_requests": pull_requests or [],
            "app": self.app_json(), "created_at": _iso(time.time()), "updated_at": _iso(time.time()),
            "rerequestable": True, "runs_rerequestable": True, "latest_check_runs_count": 0,
            "check_runs_url": f"{self.url}/repos/{repo.full_name}/check-suites/{suite_id}/check-runs",
            "head_commit": {"id": head_sha, "tree_id": None, "message": "", "timestamp": _iso(time.time()),
                            "author": {"name": "Test Author", "email": "author@example.com"},
                            "committer": {"name": "Test Author", "email": "author@example.com"}},
        }
        return from_example("check_suite", action, {
            "action": action, "check_suite": suite, "repository": repo.to_json(),
            "sender": self.account_json("octocat"), **self._event_installation(installation)})

    def check_run_payload(self, check_run_id: int, *, action: str = "rerequested",
                          requested_action: str | None = None,
                          installation: FakeInstallation | int | None = None) -> dict[str, Any]:
        """A ``check_run`` delivery for a run PAO created in this fake."""
        run = self.check_runs[check_run_id]
        repo = self.repo(run["repository"])
        installation = installation if installation is not None else self._installation_for(repo)
        run_json = self.check_run_json(run)
        run_json["check_suite"] = {"id": run["check_suite_id"], "head_sha": run["head_sha"],
                                   "head_branch": None, "status": run["status"],
                                   "conclusion": run["conclusion"], "app": self.app_json(),
                                   "pull_requests": []}
        payload = {"action": action, "check_run": run_json, "repository": repo.to_json(),
                   "sender": self.account_json("octocat"), **self._event_installation(installation)}
        if requested_action is not None:
            payload["requested_action"] = {"identifier": requested_action}
        return from_example("check_run", action, payload)

    def watch_payload(self, repo: FakeRepo, user: str, *, action: str = "started",
                      installation: FakeInstallation | int | None = None) -> dict[str, Any]:
        """A ``watch`` delivery: GitHub sends it, action ``started`` only, when a repository
        is starred (an unstar is only a ``star`` ``deleted``)."""
        installation = installation if installation is not None else self._installation_for(repo)
        return from_example("watch", action, {
            "action": action, "repository": repo.to_json(), "sender": self.account_json(user),
            **self._event_installation(installation)})

    def star_payload(self, repo: FakeRepo, user: str, *, action: str = "created",
                     installation: FakeInstallation | int | None = None) -> dict[str, Any]:
        """A ``star`` delivery: ``created`` (with ``starred_at``) or ``deleted`` (null)."""
        installation = installation if installation is not None else self._installation_for(repo)
        return from_example("star", action, {
            "action": action, "repository": repo.to_json(), "sender": self.account_json(user),
            "starred_at": _iso(time.time()) if action == "created" else None,
            **self._event_installation(installation)})

    def ping_payload(self, *, zen: str = "Design for failure.", hook_id: int = 1) -> dict[str, Any]:
        """A ``ping`` delivery, as GitHub sends to a new App webhook."""
        return from_example("ping", None, {"zen": zen, "hook_id": hook_id})

    def installation_payload(self, installation: FakeInstallation, *, action: str = "created",
                             sender: str = "octocat") -> dict[str, Any]:
        """An ``installation`` delivery; ``created`` lists the repositories it was given."""
        payload: dict[str, Any] = {"action": action, "installation": self.installation_json(installation),
                                   "sender": self.account_json(sender)}
        if action in ("created", "deleted", "suspend", "unsuspend", "new_permissions_accepted"):
            payload["repositories"] = [self._short_repo(r) for r in self.repos.values()
                                       if installation.covers(r)]
        return from_example("installation", action, payload)

    def installation_repositories_payload(self, installation: FakeInstallation, *,
                                          added: Iterable[str] = (), removed: Iterable[str] = (),
                                          sender: str = "octocat") -> dict[str, Any]:
        added_l, removed_l = list(added), list(removed)
        action = "added" if added_l else "removed"
        return from_example("installation_repositories", action, {
            "action": action, "installation": self.installation_json(installation),
            "repository_selection": installation.repository_selection,
            "repositories_added": [self._short_repo(self.repo(n)) for n in added_l],
            "repositories_removed": [self._short_repo(self.repo(n)) for n in removed_l],
            "requester": None, "sender": self.account_json(sender)})

    @staticmethod
    def _short_repo(repo: FakeRepo) -> dict[str, Any]:
        return {"id": repo.id, "node_id": _node_id("Repository", repo.id), "name": repo.name,
                "full_name": repo.full_name, "private": repo.private}

    def _suite_id(self, full_name: str, head_sha: str) -> int:
        key = (full_name.lower(), head_sha)
        if key not in self._check_suites:
            self._check_suites[key] = next(self._ids)
        return self._check_suites[key]

    # ----- authentication ---------------------------------------------------------------

    def _verify_jwt(self, token: str) -> dict[str, Any]:
        try:
            claims = jwt.decode(token, self.app_key.public_pem, algorithms=["RS256"],
                                options={"verify_exp": False, "verify_iat": False,
                                         "require": ["iat", "exp", "iss"]})
        except jwt.PyJWTError:
            raise ApiError(401, "A JSON web token could not be decoded") from None
        now = time.time()
        if not isinstance(claims["iat"], int) or claims["iat"] > now + self.clock_drift:
            raise ApiError(401, "'Issued at' claim ('iat') must be an Integer representing the time "
                                "that the assertion was issued")
        if not isinstance(claims["exp"], int) or claims["exp"] <= now:
            raise ApiError(401, "'Expiration time' claim ('exp') must be a numeric value representing "
                                "the future time at which the assertion expires")
        if claims["exp"] - claims["iat"] > JWT_MAX_LIFETIME or claims["exp"] > now + JWT_MAX_LIFETIME \
                + self.clock_drift:
            raise ApiError(401, "'Expiration time' claim ('exp') is too far in the future")
        if str(claims["iss"]) != str(self.app_key.app_id):
            raise ApiError(401, "A JSON web token could not be decoded")
        self.jwt_claims.append(claims)
        return claims

    def _token_principal(self, token: str) -> Principal | None:
        issued = self.tokens.get(token)
        if issued is not None:
            inst = self.installations.get(issued.installation_id)
            if issued.revoked or issued.expires_at <= time.time() or inst is None:
                return None
            return Principal("installation", inst, issued)
        login = self.personal_tokens.get(token)
        if login is not None:
            return Principal("user", login=login)
        return None

    def _principal(self, request: web.Request) -> Principal | None:
        header = request.headers.get("Authorization")
        if header is None:
            return None
        scheme, _, value = header.partition(" ")
        value = value.strip()
        if scheme.lower() not in ("token", "bearer") or not value:
            raise ApiError(401, "Bad credentials")
        if value.count(".") == 2 and value.startswith("eyJ"):
            self._verify_jwt(value)
            return Principal("jwt")
        principal = self._token_principal(value)
        if principal is None:
            raise ApiError(401, "Bad credentials")
        return principal

    def _require(self, request: web.Request, *kinds: str) -> Principal:
        """The caller, if it is one of ``kinds`` (jwt, installation, user); else GitHub's refusal."""
        principal: Principal | None = request[PRINCIPAL]
        if principal is None:
            raise ApiError(401, "Requires authentication")
        if principal.kind in kinds:
            return principal
        if kinds == ("jwt",):
            # A token where GitHub wants the App's JWT.
            raise ApiError(401, "A JSON web token could not be decoded")
        if principal.kind == "jwt":
            raise ApiError(401, "Bad credentials")
        raise ApiError(403, "You must authenticate with an installation access token in order to "
                            "use this endpoint.")

    def can_see(self, principal: Principal | None, repo: FakeRepo) -> bool:
        if principal is None:
            return False
        if principal.kind == "user":
            return True
        if principal.kind == "installation":
            assert principal.installation is not None and principal.token is not None
            scoped = principal.token.repos
            in_scope = scoped is None or repo.full_name.lower() in scoped
            return not repo.private or (principal.installation.covers(repo) and in_scope)
        return False

    def _visible_repo(self, request: web.Request, principal: Principal) -> FakeRepo:
        name = f"{request.match_info['owner']}/{request.match_info['repo']}".lower()
        repo = self.repos.get(name)
        if repo is None or not self.can_see(principal, repo):
            raise not_found()
        return repo

    def _authorize_git(self, request: web.Request, repo_path: str, service: str) -> bool:
        creds = basic_credentials(request)
        if creds is None:
            return False
        user, password = creds
        principal = self._token_principal(password)
        if principal is None:
            return False
        if principal.kind == "installation" and user != "x-access-token":
            return False
        repo = self.repos.get(repo_path.removesuffix(".git").lower())
        if repo is None or not self.can_see(principal, repo):
            raise web.HTTPNotFound(text="Repository not found.\n")
        if service == "git-receive-pack":
            if principal.kind == "installation":
                assert principal.installation is not None
                writable = principal.installation.covers(repo) and \
                    principal.installation.permissions.get("contents") == "write"
                if not writable:
                    raise web.HTTPForbidden(
                        text=f"Permission to {repo.full_name}.git denied to {self.app_key.slug}[bot].\n")
        return True

    # ----- the aiohttp application ------------------------------------------------------

    def _make_app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware], client_max_size=64 * 1024 * 1024)
        r = app.router
        r.add_get("/app", self._get_app)
        r.add_get("/app/installations/{installation_id:\\d+}", self._get_installation)
        r.add_post("/app/installations/{installation_id:\\d+}/access_tokens", self._create_token)
        r.add_get("/app/hook/deliveries", self._hook_deliveries)
        r.add_get("/app/hook/deliveries/{delivery_id:\\d+}", self._hook_delivery)
        r.add_post("/app/hook/deliveries/{delivery_id:\\d+}/attempts", self._redeliver)
        for scope in ("/repos/{owner}/{repo}", "/orgs/{org}"):
            r.add_get(f"{scope}/hooks", self._list_hooks)
            r.add_get(f"{scope}/hooks/{{hook_id:\\d+}}/deliveries", self._repo_hook_deliveries)
            r.add_post(f"{scope}/hooks/{{hook_id:\\d+}}/deliveries/{{delivery_id:\\d+}}/attempts",
                       self._repo_hook_redeliver)
        r.add_get("/installation/repositories", self._installation_repositories)
        r.add_get("/repos/{owner}/{repo}/installation", self._repo_installation)
        r.add_get("/repos/{owner}/{repo}", self._get_repo)
        r.add_get("/repositories/{repository_id:\\d+}", self._get_repo_by_id)
        r.add_get("/users/{username}/starred", self._starred)
        r.add_post("/repos/{owner}/{repo}/check-runs", self._create_check_run)
        r.add_get("/repos/{owner}/{repo}/check-runs/{check_run_id:\\d+}", self._get_check_run)
        r.add_patch("/repos/{owner}/{repo}/check-runs/{check_run_id:\\d+}", self._update_check_run)
        r.add_get("/repos/{owner}/{repo}/check-runs/{check_run_id:\\d+}/annotations", self._annotations)
        r.add_get("/repos/{owner}/{repo}/commits/{ref:.+}/check-runs", self._check_runs_for_ref)
        r.add_post("/app-manifests/{code}/conversions", self._manifest_conversion)
        r.add_get("/user", self._get_user)
        r.add_get("/user/teams", self._user_teams)
        r.add_post("/repos/{owner}/{repo}/issues", self._create_issue)
        r.add_get("/repos/{owner}/{repo}/issues", self._list_issues)
        r.add_get("/repos/{owner}/{repo}/issues/{number:\\d+}", self._get_issue)
        self.actions.add_routes(r)
        r.add_route("*", r"/{repo:[^/]+/[^/]+\.git}/{tail:.*}", self._git, name="git")
        # github.com pages, answered in HTML (not API operations: no OpenAPI check).
        r.add_post("/settings/apps/new", self._new_app_page, name="web-new-app")
        r.add_post("/organizations/{org}/settings/apps/new", self._new_app_page, name="web-new-org-app")
        r.add_get("/login/oauth/authorize", self._oauth_authorize_page, name="web-oauth-authorize")
        r.add_post("/login/oauth/authorize", self._oauth_authorize, name="web-oauth-approve")
        r.add_post("/login/oauth/access_token", self._oauth_access_token, name="web-oauth-token")
        r.add_get("/favicon.ico", self._no_favicon, name="web-favicon")  # browsers ask for it
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Callable) -> web.StreamResponse:
        name = request.match_info.route.name or ""
        if name in ("git", "artifact_blob") or name.startswith("web-"):  # not API calls
            return await handler(request)
        body: Any = None
        raw = await request.read()
        record = RecordedRequest(request.method, request.path, dict(request.query),
                                 _masked_headers(request.headers), None)
        self.requests.append(record)
        try:
            if raw:
                try:
                    body = json.loads(raw)
                except ValueError:
                    raise ApiError(400, "Problems parsing JSON") from None
            record.json = body
            if self.validate_openapi:
                for problem in openapi_check.request_problems(request.method, request.path,
                                                              dict(request.query), body):
                    self.openapi_violations.append(f"{request.method} {request.path}: {problem}")
            try:
                request[PRINCIPAL] = self._principal(request)
            except ApiError:
                record.auth = "invalid"
                raise
            principal = request[PRINCIPAL]
            record.auth = principal.kind if principal else "none"
            request[BODY] = body
            response = await handler(request)
        except web.HTTPException as exc:
            record.status = exc.status
            if not isinstance(exc, ApiError) and exc.status in (404, 405):
                raise not_found() from None  # GitHub answers unknown paths and methods alike
            raise
        record.status = response.status
        if self.validate_openapi and isinstance(response, web.Response) and response.body \
                and 200 <= response.status < 300:
            assert isinstance(response.body, bytes)
            for problem in openapi_check.response_problems(request.method, request.path, response.status,
                                                           json.loads(response.body)):
                self.response_violations.append(f"{request.method} {request.path} -> "
                                                f"{response.status}: {problem}")
        response.headers.setdefault("X-GitHub-Request-Id", uuid.uuid4().hex[:16].upper())
        for name, value in (("X-RateLimit-Limit", "5000"), ("X-RateLimit-Remaining", "4999"),
                            ("X-RateLimit-Reset", str(int(time.time()) + 3600)),
                            ("X-RateLimit-Used", "1"), ("X-RateLimit-Resource", "core")):
            response.headers.setdefault(name, value)
        return response

    async def _git(self, request: web.Request) -> web.StreamResponse:
        entry = {"method": request.method, "path": request.path,
                 "service": request.query.get("service") or request.match_info["tail"],
                 "user": (basic_credentials(request) or ("", ""))[0], "status": 0}
        self.git_requests.append(entry)
        if self.git_delay:
            await asyncio.sleep(self.git_delay)
        try:
            response = await self.backend.route(request)
        except web.HTTPException as exc:
            entry["status"] = exc.status
            raise
        entry["status"] = response.status
        return response

    # ----- API handlers -------------------------------------------------------------------

    # ----- the manifest flow and OAuth (web pages, then API) ---------------------------------

    async def _new_app_page(self, request: web.Request) -> web.Response:
        """github.com's "new GitHub App" page for a posted manifest; "Create" redirects back with a code."""
        form = await request.post()
        try:
            manifest = json.loads(str(form.get("manifest", "")))
            redirect_url = manifest["redirect_url"]
            hook_url = manifest["hook_attributes"]["url"]
            assert isinstance(redirect_url, str) and isinstance(hook_url, str)
        except (ValueError, KeyError, TypeError, AssertionError):
            return web.Response(status=422, text="Invalid GitHub App configuration",
                                content_type="text/html")
        owner = request.match_info.get("org")
        self.manifests.append({"owner": owner, "manifest": manifest})
        code = secrets.token_hex(10)
        self.manifest_codes[code] = {"manifest": manifest, "owner": owner, "expires": time.time() + 3600}
        state = request.query.get("state", "")
        page = (f"<!doctype html><title>Create GitHub App</title><h1>Create GitHub App</h1>"
                f"<p>{html.escape(manifest.get('name', ''))} for {html.escape(owner or 'your account')}</p>"
                f'<form method="get" action="{html.escape(redirect_url)}">'
                f'<input type="hidden" name="code" value="{code}">'
                f'<input type="hidden" name="state" value="{html.escape(state)}">'
                f"<button type=\"submit\">Create GitHub App for {html.escape(owner or 'you')}</button>"
                "</form>")
        return web.Response(text=page, content_type="text/html")

    async def _manifest_conversion(self, request: web.Request) -> web.Response:
        entry = self.manifest_codes.pop(request.match_info["code"], None)
        if entry is None or entry["expires"] < time.time():
            raise not_found()
        manifest = entry["manifest"]
        client_id = f"Iv23{secrets.token_hex(8)}"
        client_secret = secrets.token_hex(20)
        self.oauth_clients[client_id] = {"secret": client_secret,
                                         "callback_urls": list(manifest.get("callback_urls") or [])}
        self.registered_webhook_secret = secrets.token_hex(16)
        body = {**self.app_json(), "name": manifest.get("name", "PAO"), "client_id": client_id,
                "client_secret": client_secret, "webhook_secret": self.registered_webhook_secret,
                "pem": self.app_key.private_pem}
        if entry["owner"]:
            body["owner"] = self.account_json(entry["owner"], "Organization")
        return _json(body, status=201)

    async def _no_favicon(self, request: web.Request) -> web.Response:
        return web.Response(status=404, text="Not Found")

    async def _oauth_authorize_page(self, request: web.Request) -> web.Response:
        """github.com's sign-in and "Authorize" page."""
        client = self.oauth_clients.get(request.query.get("client_id", ""))
        if client is None:
            return web.Response(status=404, text="Not Found", content_type="text/html")
        redirect_uri = request.query.get("redirect_uri") or (client["callback_urls"] or [""])[0]
        if client["callback_urls"] and not any(redirect_uri.startswith(u) for u in client["callback_urls"]):
            return web.Response(status=400, text="The redirect_uri is not associated with this application.",
                                content_type="text/html")
        hidden = "".join(f'<input type="hidden" name="{k}" value="{html.escape(v)}">' for k, v in
                         (("client_id", request.query["client_id"]), ("redirect_uri", redirect_uri),
                          ("state", request.query.get("state", ""))))
        page = ("<!doctype html><title>Sign in to GitHub</title><h1>Sign in to GitHub</h1>"
                '<form method="post" action="/login/oauth/authorize">' + hidden +
                '<label for="login">Username or email address</label><input id="login" name="login">'
                '<button type="submit">Authorize</button></form>')
        return web.Response(text=page, content_type="text/html")

    async def _oauth_authorize(self, request: web.Request) -> web.Response:
        form = await request.post()
        login = str(form.get("login", "")).strip()
        if not login:
            return web.Response(status=422, text="Incorrect username or password.", content_type="text/html")
        self.users.add(login)
        code = secrets.token_hex(10)
        self.oauth_codes[code] = {"client_id": form["client_id"], "login": login,
                                  "redirect_uri": form["redirect_uri"], "expires": time.time() + 600}
        query = {"code": code, "state": str(form.get("state", ""))}
        raise web.HTTPFound(str(form["redirect_uri"]) + ("&" if "?" in str(form["redirect_uri"]) else "?")
                            + "&".join(f"{k}={v}" for k, v in query.items()))

    async def _oauth_access_token(self, request: web.Request) -> web.Response:
        """Code for a user-to-server token; GitHub answers errors with 200 and an ``error`` field."""
        if request.content_type == "application/json":
            params = await request.json()
        else:
            params = dict(await request.post())
        client = self.oauth_clients.get(str(params.get("client_id", "")))
        given_secret = str(params.get("client_secret", ""))
        if client is None or not secrets.compare_digest(client["secret"], given_secret):
            return _json({"error": "incorrect_client_credentials",
                          "error_description": "The client_id and/or client_secret passed are incorrect."})
        grant = self.oauth_codes.pop(str(params.get("code", "")), None)
        if grant is None or grant["client_id"] != params["client_id"] or grant["expires"] < time.time() or \
                (params.get("redirect_uri") and params["redirect_uri"] != grant["redirect_uri"]):
            return _json({"error": "bad_verification_code",
                          "error_description": "The code passed is incorrect or expired."})
        token = self.add_personal_token(grant["login"], "ghu_" + secrets.token_hex(18))
        return _json({"access_token": token, "expires_in": 28800,
                      "refresh_token": "ghr_" + secrets.token_hex(30),
                      "refresh_token_expires_in": 15811200, "scope": "", "token_type": "bearer"})

    async def _get_user(self, request: web.Request) -> web.Response:
        principal = self._require(request, "user")
        assert principal.login is not None
        return _json({**self.account_json(principal.login, "User"), "name": principal.login.title(),
                      "company": None, "blog": "", "location": None, "email": None, "hireable": None,
                      "bio": None, "public_repos": 0, "public_gists": 0, "followers": 0, "following": 0,
                      "created_at": "2020-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:00Z"})

    async def _user_teams(self, request: web.Request) -> web.StreamResponse:
        principal = self._require(request, "user")
        teams = [self._team_json(org, slug) for (org, slug), members in sorted(self.teams.items())
                 if principal.login in members]
        chunk, headers = _paginate(request, teams)
        return _json(chunk, headers=headers)

    def _team_json(self, org: str, slug: str) -> dict[str, Any]:
        number = int.from_bytes(hashlib.sha256(f"{org}/{slug}".encode()).digest()[:3], "big")
        org_json = self.account_json(org, "Organization")
        org_api = f"{self.url}/orgs/{org}"
        team_api = f"{org_api}/teams/{slug}"
        organization = {
            "login": org, "url": org_api, "id": org_json["id"], "node_id": org_json["node_id"],
            "repos_url": f"{org_api}/repos", "events_url": f"{org_api}/events",
            "hooks_url": f"{org_api}/hooks",
            "issues_url": f"{org_api}/issues", "members_url": f"{org_api}/members{{/member}}",
            "public_members_url": f"{org_api}/public_members{{/member}}",
            "avatar_url": org_json["avatar_url"],
            "description": None, "html_url": f"{self.url}/{org}", "has_organization_projects": True,
            "has_repository_projects": True, "public_repos": 0, "public_gists": 0, "followers": 0,
            "following": 0, "type": "Organization", "created_at": "2020-01-01T00:00:00Z",
            "updated_at": "2024-01-01T00:00:00Z", "archived_at": None}
        return {"id": number, "node_id": _node_id("Team", number), "url": team_api,
                "members_url": f"{team_api}/members{{/member}}", "name": slug.replace("-", " ").title(),
                "description": None, "permission": "pull", "html_url": f"{self.url}/orgs/{org}/teams/{slug}",
                "repositories_url": f"{team_api}/repos", "slug": slug, "type": "organization",
                "created_at": "2020-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:00Z",
                "members_count": len(self.teams[(org, slug)]), "repos_count": 0, "organization": organization}

    async def _get_app(self, request: web.Request) -> web.Response:
        self._require(request, "jwt")
        return _json(self.app_json())

    @staticmethod
    def _hook_item(attempt: Mapping[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in attempt.items() if not k.startswith("_")}

    async def _hook_deliveries(self, request: web.Request) -> web.Response:
        self._require(request, "jwt")
        return self._delivery_page(request, self.hook_deliveries)

    def _delivery_page(self, request: web.Request, deliveries: list[dict[str, Any]]) -> web.Response:
        """Newest first, in pages that continue from an opaque ``cursor`` (GitHub's shape)."""
        try:
            per_page = min(max(int(request.query.get("per_page", "30")), 1), 100)
        except ValueError:
            raise ApiError(422, "Validation Failed") from None
        cursor = request.query.get("cursor")
        before = None
        if cursor is not None:
            if not cursor.startswith("v1_") or not cursor[3:].isdigit():
                raise ApiError(400, "Invalid cursor")
            before = int(cursor[3:])
        wanted = request.query.get("status")
        items = [a for a in reversed(deliveries)
                 if (before is None or a["id"] < before)
                 and (wanted is None or (wanted == "success") == (200 <= a["status_code"] < 300))]
        page = items[:per_page]
        headers = {}
        if len(items) > per_page:
            query = {**request.query, "per_page": str(per_page), "cursor": f"v1_{page[-1]['id']}"}
            headers["Link"] = f'<{request.url.with_query(query)}>; rel="next"'
        return _json([self._hook_item(a) for a in page], headers=headers)

    def _hook_attempt(self, request: web.Request, hook: FakeHook | None = None) -> dict[str, Any]:
        wanted = int(request.match_info["delivery_id"])
        deliveries = hook.deliveries if hook is not None else self.hook_deliveries
        found = next((a for a in deliveries if a["id"] == wanted), None)
        if found is None:
            raise not_found()
        return found

    async def _hook_delivery(self, request: web.Request) -> web.Response:
        self._require(request, "jwt")
        attempt = self._hook_attempt(request)
        return _json({**self._hook_item(attempt), "url": self.hook_url or "",
                      "request": {"headers": {"X-GitHub-Delivery": attempt["guid"],
                                              "X-GitHub-Event": attempt["event"]},
                                  "payload": attempt["_payload"]},
                      "response": {"headers": {}, "payload": attempt["_response"]}})

    async def _redeliver(self, request: web.Request, hook: FakeHook | None = None) -> web.Response:
        """202 at once; like GitHub, the new attempt (same GUID) happens a moment later."""
        if hook is None:
            self._require(request, "jwt")
        attempt = self._hook_attempt(request, hook)
        if self.redelivery_error is not None:
            raise ApiError(self.redelivery_error, "Validation Failed" if self.redelivery_error == 422
                           else "Server Error")
        job = asyncio.create_task(self.deliver_hook(attempt["event"], attempt["_payload"],
                                                    guid=attempt["guid"], redelivery=True, hook=hook))
        self._redeliveries.add(job)
        job.add_done_callback(self._redeliveries.discard)
        return _json({}, status=202)

    def _scoped_hooks(self, request: web.Request) -> list[FakeHook]:
        """The webhooks of the repository or organisation in the path; only a user (a personal
        token, as a repository or organisation admin) may see them, as on GitHub."""
        self._require(request, "user")
        if "org" in request.match_info:
            owner, repo = request.match_info["org"], None
            if owner.lower() not in {u.lower() for u in self.users}:
                raise not_found()
        else:
            found = self.repos.get(f"{request.match_info['owner']}/{request.match_info['repo']}".lower())
            if found is None:
                raise not_found()
            owner, repo = found.owner, found.name
        return [h for h in self.hooks.values() if h.owner.lower() == owner.lower()
                and (h.repo or "").lower() == (repo or "").lower()]

    def _scoped_hook(self, request: web.Request) -> FakeHook:
        wanted = int(request.match_info["hook_id"])
        hook = next((h for h in self._scoped_hooks(request) if h.id == wanted), None)
        if hook is None:
            raise not_found()
        return hook

    def _hook_json(self, hook: FakeHook) -> dict[str, Any]:
        api = f"{self.url}/{hook.scope}/hooks/{hook.id}"
        data: dict[str, Any] = {
            "type": "Repository" if hook.repo else "Organization", "id": hook.id, "name": "web",
            "active": True, "events": hook.events,
            "config": {"content_type": "json", "insecure_ssl": "0", "url": hook.url,
                       **({"secret": "********"} if hook.secret else {})},
            "updated_at": "2024-01-01T00:00:00Z", "created_at": "2024-01-01T00:00:00Z",
            "url": api, "ping_url": f"{api}/pings", "deliveries_url": f"{api}/deliveries"}
        if hook.repo:
            data["test_url"] = f"{api}/test"
            data["last_response"] = {"code": None, "status": "unused", "message": None}
        return data

    async def _list_hooks(self, request: web.Request) -> web.Response:
        chunk, headers = _paginate(request, [self._hook_json(h) for h in self._scoped_hooks(request)])
        return _json(chunk, headers=headers)

    async def _repo_hook_deliveries(self, request: web.Request) -> web.Response:
        return self._delivery_page(request, self._scoped_hook(request).deliveries)

    async def _repo_hook_redeliver(self, request: web.Request) -> web.Response:
        return await self._redeliver(request, self._scoped_hook(request))

    def _installation(self, request: web.Request) -> FakeInstallation:
        inst = self.installations.get(int(request.match_info["installation_id"]))
        if inst is None:
            raise ApiError(404, "Not Found")
        return inst

    async def _get_installation(self, request: web.Request) -> web.Response:
        self._require(request, "jwt")
        return _json(self.installation_json(self._installation(request)))

    async def _create_token(self, request: web.Request) -> web.Response:
        self._require(request, "jwt")
        inst = self._installation(request)
        if inst.suspended:
            raise ApiError(403, "This installation has been suspended")
        body = request[BODY] or {}
        scoped: set[str] | None = None
        names = body.get("repositories")
        if names is not None:
            scoped = set()
            for name in names:
                repo = self.repos.get(f"{inst.account}/{name}".lower())
                if repo is None or not inst.covers(repo):
                    raise ApiError(422, "There is at least one repository that does not exist or is "
                                        "not accessible to the parent installation.")
                scoped.add(repo.full_name.lower())
        issued = IssuedToken(_random_token("ghs_"), inst.id, time.time() + self.token_lifetime, scoped)
        self.tokens[issued.token] = issued
        data: dict[str, Any] = {"token": issued.token, "expires_at": _iso(issued.expires_at),
                                "permissions": dict(inst.permissions),
                                "repository_selection": "selected" if scoped is not None
                                else inst.repository_selection}
        if scoped is not None:
            data["repositories"] = [self.repo(n).to_json() for n in sorted(scoped)]
        return _json(data, status=201)

    async def _installation_repositories(self, request: web.Request) -> web.Response:
        principal = self._require(request, "installation")
        repos = [r for r in self.repos.values()
                 if principal.installation is not None and principal.installation.covers(r)
                 and self.can_see(principal, r)]
        page, links = _paginate(request, sorted(repos, key=lambda r: r.full_name.lower()))
        return _json({"total_count": len(repos), "repository_selection":
                      principal.installation.repository_selection if principal.installation else "all",
                      "repositories": [r.to_json() for r in page]}, headers=links)

    async def _repo_installation(self, request: web.Request) -> web.Response:
        self._require(request, "jwt")
        repo = self.repos.get(f"{request.match_info['owner']}/{request.match_info['repo']}".lower())
        inst = self._installation_for(repo) if repo is not None else None
        if inst is None:
            raise ApiError(404, "Not Found")
        return _json(self.installation_json(inst))

    async def _get_repo_by_id(self, request: web.Request) -> web.StreamResponse:
        """``GET /repositories/{id}``: the repository whatever its name is now (renames, transfers)."""
        principal = self._require(request, "installation", "user")
        wanted = int(request.match_info["repository_id"])
        repo = next((r for r in self.repos.values() if r.id == wanted), None)
        if repo is None or not self.can_see(principal, repo):
            raise not_found()
        return self._repo_answer(request, principal, repo)

    async def _get_repo(self, request: web.Request) -> web.StreamResponse:
        principal = self._require(request, "installation", "user")
        return self._repo_answer(request, principal, self._visible_repo(request, principal))

    def _repo_answer(self, request: web.Request, principal: Principal, repo: FakeRepo) -> web.StreamResponse:
        data = repo.to_json()
        if principal.kind == "user":
            data["permissions"] = {"admin": True, "maintain": True, "push": True, "triage": True,
                                   "pull": True}
        return _conditional(request, data)

    async def _starred(self, request: web.Request) -> web.StreamResponse:
        principal = self._require(request, "installation", "user")
        user = request.match_info["username"]
        known = {u.lower(): u for u in self.users}
        if user.lower() not in known:
            raise ApiError(404, "Not Found")
        starred = self.stars.get(known[user.lower()], {})
        sort = request.query.get("sort", "created")
        if sort not in ("created", "updated"):
            raise ApiError(422, "Validation Failed", extra={"errors": [
                {"resource": "Search", "field": "sort", "code": "invalid"}]})
        descending = request.query.get("direction", "desc") != "asc"
        entries = [(at, self.repo(name)) for name, at in starred.items()]
        entries = [(at, r) for at, r in entries if self.can_see(principal, r)]
        key = (lambda e: e[0]) if sort == "created" else (lambda e: e[1].pushed_at)
        entries.sort(key=key, reverse=descending)
        page, links = _paginate(request, entries)
        if "application/vnd.github.star+json" in request.headers.get("Accept", ""):
            items: list[Any] = [{"starred_at": _iso(at), "repo": r.to_json()} for at, r in page]
        else:
            items = [r.to_json() for _, r in page]
        return _conditional(request, items, headers=links)

    # ----- check runs -------------------------------------------------------------------

    def _checks_repo(self, request: web.Request, *, write: bool) -> tuple[FakeRepo, Principal]:
        principal = request[PRINCIPAL]
        if principal is not None and principal.kind == "user" and write:
            raise ApiError(403, "You must authenticate via a GitHub App.")
        principal = self._require(request, "installation", "user")
        repo = self._visible_repo(request, principal)
        if write:
            assert principal.installation is not None
            if not principal.installation.covers(repo) or \
                    principal.installation.permissions.get("checks") != "write":
                raise ApiError(403, "Resource not accessible by integration")
        return repo, principal

    def _apply_check_fields(self, run: dict[str, Any], body: Mapping[str, Any]) -> None:
        for name in ("name", "details_url", "external_id", "started_at", "completed_at"):
            if name in body:
                run[name] = body[name]
        status = body.get("status")
        conclusion = body.get("conclusion")
        if status is not None and status not in CHECK_STATUSES:
            raise ApiError(422, f"Invalid request.\n\n{status!r} is not a valid status.")
        if conclusion is not None and conclusion not in CHECK_CONCLUSIONS:
            raise ApiError(422, f"Invalid request.\n\n{conclusion!r} is not a valid conclusion.")
        if conclusion is not None or body.get("completed_at"):
            status = status or "completed"
        if status == "completed" and conclusion is None and run.get("conclusion") is None:
            raise ApiError(422, "Invalid request.\n\n\"conclusion\" wasn't supplied.")
        if status is not None:
            run["status"] = status
        if conclusion is not None:
            run["conclusion"] = conclusion
        if run["status"] == "completed" and not run.get("completed_at"):
            run["completed_at"] = _iso(time.time())
        if run["status"] != "queued" and not run.get("started_at"):
            run["started_at"] = _iso(time.time())
        output = body.get("output")
        if output is not None:
            for required in ("title", "summary"):
                if not output.get(required):
                    raise ApiError(422, f"Invalid request.\n\n\"{required}\" wasn't supplied.")
            annotations = output.get("annotations") or []
            if len(annotations) > 50:
                raise ApiError(422, "Invalid request.\n\nOnly 50 annotations are allowed per request.")
            run["output"] = {k: output.get(k) for k in ("title", "summary", "text")}
            run["annotations"].extend(annotations)
            run["annotations_out"].extend(self._annotation_json(run, a) for a in annotations)
        run["updates"].append(dict(body))

    def _annotation_json(self, run: dict[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
        """An annotation as ``GET .../annotations`` lists it."""
        return {"path": given.get("path"), "start_line": given.get("start_line"),
                "end_line": given.get("end_line"), "start_column": given.get("start_column"),
                "end_column": given.get("end_column"),
                "annotation_level": given.get("annotation_level"), "title": given.get("title"),
                "message": given.get("message"), "raw_details": given.get("raw_details"),
                "blob_href": f"{self.url}/{run['repository']}/blob/{run['head_sha']}/{given.get('path')}"}

    # -- issues: an App needs the issues permission (write to create) ---------------------

    def _issues_repo(self, request: web.Request, *, write: bool) -> FakeRepo:
        principal = self._require(request, "installation", "user")
        repo = self._visible_repo(request, principal)
        if principal.kind == "installation":
            assert principal.installation is not None
            level = principal.installation.permissions.get("issues")
            if not principal.installation.covers(repo) or level not in (
                    ("write",) if write else ("read", "write")):
                raise ApiError(403, "Resource not accessible by integration")
        return repo

    def issue_json(self, repo: FakeRepo, issue: dict[str, Any]) -> dict[str, Any]:
        api = f"{self.url}/repos/{repo.full_name}/issues/{issue['number']}"
        return {
            "id": issue["id"], "node_id": _node_id("Issue", issue["id"]), "url": api,
            "repository_url": f"{self.url}/repos/{repo.full_name}", "labels_url": api + "/labels{/name}",
            "comments_url": api + "/comments", "events_url": api + "/events",
            "html_url": f"{self.url}/{repo.full_name}/issues/{issue['number']}",
            "number": issue["number"], "state": issue["state"], "title": issue["title"],
            "body": issue["body"], "user": self.account_json(issue["user"]),
            "labels": [{"id": 1000 + i, "node_id": _node_id("Label", 1000 + i),
                        "url": f"{self.url}/repos/{repo.full_name}/labels/{name}", "name": name,
                        "description": None, "color": "ededed", "default": False}
                       for i, name in enumerate(issue["labels"])],
            "assignee": None, "assignees": [], "milestone": None, "locked": False, "comments": 0,
            "created_at": issue["created_at"], "updated_at": issue["created_at"],
            "closed_at": issue.get("closed_at"), "author_association": "NONE",
        }

    def close_issue(self, full_name: str, number: int) -> dict[str, Any]:
        """Close an issue as a person would; returns an ``issues`` ``closed`` delivery for it."""
        repo = self.repo(full_name)
        issue = self.issues[repo.full_name][number]
        issue["state"], issue["closed_at"] = "closed", "2026-11-30T12:00:00Z"
        return {"action": "closed", "issue": self.issue_json(repo, issue), "repository": repo.to_json(),
                "sender": self.account_json("octocat"),
                **self._event_installation(self._installation_for(repo))}

    async def _create_issue(self, request: web.Request) -> web.Response:
        repo = self._issues_repo(request, write=True)
        body = request[BODY] or {}
        if not body.get("title"):
            raise ApiError(422, "Validation Failed", extra={"errors": [
                {"resource": "Issue", "field": "title", "code": "missing_field"}]})
        issues = self.issues.setdefault(repo.full_name, {})
        number = len(issues) + 1
        issue = {"id": next(self._ids), "number": number, "title": str(body["title"]),
                 "body": body.get("body"), "state": "open",
                 "labels": [x if isinstance(x, str) else x.get("name") for x in body.get("labels") or []],
                 "user": "pao[bot]", "created_at": "2026-11-30T10:00:00Z"}
        issues[number] = issue
        return _json(self.issue_json(repo, issue), status=201)

    async def _list_issues(self, request: web.Request) -> web.Response:
        repo = self._issues_repo(request, write=False)
        state = request.query.get("state", "open")
        wanted = [x for x in request.query.get("labels", "").split(",") if x]
        found = [i for i in self.issues.get(repo.full_name, {}).values()
                 if (state == "all" or i["state"] == state) and all(w in i["labels"] for w in wanted)]
        found.sort(key=lambda i: -i["number"])
        page, links = _paginate(request, [self.issue_json(repo, i) for i in found])
        return _json(page, headers=links)

    async def _get_issue(self, request: web.Request) -> web.Response:
        repo = self._issues_repo(request, write=False)
        issue = self.issues.get(repo.full_name, {}).get(int(request.match_info["number"]))
        if issue is None:
            raise ApiError(404, "Not Found")
        return _json(self.issue_json(repo, issue))

    async def _create_check_run(self, request: web.Request) -> web.Response:
        repo, _ = self._checks_repo(request, write=True)
        body = request[BODY] or {}
        for required in ("name", "head_sha"):
            if not body.get(required):
                raise ApiError(422, f"Invalid request.\n\n\"{required}\" wasn't supplied.")
        head_sha = body["head_sha"]
        if len(head_sha) != 40 or repo.sha(head_sha) != head_sha:
            raise ApiError(422, f"No commit found for SHA: {head_sha}")
        run_id = next(self._ids)
        run = {"id": run_id, "repository": repo.full_name, "head_sha": head_sha,
               "name": body["name"], "external_id": None, "details_url": None, "status": "queued",
               "conclusion": None, "started_at": None, "completed_at": None,
               "output": {"title": None, "summary": None, "text": None}, "annotations": [],
               "annotations_out": [],
               "check_suite_id": self._suite_id(repo.full_name, head_sha), "updates": [],
               "created_at": time.time()}
        self._apply_check_fields(run, body)
        self.check_runs[run_id] = run
        return _json(self.check_run_json(run), status=201)

    def _stored_run(self, request: web.Request, repo: FakeRepo) -> dict[str, Any]:
        run = self.check_runs.get(int(request.match_info["check_run_id"]))
        if run is None or run["repository"] != repo.full_name:
            raise ApiError(404, "Not Found")
        return run

    async def _update_check_run(self, request: web.Request) -> web.Response:
        repo, _ = self._checks_repo(request, write=True)
        run = self._stored_run(request, repo)
        self._apply_check_fields(run, request[BODY] or {})
        return _json(self.check_run_json(run))

    async def _get_check_run(self, request: web.Request) -> web.Response:
        repo, _ = self._checks_repo(request, write=False)
        return _json(self.check_run_json(self._stored_run(request, repo)))

    async def _annotations(self, request: web.Request) -> web.Response:
        repo, _ = self._checks_repo(request, write=False)
        run = self._stored_run(request, repo)
        page, links = _paginate(request, run["annotations_out"])
        return _json(page, headers=links)

    async def _check_runs_for_ref(self, request: web.Request) -> web.StreamResponse:
        repo, _ = self._checks_repo(request, write=False)
        ref = request.match_info["ref"]
        sha = repo.sha(ref) or repo.sha(f"refs/heads/{ref}") or repo.sha(f"refs/tags/{ref}")
        if sha is None:
            raise ApiError(422, f"No commit found for SHA: {ref}")
        runs = [r for r in self.check_runs.values()
                if r["repository"] == repo.full_name and r["head_sha"] == sha]
        if "check_name" in request.query:
            runs = [r for r in runs if r["name"] == request.query["check_name"]]
        if "status" in request.query:
            runs = [r for r in runs if r["status"] == request.query["status"]]
        runs.sort(key=lambda r: r["id"], reverse=True)
        if request.query.get("filter", "latest") == "latest":
            seen: set[str] = set()
            latest = []
            for run in runs:
                if run["name"] not in seen:
                    seen.add(run["name"])
                    latest.append(run)
            runs = latest
        page, links = _paginate(request, runs)
        return _conditional(request, {"total_count": len(runs),
                                      "check_runs": [self.check_run_json(r) for r in page]},
                            headers=links)


# ----- helpers -------------------------------------------------------------------------------

_SECRET_HEADERS = {"authorization", "cookie", "proxy-authorization"}


def _masked_headers(headers: Mapping[str, str]) -> dict[str, str]:
    masked = {}
    for name, value in headers.items():
        if name.lower() in _SECRET_HEADERS:
            scheme = value.split(" ", 1)[0]
            value = f"{scheme} ***"
        masked[name] = value
    return masked


def _json(data: Any, *, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(text=json.dumps(data), status=status, headers=headers,
                        content_type="application/json", charset="utf-8")


def _conditional(request: web.Request, data: Any, *, headers: Mapping[str, str] | None = None,
                 ) -> web.StreamResponse:
    """A JSON answer with an ETag; 304 without a body when ``If-None-Match`` matches."""
    text = json.dumps(data)
    etag = 'W/"' + hashlib.sha256(text.encode()).hexdigest()[:32] + '"'
    all_headers = {"ETag": etag, "Cache-Control": "private, max-age=60, s-maxage=60",
                   "Vary": "Accept, Authorization, Cookie, X-GitHub-OTP", **(headers or {})}
    candidates = [t.strip() for t in request.headers.get("If-None-Match", "").split(",")]
    if etag in candidates or etag.removeprefix("W/") in candidates:
        return web.Response(status=304, headers=all_headers)
    return web.Response(text=text, headers=all_headers, content_type="application/json",
                        charset="utf-8")


def _paginate(request: web.Request, items: list[Any]) -> tuple[list[Any], dict[str, str]]:
    """One page of ``items`` per ``per_page``/``page``, and GitHub's ``Link`` header."""
    try:
        per_page = min(max(int(request.query.get("per_page", "30")), 1), 100)
        page = max(int(request.query.get("page", "1")), 1)
    except ValueError:
        raise ApiError(422, "Validation Failed") from None
    last = max((len(items) + per_page - 1) // per_page, 1)
    chunk = items[(page - 1) * per_page: page * per_page]

    def link(n: int, rel: str) -> str:
        query = {**request.query, "per_page": str(per_page), "page": str(n)}
        return f'<{request.url.with_query(query)}>; rel="{rel}"'

    links = []  # in GitHub's order: prev, next, last, first
    if page > 1:
        links.append(link(page - 1, "prev"))
    if page < last:
        links += [link(page + 1, "next"), link(last, "last")]
    if page > 1:
        links.append(link(1, "first"))
    return chunk, ({"Link": ", ".join(links)} if links else {})
