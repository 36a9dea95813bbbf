"""The installation token goes only to GitHub: a clone URL on another host never receives it."""

from __future__ import annotations

import base64

import pytest
from aiohttp import web

from app.github.hosts import github_web_url, on_github
from tests.fakes.git_http import GitHttpBackend
from tests.mirror_support import github_refs, heads_and_tags, make_history


def test_on_github_compares_scheme_host_and_port():
    assert on_github("https://github.com/octo/hello.git", "https://github.com")
    assert on_github("https://GitHub.com:443/octo/hello.git", "https://github.com/")
    assert not on_github("https://github.com.evil.example/octo/hello.git", "https://github.com")
    assert not on_github("http://github.com/octo/hello.git", "https://github.com")
    assert not on_github("https://github.com:8443/octo/hello.git", "https://github.com")
    assert not on_github("ssh://git@github.com/octo/hello.git", "https://github.com")
    assert not on_github("https://[::1/octo.git", "https://github.com")  # unparsable: not GitHub
    assert github_web_url("https://api.github.com", None) == "https://github.com"
    assert github_web_url("https://ghe.example.com/api/v3", None) == "https://ghe.example.com"


@pytest.fixture
async def elsewhere(aiohttp_server, gh):
    """Another git host serving the fake GitHub's repositories; it records every credential
    it is sent and asks for one (401) for private repositories, as a host fishing for it would."""
    seen: list[str] = []

    def authorize(request: web.Request, repo: str, service: str) -> bool:
        header = request.headers.get("Authorization")
        if header:
            seen.append(base64.b64decode(header.split(" ", 1)[1]).decode())
        return header is not None or not gh.repo(repo.removesuffix(".git")).private

    app = web.Application()
    app.router.add_route("*", r"/{repo:.+\.git}/{tail:.*}", GitHttpBackend(gh.git_root, authorize).route)
    server = await aiohttp_server(app)
    server.seen = seen
    server.base = str(server.make_url("")).rstrip("/")
    return server


async def test_a_private_repository_cloned_from_another_host_fails_without_sending_the_token(
        make_env, elsewhere):
    env = await make_env()
    inst = env.gh.install("octo", repos=["octo/secret"])
    repo = make_history(env.gh, "octo/secret", private=True, installation=inst)
    payload = env.gh.watch_payload(repo, "alice")
    payload["repository"]["clone_url"] = f"{elsewhere.base}/octo/secret.git"
    status, body = await env.deliver("watch", payload)
    assert status == 202, body
    row = await env.wait_status("octo/secret", "failed")
    assert elsewhere.seen == []  # not even asked for: no git ran against it
    assert "is not on the configured GitHub" in row["error_message"]
    assert elsewhere.base in row["error_message"] and env.gh.url in row["error_message"]
    [log] = await env.logs("octo/secret")
    assert log["status"] == "failed"  # once: retrying cannot help


async def test_a_public_repository_cloned_from_another_host_mirrors_without_the_token(
        make_env, elsewhere):
    env = await make_env()
    inst = env.gh.install("octo", repos=["octo/hello"])
    repo = make_history(env.gh, "octo/hello", installation=inst)
    payload = env.gh.watch_payload(repo, "alice")
    payload["repository"]["clone_url"] = f"{elsewhere.base}/octo/hello.git"
    status, body = await env.deliver("watch", payload)
    assert status == 202, body
    row = await env.wait_status("octo/hello", "completed")
    mirrored = env.onedev.refs(row["onedev_project_path"])
    assert mirrored and heads_and_tags(mirrored) == heads_and_tags(github_refs(repo))
    assert elsewhere.seen == []
