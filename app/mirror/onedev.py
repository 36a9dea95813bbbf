"""A small client for OneDev's REST API (``/~api/``), as OneDev 12+ implements it.

Facts it relies on: ``POST /~api/projects`` answers the new id as a bare JSON
number and needs the ``gitPackConfig`` and ``codeAnalysisSetting`` objects; a
duplicate name (compared case-insensitively) is HTTP 500 with a text/plain
"... already used ..." message; ``GET /~api/projects/ids/{path}`` finds a project by
path (404 when absent) but exists only since OneDev 12.0.10, so a 404 is confirmed by
walking the path with the project query, which matches names with LIKE and is
re-checked here.
"""

from __future__ import annotations

import base64
import contextlib
import json
from typing import Any
from urllib.parse import quote

import aiohttp

from app.log import register_secret, scrub

PAGE = 100


class OneDevError(Exception):
    """OneDev failed or refused a call; ``status`` is 0 for network errors and timeouts."""

    def __init__(self, message: str, status: int = 0):
        super().__init__(message)
        self.status = status

    @property
    def retryable(self) -> bool:
        return self.status == 0 or self.status >= 500 or self.status == 429


class OneDevAuthError(OneDevError):
    """401/403: the token is wrong or lacks permission; retrying will not help."""

    retryable = False  # type: ignore[assignment]


class OneDevNotFound(OneDevError):
    retryable = False  # type: ignore[assignment]


class OneDevNameTaken(OneDevError):
    """The project name is already used under that parent."""

    retryable = False  # type: ignore[assignment]


class OneDevClient:
    """OneDev REST calls PAO needs, authenticated with an access token."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, token: str,
                 user: str | None = None, *, timeout: float = 60.0):
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.user = user
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        register_secret(token)

    def _auth(self) -> str:
        # Basic with the token as password when a user is named, else Bearer; OneDev takes both.
        if self.user:
            basic = base64.b64encode(f"{self.user}:{self.token}".encode()).decode()
            register_secret(basic)
            return f"Basic {basic}"
        return f"Bearer {self.token}"

    def clone_url(self, path: str) -> str:
        return f"{self.base_url}/{path}.git"

    def project_url(self, path: str) -> str:
        return f"{self.base_url}/{path}"

    async def _call(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                    body: Any = None, expect_empty: bool = False,
                    raw: bool = False) -> tuple[int, Any]:
        headers = {"Authorization": self._auth(), "Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        url = f"{self.base_url}/~api{path}"
        try:
            async with self.session.request(method, url, params=params, data=data, headers=headers,
                                            timeout=self.timeout) as resp:
                text = await resp.text()
                status = resp.status
                ctype = resp.content_type
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise OneDevError(f"OneDev unreachable ({method} {path}): "
                              f"{type(exc).__name__}: {scrub(str(exc))}") from None
        if status in (401, 403):
            raise OneDevAuthError(
                f"OneDev refused the token ({status} on {method} {path}): check PAO_ONEDEV_TOKEN"
                f"{' and PAO_ONEDEV_USER' if self.user else ''} and that the account may "
                f"create projects; OneDev said: {_short(text)}", status)
        if status == 404:
            raise OneDevNotFound(f"OneDev: not found ({method} {path}): {_short(text)}", 404)
        if status == 500 and "already used" in text:
            raise OneDevNameTaken(_short(text), 500)
        if status >= 400:
            raise OneDevError(f"OneDev answered {status} to {method} {path}: {_short(text)}", status)
        if status == 204 or expect_empty or not text.strip():
            return status, None
        if raw or ctype != "application/json":
            return status, text
        return status, json.loads(text)

    async def project_id(self, path: str) -> int | None:
        """The id of the project at ``path`` (``parent/child``), or None."""
        try:
            _, value = await self._call("GET", "/projects/ids/" + quote(path, safe="/"))
        except OneDevNotFound:
            # Absent, or a OneDev before 12.0.10 that lacks /ids/: ask the query instead.
            return await self._project_id_by_query(path)
        return int(value) if value is not None else None

    async def _project_id_by_query(self, path: str) -> int | None:
        parent_id: int | None = None
        for name in path.split("/"):
            same = [p for p in await self.find_by_name(name) if p.get("parentId") == parent_id]
            if not same:
                return None
            parent_id = int(same[0]["id"])
        return parent_id

    async def project(self, project_id: int) -> dict[str, Any]:
        _, value = await self._call("GET", f"/projects/{project_id}")
        return value

    async def find_by_name(self, name: str) -> list[dict[str, Any]]:
        """Projects named ``name`` (any parent; OneDev compares names case-insensitively):
        the query is a LIKE, so re-check."""
        found: list[dict[str, Any]] = []
        offset = 0
        query = f'"Name" is "{name}"'
        while True:
            _, page = await self._call("GET", "/projects",
                                       params={"query": query, "offset": offset, "count": PAGE})
            page = page or []
            found.extend(p for p in page if str(p.get("name", "")).lower() == name.lower())
            if len(page) < PAGE:
                return found
            offset += PAGE

    async def create_project(self, name: str, *, parent_id: int | None,
                             description: str) -> int:
        """Create a code-only project; returns its id. Raises OneDevNameTaken on a duplicate."""
        body: dict[str, Any] = {
            "name": name,
            "description": description,
            "codeManagement": True,
            "issueManagement": False,
            # OneDev rejects a create without these two objects.
            "gitPackConfig": {},
            "codeAnalysisSetting": {},
        }
        if parent_id is not None:
            body["parentId"] = parent_id
        _, value = await self._call("POST", "/projects", body=body)
        if not isinstance(value, int):
            raise OneDevError(f"OneDev answered the create with {value!r}, not a project id", 0)
        return value

    async def rename_project(self, project_id: int, name: str, description: str) -> None:
        """Rename a project: OneDev's update takes the project's data back with the change."""
        project = await self.project(project_id)
        await self._call("POST", f"/projects/{project_id}",
                         body={**project, "name": name, "description": description},
                         expect_empty=True)

    async def delete_project(self, project_id: int) -> None:
        await self._call("DELETE", f"/projects/{project_id}", expect_empty=True)

    async def default_branch(self, project_id: int) -> str | None:
        # OneDev answers the bare name (Jersey writes a String as is, though it labels it
        # application/json); accept a JSON-quoted one too.
        _, value = await self._call("GET", f"/repositories/{project_id}/default-branch",
                                    raw=True)
        if not isinstance(value, str) or not value.strip():
            return None
        value = value.strip()
        if value.startswith('"'):
            with contextlib.suppress(ValueError):
                decoded = json.loads(value)
                return decoded if isinstance(decoded, str) else None
        return value

    async def set_default_branch(self, project_id: int, branch: str) -> None:
        # The body is the branch name as a JSON string.
        await self._call("POST", f"/repositories/{project_id}/default-branch", body=branch,
                         expect_empty=True)


def _short(text: str, limit: int = 300) -> str:
    text = scrub(" ".join(text.split()))
    return text if len(text) <= limit else text[:limit] + "…"
