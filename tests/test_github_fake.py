"""The GitHub fake itself: it must refuse what GitHub refuses and answer in GitHub's shapes.

Response bodies are checked against GitHub's OpenAPI description, so the fake
cannot drift into shapes that are merely convenient.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest

from app.web import create_app
from tests.fakes.github import WEBHOOK_EXAMPLES, ZERO_SHA, AppKey, FakeGitHub, send_webhook
from tests.fakes.openapi_check import response_problems


def app_jwt(key: AppKey, *, iat: float = -60, exp: float = 540, iss: Any = None,
            private_pem: str | None = None) -> str:
    now = int(time.time())
    claims = {"iat": now + int(iat), "exp": now + int(exp), "iss": str(iss or key.app_id)}
    return jwt.encode(claims, private_pem or key.private_pem, algorithm="RS256")


async def call(fake: FakeGitHub, method: str, path: str, token: str | None = None, *,
               body: Any = None, headers: dict[str, str] | None = None,
               check_shape: bool = True) -> tuple[int, Any, Any]:
    hdrs = {"Accept": "application/vnd.github+json", **(headers or {})}
    if token:
        hdrs["Authorization"] = f"Bearer {token}"
    async with aiohttp.ClientSession() as session:
        async with session.request(method, fake.url + path, json=body, headers=hdrs) as resp:
            text = await resp.text()
            data = json.loads(text) if text else None
            if check_shape and 200 <= resp.status < 300:
                assert response_problems(method, path.split("?")[0], resp.status, data) == []
            return resp.status, data, resp.headers.copy()


async def installation_token(fake: FakeGitHub, inst_id: int) -> str:
    status, data, _ = await call(fake, "POST", f"/app/installations/{inst_id}/access_tokens",
                                 app_jwt(fake.app_key))
    assert status == 201, data
    return data["token"]


@pytest.fixture
def org(github_fake: FakeGitHub):
    inst = github_fake.install("acme")
    public = github_fake.create_repo("acme/public", installation=inst, files={"README.md": "hi\n"})
    secret = github_fake.create_repo("acme/secret", private=True, installation=inst,
                                     files={"a.txt": "a\n"})
    other = github_fake.create_repo("acme/other-private", private=True, files={"x": "x"})
    return inst, public, secret, other


async def test_access_token_needs_a_valid_app_jwt(github_fake, org, github_app_key):
    inst = org[0]
    path = f"/app/installations/{inst.id}/access_tokens"
    status, data, _ = await call(github_fake, "POST", path, app_jwt(github_app_key))
    assert status == 201 and data["token"].startswith("ghs_")
    assert data["permissions"] == inst.permissions
    expires = time.mktime(time.strptime(data["expires_at"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    assert abs(expires - (time.time() + 3600)) < 5

    other_key = AppKey.generate()
    cases = {
        "A JSON web token could not be decoded": app_jwt(github_app_key, private_pem=other_key.private_pem),
        "'Expiration time' claim ('exp') is too far in the future": app_jwt(github_app_key, iat=0, exp=660),
        "'Expiration time' claim ('exp') must be a numeric value representing the future time at which "
        "the assertion expires": app_jwt(github_app_key, iat=-700, exp=-10),
        "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was "
        "issued": app_jwt(github_app_key, iat=120, exp=500),
    }
    for message, token in cases.items():
        status, data, _ = await call(github_fake, "POST", path, token)
        assert (status, data["message"]) == (401, message)
        assert data["documentation_url"].startswith("https://docs.github.com/")
    status, data, _ = await call(github_fake, "POST", path, github_fake.personal_token)
    assert (status, data["message"]) == (401, "A JSON web token could not be decoded")
    status, data, _ = await call(github_fake, "POST", "/app/installations/999999/access_tokens",
                                 app_jwt(github_app_key))
    assert (status, data["message"]) == (404, "Not Found")


async def test_get_app_and_repo_installation(github_fake, org, github_app_key):
    status, data, _ = await call(github_fake, "GET", "/app", app_jwt(github_app_key))
    assert status == 200 and data["id"] == github_app_key.app_id
    status, data, _ = await call(github_fake, "GET", "/repos/acme/secret/installation",
                                 app_jwt(github_app_key))
    assert status == 200 and data["id"] == org[0].id and data["account"]["login"] == "acme"
    status, _, _ = await call(github_fake, "GET", "/repos/acme/other-private/installation",
                              app_jwt(github_app_key))
    assert status == 404


async def test_repository_visibility(github_fake, org):
    inst, _public, _secret, _other = org
    token = await installation_token(github_fake, inst.id)

    status, data, _ = await call(github_fake, "GET", "/repos/acme/secret")
    assert (status, data["message"]) == (401, "Requires authentication")
    status, data, _ = await call(github_fake, "GET", "/repos/acme/secret", "ghs_not-a-real-token")
    assert status == 401 and data == {"message": "Bad credentials",
                                      "documentation_url": "https://docs.github.com/rest",
                                      "status": "401"}
    status, data, _ = await call(github_fake, "GET", "/repos/acme/secret", token)
    assert status == 200
    assert data["full_name"] == "acme/secret" and data["private"] is True
    assert data["clone_url"] == f"{github_fake.url}/acme/secret.git"
    assert data["owner"]["login"] == "acme" and data["default_branch"] == "main"
    status, data, _ = await call(github_fake, "GET", "/repos/acme/other-private", token)
    assert (status, data["message"]) == (404, "Not Found")
    status, _, _ = await call(github_fake, "GET", "/repos/acme/nope", token)
    assert status == 404
    status, _, _ = await call(github_fake, "GET", "/repos/acme/other-private", github_fake.personal_token)
    assert status == 200

    github_fake.revoke(token)
    status, data, _ = await call(github_fake, "GET", "/repos/acme/secret", token)
    assert (status, data["message"]) == (401, "Bad credentials")

    token = await installation_token(github_fake, inst.id)
    github_fake.uninstall(inst)
    assert (await call(github_fake, "GET", "/repos/acme/secret", token))[0] == 401


async def test_tokens_expire(github_fake, org):
    token = await installation_token(github_fake, org[0].id)
    assert (await call(github_fake, "GET", "/repos/acme/secret", token))[0] == 200
    # The hour passes: move the token's expiry into the past instead of sleeping, so a
    # slow machine can't let it expire before the first call.
    github_fake.tokens[token].expires_at = time.time() - 1
    assert (await call(github_fake, "GET", "/repos/acme/secret", token))[0] == 401


async def test_starred_paginates_with_links_and_etags(github_fake, org):
    for n in range(5):
        github_fake.create_repo(f"people/r{n}")
        github_fake.star("alice", f"people/r{n}", at=1_700_000_000 + n)
    github_fake.star("alice", "acme/other-private", at=1_800_000_000)
    token = await installation_token(github_fake, org[0].id)

    status, page1, headers = await call(github_fake, "GET", "/users/alice/starred?per_page=2", token)
    assert status == 200
    assert [r["full_name"] for r in page1] == ["people/r4", "people/r3"]  # newest star first
    assert 'rel="next"' in headers["Link"] and "page=3" in headers["Link"]
    seen = [r["full_name"] for r in page1]
    link = headers["Link"]
    while 'rel="next"' in link:
        next_url = next(part.split(";")[0].strip(" <>") for part in link.split(",") if 'rel="next"' in part)
        status, page, hdrs = await call(github_fake, "GET", next_url.removeprefix(github_fake.url), token)
        seen += [r["full_name"] for r in page]
        link = hdrs.get("Link", "")
    assert seen == ["people/r4", "people/r3", "people/r2", "people/r1", "people/r0"]  # private hidden

    status, _, _ = await call(github_fake, "GET", "/users/alice/starred?per_page=2", token,
                              headers={"If-None-Match": headers["ETag"]})
    assert status == 304
    github_fake.star("alice", "people/r0", at=1_750_000_000)
    status, _, _ = await call(github_fake, "GET", "/users/alice/starred?per_page=2", token,
                              headers={"If-None-Match": headers["ETag"]})
    assert status == 200
    status, data, _ = await call(github_fake, "GET", "/users/alice/starred", github_fake.personal_token,
                                 headers={"Accept": "application/vnd.github.star+json"})
    assert status == 200 and data[0]["repo"]["full_name"] == "acme/other-private"
    assert data[0]["starred_at"] == "2027-01-15T08:00:00Z"
    assert (await call(github_fake, "GET", "/users/nobody/starred", token))[0] == 404


async def test_check_runs_round_trip(github_fake, org):
    inst, public, _secret, _other = org
    token = await installation_token(github_fake, inst.id)
    sha = public.sha()
    status, run, _ = await call(github_fake, "POST", "/repos/acme/public/check-runs", token, body={
        "name": "catalog", "head_sha": sha, "status": "in_progress", "external_id": "42"})
    assert status == 201 and run["status"] == "in_progress" and run["started_at"]
    annotations = [{"path": "README.md", "start_line": 1, "end_line": 1, "annotation_level": "failure",
                    "message": "bad"}]
    status, run, _ = await call(
        github_fake, "PATCH", f"/repos/acme/public/check-runs/{run['id']}", token,
        body={"conclusion": "failure", "output": {"title": "1 problem", "summary": "s",
                                                  "annotations": annotations}})
    assert status == 200 and run["status"] == "completed" and run["conclusion"] == "failure"
    assert run["output"]["annotations_count"] == 1
    status, listed, _ = await call(github_fake, "GET", "/repos/acme/public/commits/main/check-runs", token)
    assert status == 200 and listed["total_count"] == 1
    assert listed["check_runs"][0]["id"] == run["id"]
    assert github_fake.check_runs[run["id"]]["annotations"] == annotations

    status, data, _ = await call(github_fake, "POST", "/repos/acme/public/check-runs", token,
                                 body={"name": "catalog", "head_sha": "f" * 40})
    assert (status, data["message"]) == (422, f"No commit found for SHA: {'f' * 40}")
    status, data, _ = await call(github_fake, "POST", "/repos/acme/public/check-runs",
                                 github_fake.personal_token, body={"name": "catalog", "head_sha": sha})
    assert (status, data["message"]) == (403, "You must authenticate via a GitHub App.")
    github_fake.openapi_violations.clear()
    status, data, _ = await call(github_fake, "POST", "/repos/acme/public/check-runs", token,
                                 body={"name": "catalog", "head_sha": sha, "status": "completed"})
    assert status == 422
    status, _, _ = await call(github_fake, "POST", "/repos/acme/public/check-runs", token,
                              body={"name": "x", "head_sha": sha, "status": "bogus"})
    assert status == 422
    assert any("'bogus' is not one of" in v for v in github_fake.openapi_violations)
    github_fake.openapi_violations.clear()


async def test_requests_are_recorded_without_secrets(github_fake, org):
    token = await installation_token(github_fake, org[0].id)
    await call(github_fake, "GET", "/repos/acme/public?x=1", token, check_shape=False)
    rec = github_fake.requests[-1]
    assert (rec.method, rec.path, rec.query, rec.status, rec.auth) == (
        "GET", "/repos/acme/public", {"x": "1"}, 200, "installation")
    assert rec.headers["Authorization"] == "Bearer ***"
    assert token not in repr(github_fake.requests)
    assert github_fake.openapi_violations == ["GET /repos/acme/public: unknown query parameter 'x'"]
    github_fake.openapi_violations.clear()


def git(*args: str, cwd: Path | None = None, token: str | None = None, user: str = "x-access-token",
        ) -> subprocess.CompletedProcess:
    import base64

    pre = []
    if token:
        basic = base64.b64encode(f"{user}:{token}".encode()).decode()
        pre = ["-c", f"http.extraHeader=Authorization: Basic {basic}"]
    return subprocess.run(["git", *pre, *args], cwd=cwd, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(cwd or "/tmp"),
                               "GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1"})


async def test_git_hosting_authenticates_like_github(github_fake, org, tmp_path):
    inst, _public, secret, other = org
    token = await installation_token(github_fake, inst.id)
    run = asyncio.to_thread

    res = await run(git, "clone", "-q", secret.clone_url, str(tmp_path / "c1"), cwd=tmp_path, token=token)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "c1" / "a.txt").read_text() == "a\n"
    res = await run(git, "ls-remote", secret.clone_url, cwd=tmp_path)
    assert res.returncode != 0 and github_fake.git_requests[-1]["status"] == 401
    res = await run(git, "ls-remote", secret.clone_url, cwd=tmp_path, token=token, user="someone")
    assert res.returncode != 0 and github_fake.git_requests[-1]["status"] == 401
    res = await run(git, "ls-remote", other.clone_url, cwd=tmp_path, token=token)
    assert res.returncode != 0 and "not found" in res.stderr
    res = await run(git, "ls-remote", f"{github_fake.url}/acme/missing.git", cwd=tmp_path, token=token)
    assert res.returncode != 0 and "not found" in res.stderr

    # The App only reads contents: its token may not push; a personal token may.
    clone = tmp_path / "c1"
    (clone / "b.txt").write_text("b\n")
    git("add", ".", cwd=clone)
    git("-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qm", "b", cwd=clone)
    res = await run(git, "push", "-q", "origin", "main", cwd=clone, token=token)
    assert res.returncode != 0 and "403" in res.stderr
    res = await run(git, "push", "-q", "origin", "main", cwd=clone, token=github_fake.personal_token,
                    user="pao-admin")
    assert res.returncode == 0, res.stderr
    assert secret.read("b.txt") == b"b\n"

    github_fake.revoke(token)
    res = await run(git, "ls-remote", secret.clone_url, cwd=tmp_path, token=token)
    assert res.returncode != 0
    assert [r["status"] for r in github_fake.git_requests][-1] == 401


def test_repo_helpers_write_commits_branches_tags(github_fake):
    repo = github_fake.create_repo("acme/cat")
    first = repo.commit({"services/a.yaml": "name: a\n", "dir with space/b.txt": b"\x00bin"})
    second = repo.commit({"services/a.yaml": "name: a2\n", "dir with space/b.txt": None,
                          "services/c.yaml": "name: c\n"}, "second")
    assert repo.read("services/a.yaml") == b"name: a2\n"
    assert repo.read("dir with space/b.txt") is None
    assert repo.read("dir with space/b.txt", first) == b"\x00bin"
    feature = repo.commit({"x": "y"}, branch="feature", base="main")
    assert repo.git("rev-parse", f"{feature}^") == second
    created = github_fake.push_payload(repo, before=ZERO_SHA, ref="refs/heads/feature")
    assert created["created"] and [c["id"] for c in created["commits"]] == [feature]
    repo.tag("v1", first)
    repo.tag("v2", second, message="release 2")
    assert repo.sha("v1") == first and repo.sha("v2") == second
    rewritten = repo.commit({"only.txt": "1"}, parent=first, replace=True)  # force push
    assert repo.sha("main") == rewritten and repo.read("services/a.yaml") is None

    payload = github_fake.push_payload(repo, before=first, after=second)
    [commit] = payload["commits"]
    assert commit["id"] == second and commit["message"] == "second"
    assert commit["added"] == ["services/c.yaml"]
    assert commit["removed"] == ["dir with space/b.txt"]
    assert commit["modified"] == ["services/a.yaml"]
    assert payload["head_commit"] == commit and payload["repository"]["full_name"] == "acme/cat"
    assert isinstance(payload["repository"]["pushed_at"], int)
    tag_push = github_fake.push_payload(repo, before=ZERO_SHA, ref="refs/tags/v2")
    assert tag_push["after"] == repo.ref_target("refs/tags/v2") != second  # the annotated tag object
    repo.set_ref("feature", None)
    assert repo.sha("refs/heads/feature") is None


def test_webhook_payloads_are_githubs_examples_filled_in(github_fake, org):
    org, repo = org[0], org[1]
    built = {
        ("push", ""): github_fake.push_payload(repo, before=ZERO_SHA),
        ("star", "created"): github_fake.star_payload(repo, "alice"),
        ("star", "deleted"): github_fake.star_payload(repo, "alice", action="deleted"),
        ("watch", "started"): github_fake.watch_payload(repo, "alice"),
        ("ping", ""): github_fake.ping_payload(),
        ("installation", "created"): github_fake.installation_payload(org),
        ("pull_request", "opened"): github_fake.pull_request_payload(repo, head_ref="main"),
        ("check_suite", "requested"): github_fake.check_suite_payload(repo, head_sha=repo.sha()),
    }
    for (event, action), payload in built.items():
        example = WEBHOOK_EXAMPLES[event][action]
        # Only fields GitHub's example has (plus the App's installation), all of them
        # except the example's own organisation and enterprise.
        assert set(payload) - {"installation"} <= set(example), (event, action)
        assert set(example) - set(payload) <= {"organization", "enterprise", "installation"}
    assert built[("star", "created")]["starred_at"] and built[("star", "deleted")]["starred_at"] is None
    assert built[("star", "created")]["repository"]["full_name"] == "acme/public"
    assert built[("push", "")]["installation"]["id"] == org.id
    with pytest.raises(ValueError, match="no 'watch' webhook with action 'deleted'"):
        github_fake.watch_payload(repo, "alice", action="deleted")  # GitHub never sends it


async def test_send_webhook_is_accepted_by_pao_intake(github_fake, aiohttp_server, runtime, pool):
    from tests.conftest import WEBHOOK_SECRET

    server = await aiohttp_server(create_app(runtime))
    inst = github_fake.install("acme")
    repo = github_fake.create_repo("acme/cat", installation=inst, files={"a": "1"})
    url = str(server.make_url("/api/v1/webhooks/github"))
    result = await send_webhook(url, "installation", github_fake.installation_payload(inst),
                                WEBHOOK_SECRET)
    assert result.status in (200, 202), result.body
    row = await pool.fetchrow("SELECT * FROM webhook_events WHERE delivery_id = $1", result.delivery_id)
    assert row["signature_valid"] and row["event"] == "installation"
    for event, payload in [
        ("push", github_fake.push_payload(repo, before=ZERO_SHA)),
        ("watch", github_fake.watch_payload(repo, "alice")),
        ("pull_request", github_fake.pull_request_payload(repo, head_ref="main")),
        ("check_suite", github_fake.check_suite_payload(repo, head_sha=repo.sha())),
    ]:
        result = await send_webhook(url, event, payload, WEBHOOK_SECRET)
        assert result.status in (200, 202), (event, result.body)
    result = await send_webhook(url, "push", {"ref": "x"}, "wrong-secret")
    assert result.status == 401


async def test_unknown_paths_and_methods_get_githubs_404(github_fake, org):
    token = await installation_token(github_fake, org[0].id)
    for method, path in [("GET", "/nope"), ("DELETE", "/repos/acme/public")]:
        status, data, _ = await call(github_fake, method, path, token, check_shape=False)
        assert (status, data["message"]) == (404, "Not Found")
    github_fake.openapi_violations.clear()  # the calls above are deliberately off-spec


async def test_off_spec_answers_of_the_fake_are_caught(github_fake, org):
    """The fake checks its own answers too, so it cannot drift from GitHub's shapes."""
    org[1].size_kb = "large"  # a repository's size is an integer on GitHub
    await call(github_fake, "GET", "/repos/acme/public", github_fake.personal_token, check_shape=False)
    assert github_fake.response_violations == [
        "GET /repos/acme/public -> 200: size: 'large' is not of type 'integer'"]
    github_fake.response_violations.clear()
