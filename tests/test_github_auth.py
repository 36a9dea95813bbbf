"""GitHub App authentication (app.github) and authenticated git (app.git.run) against the fake."""

from __future__ import annotations

import asyncio
import base64
import time
from pathlib import Path

import aiohttp
import pytest

from app.git.run import GitAuthError, GitNotFoundError, run_git
from app.github import TOKEN_REFRESH_MARGIN, GitHubAuthError, GitHubClients
from tests.fakes.github import AppKey, FakeGitHub
from tests.fakes.openapi_check import assert_request_valid


@pytest.fixture
def org(github_fake: FakeGitHub):
    inst = github_fake.install("acme")
    repo = github_fake.create_repo("acme/catalog", private=True, installation=inst,
                                   files={"services/api.yaml": "name: api\n"})
    return inst, repo


@pytest.fixture
async def clients(github_fake: FakeGitHub, http_session: aiohttp.ClientSession) -> GitHubClients:
    key = github_fake.app_key
    return GitHubClients(http_session, api_url=github_fake.url, app_id=str(key.app_id),
                         private_key=key.private_pem)


def token_posts(fake: FakeGitHub) -> list:
    return [r for r in fake.requests if r.method == "POST" and r.path.endswith("/access_tokens")]


async def test_app_jwt_is_accepted_and_short_lived(github_fake, org, clients):
    inst, _ = org
    before = time.time()
    token = await clients.installation_token(inst.id)
    assert github_fake.tokens[token].installation_id == inst.id
    [claims] = github_fake.jwt_claims
    assert claims["iss"] == str(github_fake.app_key.app_id)
    assert before - 61 <= claims["iat"] <= time.time() - 59  # 60 s in the past, for clock drift
    assert claims["exp"] - claims["iat"] <= 600
    [post] = token_posts(github_fake)
    assert post.auth == "jwt" and post.status == 201


async def test_token_is_cached_until_a_few_minutes_before_expiry(github_fake, org, clients, monkeypatch):
    inst, _ = org
    first = await clients.installation_token(inst.id)
    assert await clients.token(inst.id) == first
    assert len(token_posts(github_fake)) == 1

    expires_at = github_fake.tokens[first].expires_at
    real_time = time.time
    # Both PAO and the fake read this clock, so the JWT stays valid at the moved time.
    monkeypatch.setattr(time, "time", lambda: expires_at - TOKEN_REFRESH_MARGIN - 1)
    assert await clients.token(inst.id) == first
    assert len(token_posts(github_fake)) == 1
    monkeypatch.setattr(time, "time", lambda: expires_at - TOKEN_REFRESH_MARGIN + 1)
    second = await clients.token(inst.id)
    assert second != first and len(token_posts(github_fake)) == 2
    monkeypatch.setattr(time, "time", real_time)


async def test_revoked_token_is_refreshed_once_and_the_call_succeeds(github_fake, org, clients):
    inst, _ = org
    gh = await clients.api(inst.id)
    assert (await gh.getitem("/repos/acme/catalog"))["private"] is True
    github_fake.revoke_all()

    others = [await clients.api(inst.id) for _ in range(4)]
    results = await asyncio.gather(*(c.getitem("/repos/{owner}/{repo}", url_vars={
        "owner": "acme", "repo": "catalog"}) for c in [gh, *others]))
    assert all(r["full_name"] == "acme/catalog" for r in results)
    # Five requests failed on the revoked token; one replacement served them all.
    assert len(token_posts(github_fake)) == 2
    statuses = [r.status for r in github_fake.requests if r.path == "/repos/acme/catalog"]
    assert statuses[0] == 200 and statuses[1:6] == [401] * 5
    assert len(statuses) == 11
    assert set(statuses[6:]) <= {200, 304}  # 304: the shared ETag cache answered


async def test_refresh_happens_once_not_in_a_loop(github_fake, org, clients):
    inst, _ = org
    github_fake.token_lifetime = -1  # every token GitHub issues is already dead
    gh = await clients.api(inst.id)
    with pytest.raises(Exception) as info:
        await gh.getitem("/repos/acme/catalog")
    assert getattr(info.value, "status_code", None) == 401
    assert len(token_posts(github_fake)) == 2  # the first token, then one refresh


async def test_token_mode_works_without_an_app(github_fake, org, http_session):
    clients = GitHubClients(http_session, api_url=github_fake.url, token=github_fake.personal_token)
    assert not clients.app_mode
    assert await clients.token() == github_fake.personal_token
    gh = await clients.api()
    assert (await gh.getitem("/repos/acme/catalog"))["default_branch"] == "main"
    assert token_posts(github_fake) == [] and github_fake.jwt_claims == []
    assert {r.auth for r in github_fake.requests} == {"user"}


async def test_conditional_requests_use_the_shared_etag_cache(github_fake, org, clients):
    inst, _ = org
    gh = await clients.api(inst.id)
    first = await gh.getitem("/repos/acme/catalog")
    second = await gh.getitem("/repos/acme/catalog")
    assert first == second
    assert [r.status for r in github_fake.requests if r.path == "/repos/acme/catalog"] == [200, 304]


