"""A OneDev fake: the REST paths, status codes and body shapes PAO uses, plus git over HTTP.

Behaves as OneDev 12+ does for these calls:

* ``/~api/...`` needs an access token: ``Authorization: Bearer <token>`` or HTTP basic
  with the token as password (and, when ``user`` is set, that user name). Missing or
  wrong credentials: 401 with ``WWW-Authenticate``; a token without the right to
  create projects: 403. Error bodies are text/plain, as OneDev's are.
* ``POST /~api/projects`` answers the new id as a bare JSON number. The REST API does not
  check the name pattern (its bean validation is off): any name is taken, so PAO's own
  cleaning is what keeps names sane. ``gitPackConfig`` and ``codeAnalysisSetting`` objects
  are required; a duplicate name under the same parent, compared case-insensitively, is
  HTTP 500 text/plain "... already used ...".
* ``POST /~api/projects/{id}`` updates a project (PAO renames with it); same duplicate rule.
* ``GET /~api/projects/ids/{path}`` -> id or 404, the path compared case-insensitively; it
  exists only since OneDev 12.0.10 (``ids_endpoint = False`` plays 12.0.0-12.0.9: 404).
  ``GET /~api/projects?query=&offset=&count=`` matches ``"Name" is "x"`` with LIKE semantics
  (``_`` and ``*`` are wildcards, case-insensitive), so callers must re-check; a missing
  ``offset`` or ``count``, or an unknown parameter, is 406.
* ``/~api/repositories/{id}/default-branch``: GET -> the bare branch name (Jersey writes a
  ``String`` result as is, unquoted, though the content type says application/json) or 204;
  POST a JSON string (OneDev reads the body with ``mapper.readValue(body, String.class)``);
  a branch that does not exist is HTTP 500 "Branch not exist: x". Until it is set, the
  first push decides: ``main`` if it was pushed, else the last branch received.
* OneDev's receive hook forwards the pushed ref names un-encoded in a form body to the
  server, so a push naming a ref with ``+``, ``&``, ``=`` or ``%`` is refused whole.
* ``{server}/{project path}.git`` is served by ``git http-backend`` with the same auth.
* ``unavailable = True`` or ``fail_next = N`` answers 503 to everything (API and git).
* ``push_delay`` holds every receive-pack this many seconds (sets ``push_started`` first).
* ``create_delay`` holds the answer to a project creation this many seconds, the project
  already made (sets ``project_created`` first): a caller killed meanwhile never learns its id.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.fakes.git_http import GitHttpBackend, basic_credentials

QUERY_RE = re.compile(r'^"Name" is "(?P<name>[^"]*)"$')


# OneDev's hook posts the ref updates with curl as an un-encoded form body: '+' turns into
# a space, '&' and '=' split the field, '%' starts an escape, and the whole push is refused.
_PRE_RECEIVE = """#!/bin/sh
updates=$(cat)
case "$updates" in
  *[+\\&=%]*) echo "Git ref update information is not available" >&2; exit 1;;
