"""The smart-HTTP git server the fakes embed: clone, push, gzip bodies, 401 and 404."""

from __future__ import annotations

import base64
import gzip
import subprocess
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from tests.fakes.git_http import GitHttpBackend, basic_credentials

USER, PASSWORD = "alice", "s3cret-password"
AUTH = {"Authorization": aiohttp.encode_basic_auth(USER, PASSWORD)}


def git(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout.strip()


@pytest.fixture
def repos(tmp_path: Path) -> Path:
    root = tmp_path / "repos"
    bare = root / "acme" / "widgets.git"
    git("init", "--bare", "-q", "-b", "main", str(bare))
    work = tmp_path / "seed"
    git("init", "-q", "-b", "main", str(work))
    (work / "README.md").write_text("hello\n")
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "add", ".", cwd=work)
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "first", cwd=work)
    git("push", "-q", str(bare), "main", cwd=work)
    return root


@pytest.fixture
async def server(aiohttp_server, repos: Path):
    calls: list[tuple[str, str]] = []

    def authorize(request: web.Request, repo: str, service: str) -> bool:
        calls.append((repo, service))
        return basic_credentials(request) == (USER, PASSWORD)

    backend = GitHttpBackend(repos, authorize)
    app = web.Application()
    app.router.add_route("*", r"/{repo:.+\.git}/{tail:.*}", backend.route)
    srv = await aiohttp_server(app)
    srv.calls = calls
    return srv


def auth_args(user: str = USER, password: str = PASSWORD) -> list[str]:
    basic = base64.b64encode(f"{user}:{password}".encode()).decode()
    return ["-c", f"http.extraHeader=Authorization: Basic {basic}"]


async def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    import asyncio

    proc = await asyncio.create_subprocess_exec(
        "git", *args, cwd=cwd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={"GIT_TERMINAL_PROMPT": "0", "PATH": "/usr/bin:/bin", "HOME": str(cwd or "/"),
             "GIT_CONFIG_NOSYSTEM": "1"},
    )
    out, err = await proc.communicate()
    return subprocess.CompletedProcess(args, proc.returncode, out.decode(), err.decode())


async def test_clone_then_push_round_trip(server, tmp_path: Path, repos: Path):
    url = str(server.make_url("/acme/widgets.git"))
    clone = tmp_path / "clone"
    res = await run(*auth_args(), "clone", "-q", url, str(clone), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert (clone / "README.md").read_text() == "hello\n"

    (clone / "new.txt").write_text("pushed\n")
    git("add", ".", cwd=clone)
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "second", cwd=clone)
    res = await run(*auth_args(), "push", "-q", "origin", "main", cwd=clone)
    assert res.returncode == 0, res.stderr
    bare = repos / "acme" / "widgets.git"
    assert git("rev-parse", "main", cwd=bare) == git("rev-parse", "HEAD", cwd=clone)
    assert ("acme/widgets.git", "git-receive-pack") in server.calls


async def test_wrong_or_missing_credentials_get_401_basic_challenge(server):
    url = server.make_url("/acme/widgets.git/info/refs?service=git-upload-pack")
    async with aiohttp.ClientSession() as session:
        async with session.get(url) as resp:
            assert resp.status == 401
            assert resp.headers["WWW-Authenticate"].startswith("Basic")
        wrong = {"Authorization": aiohttp.encode_basic_auth(USER, "wrong")}
        async with session.get(url, headers=wrong) as resp:
            assert resp.status == 401
        async with session.get(url, headers=AUTH) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"] == "application/x-git-upload-pack-advertisement"
            assert b"# service=git-upload-pack" in await resp.read()


async def test_unknown_repository_is_404(server, tmp_path: Path):
    url = server.make_url("/acme/nope.git/info/refs?service=git-upload-pack")
    async with aiohttp.ClientSession() as session:
        async with session.get(url, headers=AUTH) as resp:
            assert resp.status == 404


async def test_gzip_request_body_is_accepted(server, repos: Path):
    """git gzips big upload-pack requests; the backend must see the inflated pkt-lines."""
    sha = git("rev-parse", "main", cwd=repos / "acme" / "widgets.git")

    def pkt(line: str) -> bytes:
        return f"{len(line) + 4:04x}{line}".encode()

    body = pkt(f"want {sha}\n") + b"0000" + pkt("done\n")
    async with aiohttp.ClientSession() as session:
        async with session.post(
            server.make_url("/acme/widgets.git/git-upload-pack"),
            data=gzip.compress(body),
            headers={"Content-Type": "application/x-git-upload-pack-request",
                     "Content-Encoding": "gzip", **AUTH},
        ) as resp:
            assert resp.status == 200, await resp.text()
            assert resp.headers["Content-Type"] == "application/x-git-upload-pack-result"
            data = await resp.read()
    assert data.startswith(b"0008NAK\n") and b"PACK" in data


async def test_dumb_protocol_is_not_served(server):
    async with aiohttp.ClientSession() as session:
        async with session.get(server.make_url("/acme/widgets.git/HEAD"),
                               headers=AUTH) as resp:
            assert resp.status == 403