@pytest.mark.parametrize("case", ["unknown-installation", "wrong-key", "suspended"])
async def test_refused_token_request_is_a_clear_auth_error(github_fake, org, http_session, case):
    inst, _ = org
    key = github_fake.app_key
    installation_id = inst.id
    if case == "unknown-installation":
        installation_id = 987654
    elif case == "wrong-key":
        key = AppKey.generate(app_id=key.app_id)
    else:
        inst.suspended = True
    clients = GitHubClients(http_session, api_url=github_fake.url, app_id=str(key.app_id),
                            private_key=key.private_pem)
    with pytest.raises(GitHubAuthError) as info:
        await clients.api(installation_id)
    message = str(info.value)
    assert f"GitHub refused an installation token for installation {installation_id}" in message
    expected = {"unknown-installation": "404 Not Found",
                "wrong-key": "401 A JSON web token could not be decoded",
                "suspended": "403 This installation has been suspended"}[case]
    assert expected in message
    assert "eyJ" not in message  # the JWT never reaches the message


async def test_app_mode_without_installation_and_no_credentials(http_session, github_fake):
    with pytest.raises(GitHubAuthError, match="PAO_APP_ID/PAO_PRIVATE_KEY or PAO_REPO_TOKEN"):
        await GitHubClients(http_session, api_url=github_fake.url).api()


async def test_what_pao_sends_matches_githubs_openapi(github_fake, org, clients):
    inst, repo = org
    gh = await clients.api(inst.id)
    await gh.getitem("/repos/acme/catalog")
    app_gh = clients.app_api()
    await app_gh.getitem("/app", jwt=clients.jwt())
    await app_gh.getitem("/repos/acme/catalog/installation", jwt=clients.jwt())
    run = await gh.post("/repos/acme/catalog/check-runs",
                        data={"name": "catalog", "head_sha": repo.sha(), "status": "in_progress"})
    await gh.patch(f"/repos/acme/catalog/check-runs/{run['id']}",
                   data={"conclusion": "success", "output": {"title": "ok", "summary": "fine"}})
    assert len(github_fake.requests) >= 6
    for request in github_fake.requests:
        assert_request_valid(request.method, request.path, request.json, request.query)
    assert github_fake.openapi_violations == []


# ----- git --------------------------------------------------------------------------------


def _process_cmdlines() -> list[str]:
    lines = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                lines.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
            except OSError:
                continue
    return lines


async def test_clone_private_repo_token_stays_out_of_argv_disk_and_errors(github_fake, org, clients,
                                                                          tmp_path):
    inst, repo = org
    token = await clients.token(inst.id)
    basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    secrets = (token, basic)
    dest = tmp_path / "clone"

    github_fake.git_delay = 0.3  # slow enough to watch the git processes while they run
    clone = asyncio.create_task(run_git(["clone", "--quiet", repo.clone_url, str(dest)], token=token))
    seen: list[str] = []
    while not clone.done():
        seen += [c for c in _process_cmdlines() if repo.clone_url in c]
        await asyncio.sleep(0.02)
    await clone
    github_fake.git_delay = 0.0
    assert any(c.startswith("git clone") for c in seen), "never saw the clone running"
    assert any("remote-http" in c for c in seen), "never saw git's HTTP helper"
    assert not [c for c in seen if any(s in c for s in secrets)]

    assert (dest / "services" / "api.yaml").read_text() == "name: api\n"
    for path in (dest / ".git").rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert not any(s.encode() in data for s in secrets), f"token written to {path}"
    result = await run_git(["remote", "get-url", "origin"], cwd=dest)
    assert result.stdout.decode().strip() == repo.clone_url

    github_fake.revoke(token)
    with pytest.raises(GitAuthError) as info:
        await run_git(["fetch", "origin"], cwd=dest, token=token)
    text = f"{info.value} {info.value.output} {info.value.git_args}"
    assert not any(s in text for s in secrets)


async def test_missing_repository_is_git_not_found(github_fake, org, clients, tmp_path):
    inst, _ = org
    token = await clients.token(inst.id)
    with pytest.raises(GitNotFoundError):
        await run_git(["ls-remote", f"{github_fake.url}/acme/no-such-repo.git"], token=token)


async def test_no_token_is_an_auth_error_not_a_prompt(github_fake, org, tmp_path):
    _, repo = org
    with pytest.raises(GitAuthError):
        await run_git(["ls-remote", repo.clone_url], timeout=20)


async def test_rate_limited_token_request_stays_retryable(aiohttp_server, github_app_key):
    """A 429 (or a rate-limit 403) minting a token is not bad credentials: no GitHubAuthError."""
    from aiohttp import web
    from gidgethub import BadRequest

    async def limited(request: web.Request) -> web.Response:
        return web.json_response(
            {"message": "API rate limit exceeded for installation.",
             "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"},
            status=429, headers={"Retry-After": "30", "X-RateLimit-Remaining": "0",
                                 "X-RateLimit-Limit": "5000", "X-RateLimit-Reset": "2000000000"})

    app = web.Application()
    app.router.add_post("/app/installations/{id}/access_tokens", limited)
    server = await aiohttp_server(app)
    async with aiohttp.ClientSession() as session:
        clients = GitHubClients(session, api_url=str(server.make_url("")).rstrip("/"),
                                app_id=str(github_app_key.app_id),
                                private_key=github_app_key.private_pem)
        with pytest.raises(BadRequest) as info:
            await clients.installation_token(7)
        assert not isinstance(info.value, GitHubAuthError)