esac
printf '%s\\n' "$updates" >> received-refs.log
"""


@dataclass
class Project:
    id: int
    name: str
    parent_id: int | None
    description: str | None
    code_management: bool
    issue_management: bool
    default_branch: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Seen:
    method: str
    path: str
    auth: str  # bearer, basic, none
    status: int = 0


class OneDevFake:
    def __init__(self, root: Path, *, tokens: dict[str, bool] | None = None,
                 user: str | None = None):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        # token -> may create projects
        self.tokens = tokens if tokens is not None else {"onedev-secret-token": True}
        self.user = user
        self.projects: dict[int, Project] = {}
        self._next_id = 1
        self.requests: list[Seen] = []
        self.unavailable = False
        self.ids_endpoint = True  # False: a OneDev older than 12.0.10
        self.fail_next = 0
        self.push_delay = 0.0
        self.push_started = asyncio.Event()
        self.create_delay = 0.0
        self.project_created = asyncio.Event()
        self.backend = GitHttpBackend(self.root, authorize=self._authorize_git, realm="OneDev")

    # -- model ----------------------------------------------------------------

    def path_of(self, project: Project) -> str:
        parts = [project.name]
        parent = project.parent_id
        while parent is not None:
            parts.append(self.projects[parent].name)
            parent = self.projects[parent].parent_id
        return "/".join(reversed(parts))

    def by_path(self, path: str) -> Project | None:
        """OneDev finds projects by path case-insensitively."""
        for project in self.projects.values():
            if self.path_of(project).lower() == path.lower():
                return project
        return None

    def repo_dir(self, path: str) -> Path:
        return self.root / f"{path}.git"

    def add_project(self, name: str, parent_id: int | None = None,
                    description: str | None = None) -> Project:
        project = Project(self._next_id, name, parent_id, description, True, False)
        self._next_id += 1
        self.projects[project.id] = project
        repo = self.repo_dir(self.path_of(project))
        repo.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["git", "init", "--bare", "--quiet", str(repo)], check=True)
        # Record the ref updates in the order they arrive, as OneDev sees them.
        hook = repo / "hooks" / "pre-receive"
        hook.write_text(_PRE_RECEIVE)
        hook.chmod(0o755)
        return project

    def received(self, path: str) -> list[str]:
        """Refs updated by pushes, in the order the pushes' commands arrived."""
        log = self.repo_dir(path) / "received-refs.log"
        if not log.exists():
            return []
        return [line.split()[2] for line in log.read_text().splitlines() if line.strip()]

    def refs(self, path: str) -> dict[str, str]:
        """Every ref of the project's repository (not only branches and tags)."""
        out = subprocess.run(
            ["git", "for-each-ref", "--format=%(objectname) %(refname)"],
            cwd=self.repo_dir(path), check=True, capture_output=True, text=True).stdout
        return {ref: sha for sha, ref in (line.split(" ", 1) for line in out.splitlines())}

    # -- auth -----------------------------------------------------------------

    def _token(self, request: web.Request) -> tuple[str | None, str]:
        header = request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip(), "bearer"
        creds = basic_credentials(request)
        if creds is not None:
            user, password = creds
            if self.user is not None and user != self.user:
                return None, "basic"
            return password, "basic"
        return None, "none"

    def _known(self, token: str | None) -> bool:
        return token is not None and any(
            hmac.compare_digest(token.encode(), t.encode()) for t in self.tokens)

    def _authorize_git(self, request: web.Request, repo: str, service: str) -> bool:
        token, _ = self._token(request)
        return self._known(token)

    # -- app ------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        r = app.router
        r.add_get("/~api/projects/ids/{path:.+}", self.project_id)
        r.add_get("/~api/projects", self.query_projects)
        r.add_post("/~api/projects", self.create_project)
        r.add_get("/~api/projects/{id:\\d+}", self.get_project)
        r.add_post("/~api/projects/{id:\\d+}", self.update_project)
        r.add_delete("/~api/projects/{id:\\d+}", self.delete_project)
        r.add_get("/~api/repositories/{id:\\d+}/default-branch", self.get_default_branch)
        r.add_post("/~api/repositories/{id:\\d+}/default-branch", self.set_default_branch)
        r.add_get("/~api/repositories/{id:\\d+}/branches", self.branches)
        r.add_route("*", r"/{repo:.+\.git}/{tail:.*}", self.git)
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        token, kind = self._token(request)
        seen = Seen(request.method, request.path_qs, kind)
        self.requests.append(seen)
        if self.unavailable or self.fail_next > 0:
            self.fail_next = max(0, self.fail_next - 1)
            seen.status = 503
            return web.Response(status=503, text="Service Unavailable", content_type="text/plain")
        if request.path.startswith("/~api/") and not self._known(token):
            seen.status = 401
            return web.Response(status=401, text="Unauthorized", content_type="text/plain",
                                headers={"WWW-Authenticate": 'Basic realm="OneDev"'})
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            seen.status = exc.status
            raise
        seen.status = response.status
        return response

    def _project(self, request: web.Request) -> Project:
        project = self.projects.get(int(request.match_info["id"]))
        if project is None:
            raise web.HTTPNotFound(text=f"Unable to find project with id: {request.match_info['id']}",
                                   content_type="text/plain")
        return project

    @staticmethod
    def _json(value: Any, status: int = 200) -> web.Response:
        return web.Response(status=status, text=json.dumps(value), content_type="application/json")

    def _view(self, p: Project) -> dict[str, Any]:
        return {"id": p.id, "name": p.name, "parentId": p.parent_id, "description": p.description,
                "codeManagement": p.code_management, "issueManagement": p.issue_management,
                "key": None, "createDate": "2026-01-01T00:00:00Z", **p.extra}

    async def project_id(self, request: web.Request) -> web.Response:
        if not self.ids_endpoint:  # before 12.0.10 no resource matches: Jersey's plain 404
            raise web.HTTPNotFound(text="HTTP 404 Not Found", content_type="text/plain")
        project = self.by_path(request.match_info["path"])
        if project is None:
            raise web.HTTPNotFound(text="Project not found: " + request.match_info["path"],
                                   content_type="text/plain")
        return self._json(project.id)

    async def query_projects(self, request: web.Request) -> web.Response:
        unknown = sorted(set(request.query) - {"query", "offset", "count"})
        if unknown or "offset" not in request.query or "count" not in request.query:
            raise web.HTTPNotAcceptable(
                text=f"Unexpected query parameters: {', '.join(unknown)}" if unknown else
                "Missing query parameter: offset and count are required",
                content_type="text/plain")
        offset, count = int(request.query["offset"]), int(request.query["count"])
        query = request.query.get("query", "").strip()
        projects = sorted(self.projects.values(), key=lambda p: p.id)
        if query:
            m = QUERY_RE.match(query)
            if m is None:
                raise web.HTTPBadRequest(text="Error parsing query", content_type="text/plain")
            pattern = "".join(".*" if c in "*%" else "." if c == "_" else re.escape(c)
                              for c in m.group("name"))
            like = re.compile(f"^{pattern}$", re.IGNORECASE)
            projects = [p for p in projects if like.match(p.name)]
        return self._json([self._view(p) for p in projects[offset:offset + count]])

    async def create_project(self, request: web.Request) -> web.Response:
        token, _ = self._token(request)
        if not self.tokens.get(token or "", False):
            raise web.HTTPForbidden(text="Not authorized to create root project",
                                    content_type="text/plain")
        if request.content_type != "application/json":
            raise web.HTTPUnsupportedMediaType(text="HTTP 415 Unsupported Media Type",
                                               content_type="text/plain")
        try:
            body = await request.json()
        except json.JSONDecodeError:
            raise web.HTTPBadRequest(text="Malformed JSON", content_type="text/plain") from None
        if not isinstance(body, dict):
            raise web.HTTPBadRequest(text="Expected a project object", content_type="text/plain")
        name = body.get("name")
        problems = []
        # No name pattern check: OneDev's REST API does not run bean validation.
        if not isinstance(name, str) or not name:
            problems.append("name: must not be empty")
        for key in ("gitPackConfig", "codeAnalysisSetting"):
            if not isinstance(body.get(key), dict):
                problems.append(f"{key}: must not be null")
        if problems:
            raise web.HTTPBadRequest(text="; ".join(problems), content_type="text/plain")
        parent_id = body.get("parentId")
        if parent_id is not None and parent_id not in self.projects:
            raise web.HTTPNotFound(text=f"Unable to find project with id: {parent_id}",
                                   content_type="text/plain")
        self._check_duplicate(name, parent_id)
        project = self.add_project(name, parent_id, body.get("description"))
        project.code_management = bool(body.get("codeManagement", True))
        project.issue_management = bool(body.get("issueManagement", True))
        if self.create_delay:
            self.project_created.set()
            await asyncio.sleep(self.create_delay)
        return self._json(project.id)

    def _check_duplicate(self, name: str, parent_id: int | None, own_id: int | None = None) -> None:
        for p in self.projects.values():
            if p.id != own_id and p.parent_id == parent_id and p.name.lower() == name.lower():
                where = ("another root project" if parent_id is None else
                         f"another project under '{self.path_of(self.projects[parent_id])}'")
                raise web.HTTPInternalServerError(
                    text=f"Name '{name}' is already used by {where}", content_type="text/plain")

    async def get_project(self, request: web.Request) -> web.Response:
        return self._json(self._view(self._project(request)))

    async def update_project(self, request: web.Request) -> web.Response:
        """Update name and description (the fields PAO sends back); moves the repository."""
        project = self._project(request)
        body = await request.json()
        name = body.get("name")
        if not isinstance(name, str) or not name:
            raise web.HTTPBadRequest(text="name: must not be empty", content_type="text/plain")
        if body.get("parentId") != project.parent_id:
            raise web.HTTPBadRequest(text="the fake does not move projects", content_type="text/plain")
        self._check_duplicate(name, project.parent_id, project.id)
        old = self.repo_dir(self.path_of(project))
        project.name = name
        project.description = body.get("description")
        old.rename(self.repo_dir(self.path_of(project)))
        return web.Response(status=200)

    async def delete_project(self, request: web.Request) -> web.Response:
        project = self._project(request)
        shutil.rmtree(self.repo_dir(self.path_of(project)), ignore_errors=True)
        del self.projects[project.id]
        return web.Response(status=200)

    def _set_default(self, project: Project, branch: str) -> None:
        project.default_branch = branch
        subprocess.run(["git", "symbolic-ref", "HEAD", f"refs/heads/{branch}"],
                       cwd=self.repo_dir(self.path_of(project)), check=True)

    def _settle_default(self, project: Project) -> None:
        """After the first push OneDev's default is ``main`` if it was pushed, else the last
        branch received. A push handler may still be finishing after git got its answer, so
        this also runs when the default is read."""
        if project.default_branch is not None:
            return
        path = self.path_of(project)
        existing = self.refs(path)
        branches = [ref for ref in self.received(path)
                    if ref.startswith("refs/heads/") and ref in existing]
        if branches:
            chosen = "refs/heads/main" if "refs/heads/main" in branches else branches[-1]
            self._set_default(project, chosen[len("refs/heads/"):])

    async def get_default_branch(self, request: web.Request) -> web.Response:
        project = self._project(request)
        self._settle_default(project)
        if project.default_branch is None:
            return web.Response(status=204)
        # Not JSON-encoded: a String result bypasses Jackson in OneDev's Jersey.
        return web.Response(text=project.default_branch, content_type="application/json")

    async def set_default_branch(self, request: web.Request) -> web.Response:
        project = self._project(request)
        branch = json.loads(await request.text())
        if not isinstance(branch, str) or not branch:
            raise web.HTTPBadRequest(text="defaultBranch: must not be null", content_type="text/plain")
        if f"refs/heads/{branch}" not in self.refs(self.path_of(project)):
            raise web.HTTPInternalServerError(text=f"Branch not exist: {branch}",
                                              content_type="text/plain")
        self._set_default(project, branch)
        return web.Response(status=200)

    async def branches(self, request: web.Request) -> web.Response:
        project = self._project(request)
        refs = self.refs(self.path_of(project))
        return self._json(sorted(r[len("refs/heads/"):] for r in refs if r.startswith("refs/heads/")))

    async def git(self, request: web.Request) -> web.StreamResponse:
        path = request.match_info["repo"][:-len(".git")]
        project = self.by_path(path)
        pushing = request.match_info["tail"] == "git-receive-pack" and request.method == "POST"
        if pushing and project is not None and self._known(self._token(request)[0]):
            self.push_started.set()
            waited = 0.0
            while waited < self.push_delay:  # re-read: a test may lift the delay
                await asyncio.sleep(0.05)
                waited += 0.05
        response = await self.backend.route(request)
        if pushing and project is not None:
            self._settle_default(project)
        return response
