"""Serve bare git repositories over git's smart HTTP protocol from an aiohttp app.

The real ``git http-backend`` does the work, run as a CGI program per request, so
clients talk to genuine upload-pack / receive-pack. Fakes embed it like this::

    backend = GitHttpBackend(root, authorize=my_check)
    app.router.add_route("*", r"/{repo:.+\\.git}/{tail:.*}", backend.route)

``root`` holds the bare repositories (``root/owner/name.git``); the ``repo`` match
is the repository path under it and ``tail`` the smart-HTTP path (``info/refs``,
``git-upload-pack``, ``git-receive-pack``). Only the smart protocol is served.

Authorization is the embedder's: ``authorize(request, repo, service)`` (sync or
async) returns True to allow, False to answer 401 with ``WWW-Authenticate: Basic``
(missing or wrong credentials), or raises an ``aiohttp.web.HTTPException`` (e.g.
``HTTPNotFound`` to hide a private repository). It is called before the
repository's existence is checked, so a host can refuse anonymous callers
without revealing which repositories exist; an allowed request for a repository
that does not exist gets 404. ``service`` is ``"git-upload-pack"`` (fetch/clone)
or ``"git-receive-pack"`` (push). ``basic_credentials(request)`` parses the
``Authorization: Basic`` header for the callback.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import inspect
import logging
import os
import zlib
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

log = logging.getLogger(__name__)

SERVICES = ("git-upload-pack", "git-receive-pack")

Authorizer = Callable[[web.Request, str, str], "bool | Awaitable[bool]"]


def basic_credentials(request: web.Request) -> tuple[str, str] | None:
    """``(username, password)`` from an ``Authorization: Basic`` header, or None."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


class GitHttpBackend:
    """An aiohttp handler that runs ``git http-backend`` for repositories under ``root``."""

    def __init__(self, root: str | Path, authorize: Authorizer | None = None, *,
                 realm: str = "git", git: str = "git"):
        self.root = Path(root)
        self.authorize = authorize
        self.realm = realm
        self.git = git

    async def route(self, request: web.Request) -> web.StreamResponse:
        """Handler for a route with ``{repo}`` and ``{tail}`` match groups (see module doc)."""
        return await self.handle(request, request.match_info["repo"], request.match_info["tail"])

    async def handle(self, request: web.Request, repo: str, tail: str) -> web.StreamResponse:
        """Serve ``tail`` (e.g. ``info/refs``) of repository ``repo`` (path under root)."""
        service = _service(request, tail)
        if service is None:
            raise web.HTTPForbidden(text="only git's smart HTTP protocol is served\n")
        repo = repo.strip("/")
        if not _safe_relative(repo):
            raise web.HTTPNotFound(text="repository not found\n")
        if self.authorize is not None:
            allowed = self.authorize(request, repo, service)
            if inspect.isawaitable(allowed):
                allowed = await allowed
            if not allowed:
                raise web.HTTPUnauthorized(
                    headers={"WWW-Authenticate": f'Basic realm="{self.realm}"'},
                    text="authentication required\n",
                )
        if not (self.root / repo / "HEAD").is_file():
            raise web.HTTPNotFound(text="repository not found\n")
        return await self._run_cgi(request, f"/{repo}/{tail}")

    async def _run_cgi(self, request: web.Request, path_info: str) -> web.StreamResponse:
        creds = basic_credentials(request)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/"),
            "GIT_PROJECT_ROOT": str(self.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "GIT_CONFIG_NOSYSTEM": "1",
            # Authorization already happened above, so receive-pack is allowed
            # whether or not the caller sent a user name.
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": "http.receivepack",
            "GIT_CONFIG_VALUE_0": "true",
            "GATEWAY_INTERFACE": "CGI/1.1",
            "SERVER_PROTOCOL": f"HTTP/{request.version.major}.{request.version.minor}",
            "REQUEST_METHOD": request.method,
            "PATH_INFO": path_info,
            "QUERY_STRING": request.query_string,
            "CONTENT_TYPE": request.headers.get("Content-Type", ""),
            "REMOTE_ADDR": request.remote or "",
            "REMOTE_USER": creds[0] if creds else "",
            "AUTH_TYPE": "Basic" if creds else "",
        }
        if "Git-Protocol" in request.headers:
            env["HTTP_GIT_PROTOCOL"] = request.headers["Git-Protocol"]
        # No CONTENT_LENGTH: the body may be decompressed on the way, and
        # http-backend reads to EOF when the length is absent.
        proc = await asyncio.create_subprocess_exec(
            self.git, "http-backend", env=env,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        feeder = asyncio.create_task(_feed(request, proc.stdin))
        errors = asyncio.create_task(proc.stderr.read())
        completed = False
        try:
            status, reason, headers = await _read_cgi_headers(proc.stdout)
            response = web.StreamResponse(status=status, reason=reason)
            for name, value in headers:
                response.headers.add(name, value)
            await response.prepare(request)
            while chunk := await proc.stdout.read(65536):
                await response.write(chunk)
            await response.write_eof()
            await feeder
            completed = True
        finally:
            if not completed and proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
            feeder.cancel()
            await proc.wait()
            stderr = await errors
            if stderr.strip():
                log.debug("git http-backend %s: %s", path_info, stderr.decode("utf-8", "replace"))
        return response


def _service(request: web.Request, tail: str) -> str | None:
    if tail == "info/refs" and request.method == "GET":
        service = request.query.get("service")
        return service if service in SERVICES else None
    if request.method == "POST" and tail in SERVICES:
        return tail
    return None


def _safe_relative(repo: str) -> bool:
    parts = repo.split("/")
    return bool(repo) and all(p not in ("", ".", "..") for p in parts) and repo.endswith(".git")


async def _feed(request: web.Request, stdin: asyncio.StreamWriter) -> None:
    """Copy the request body into the CGI's stdin, gunzipping it if git compressed it.

    git gzips large upload-pack requests (``Content-Encoding: gzip``). aiohttp's
    server normally inflates such bodies itself, so we inflate only when the
    bytes really are gzip (magic 1f 8b); a pkt-line body starts with hex digits.
    """
    encoding = request.headers.get("Content-Encoding", "").lower()
    inflater = None
    first = True
    try:
        async for chunk in request.content.iter_any():
            if first:
                first = False
                if encoding in ("gzip", "x-gzip") and chunk[:2] == b"\x1f\x8b":
                    inflater = zlib.decompressobj(wbits=31)
            if inflater is not None:
                chunk = inflater.decompress(chunk)
            stdin.write(chunk)
            await stdin.drain()
        if inflater is not None:
            stdin.write(inflater.flush())
            await stdin.drain()
    except (BrokenPipeError, ConnectionResetError):
        pass  # http-backend stopped reading (it refused the request); its answer says why
    finally:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            stdin.close()
            await stdin.wait_closed()


async def _read_cgi_headers(stdout: asyncio.StreamReader) -> tuple[int, str | None, list[tuple[str, str]]]:
    """The CGI response's status and headers (up to the blank line)."""
    status, reason = 200, None
    headers: list[tuple[str, str]] = []
    while True:
        line = await stdout.readline()
        if not line:
            raise web.HTTPBadGateway(text="git http-backend ended without a response\n")
        text = line.decode("latin-1").rstrip("\r\n")
        if not text:
            return status, reason, headers
        name, _, value = text.partition(":")
        value = value.strip()
        if name.lower() == "status":
            code, _, reason_text = value.partition(" ")
            status, reason = int(code), reason_text or None
        else:
            headers.append((name, value))
