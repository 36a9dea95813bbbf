"""A Jira fake: the REST API v2 paths, status codes and body shapes PAO uses.

Behaves as Jira does for these calls:

* Auth: Cloud takes basic auth (e-mail address, API token); Data Center a personal access
  token as ``Authorization: Bearer``. Without valid credentials: 401 with
  ``{"errorMessages": ["You are not authenticated..."], "errors": {}}``.
* ``POST /rest/api/2/issue`` with ``{"fields": {project: {key}, issuetype: {name}, summary,
  description, labels}}``: 201 ``{"id", "key", "self"}``; a missing or unknown project,
  issue type or summary: 400 ``{"errorMessages": [], "errors": {field: message}}``.
* Searching by JQL (only ``labels = "x"`` is understood): Cloud serves
  ``POST /rest/api/2/search/jql`` (``{"issues": [...], "isLast": true}``) and answers the
  retired ``/rest/api/2/search`` with 410; Data Center serves ``POST /rest/api/2/search``
  (``{"startAt", "maxResults", "total", "issues"}``) and has no ``search/jql`` (404).
* ``GET /rest/api/2/issue/{key}``: the issue with ``fields.status`` and ``fields.resolution``.
* ``resolve(key)`` moves an issue to Done, as a person would.
"""

from __future__ import annotations

import asyncio
import base64
import re
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

LABEL_JQL = re.compile(r'^labels\s*=\s*"([^"]+)"$')


@dataclass
class Issue:
    id: str
    key: str
    fields: dict[str, Any]


@dataclass
class FakeJira:
    flavour: str = "cloud"  # or "datacenter"
    user: str = "pao@example.com"
    token: str = "jira-api-token-1"
    projects: tuple[str, ...] = ("PLATFORM", "OBSERVABILITY")
    issue_types: tuple[str, ...] = ("Service Request", "Task")
    issues: dict[str, Issue] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    fail_next_create: int = 0  # answer 503 to this many creates (after creating: lost answers)
    url: str = ""
    hold_create: asyncio.Event | None = None
    create_held: asyncio.Event = field(default_factory=asyncio.Event)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/rest/api/2/issue", self.create)
        app.router.add_get("/rest/api/2/issue/{key}", self.get)
        app.router.add_post("/rest/api/2/search/jql", self.search_jql)
        app.router.add_post("/rest/api/2/search", self.search)
        return app

    def _authorized(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        if self.flavour == "cloud":
            expected = "Basic " + base64.b64encode(f"{self.user}:{self.token}".encode()).decode()
        else:
            expected = f"Bearer {self.token}"
        return header == expected

    def _unauthorized(self) -> web.Response:
        return web.json_response({"errorMessages": [
            "You are not authenticated. Authentication required to perform this operation."],
            "errors": {}}, status=401)

    def resolve(self, key: str) -> None:
        self.issues[key].fields["status"] = {"name": "Done", "statusCategory": {"key": "done"}}
        self.issues[key].fields["resolution"] = {"name": "Done"}

    def _view(self, issue: Issue) -> dict[str, Any]:
        return {"id": issue.id, "key": issue.key, "self": f"{self.url}/rest/api/2/issue/{issue.id}",
                "fields": issue.fields}

    async def create(self, request: web.Request) -> web.Response:
        self.calls.append(("POST", request.path))
        if not self._authorized(request):
            return self._unauthorized()
        body = await request.json()
        fields = body.get("fields") or {}
        errors = {}
        if (fields.get("project") or {}).get("key") not in self.projects:
            errors["project"] = "valid project is required"
        if (fields.get("issuetype") or {}).get("name") not in self.issue_types:
            errors["issuetype"] = "valid issue type is required"
        if not fields.get("summary"):
            errors["summary"] = "You must specify a summary of the issue."
        if errors:
            return web.json_response({"errorMessages": [], "errors": errors}, status=400)
        number = len(self.issues) + 1
        key = f"{fields['project']['key']}-{number}"
        issue = Issue(str(10000 + number), key, {
            "summary": fields["summary"], "description": fields.get("description"),
            "labels": fields.get("labels") or [],
            "status": {"name": "Open", "statusCategory": {"key": "new"}}, "resolution": None})
        self.issues[key] = issue
        if self.hold_create is not None:  # created; the answer waits (a caller may die meanwhile)
            self.create_held.set()
            await self.hold_create.wait()
        if self.fail_next_create:
            self.fail_next_create -= 1
            return web.json_response({"errorMessages": ["Service unavailable"], "errors": {}}, status=503)
        return web.json_response({"id": issue.id, "key": key,
                                  "self": f"{self.url}/rest/api/2/issue/{issue.id}"}, status=201)

    async def get(self, request: web.Request) -> web.Response:
        self.calls.append(("GET", request.path))
        if not self._authorized(request):
            return self._unauthorized()
        issue = self.issues.get(request.match_info["key"])
        if issue is None:
            return web.json_response({"errorMessages": ["Issue does not exist or you do not have "
                                                        "permission to see it."], "errors": {}}, status=404)
        return web.json_response(self._view(issue))

    def _matching(self, jql: str) -> list[dict[str, Any]]:
        m = LABEL_JQL.match(jql.strip())
        if m is None:
            raise web.HTTPBadRequest(text='{"errorMessages": ["Unsupported JQL in this fake"]}',
                                     content_type="application/json")
        return [self._view(i) for i in self.issues.values() if m.group(1) in i.fields["labels"]]

    async def search_jql(self, request: web.Request) -> web.Response:
        self.calls.append(("POST", request.path))
        if self.flavour != "cloud":
            return web.json_response({"errorMessages": ["null for uri: /rest/api/2/search/jql"]},
                                     status=404)
        if not self._authorized(request):
            return self._unauthorized()
        body = await request.json()
        found = self._matching(body.get("jql", ""))[: body.get("maxResults", 50)]
        return web.json_response({"issues": found, "isLast": True})

    async def search(self, request: web.Request) -> web.Response:
        self.calls.append(("POST", request.path))
        if self.flavour == "cloud":
            return web.json_response({"errorMessages": [
                "The requested API has been removed. Please migrate to the /rest/api/3/search/jql API."]},
                status=410)
        if not self._authorized(request):
            return self._unauthorized()
        body = await request.json()
        found = self._matching(body.get("jql", ""))
        limit = body.get("maxResults", 50)
        return web.json_response({"startAt": 0, "maxResults": limit, "total": len(found),
                                  "issues": found[:limit]})
