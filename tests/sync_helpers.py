"""Helpers for catalog sync tests: a catalog git repository with a push-able remote, seed YAML."""

from __future__ import annotations

import os
import subprocess
import textwrap
from pathlib import Path
from typing import Any

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Josh Smith", "GIT_AUTHOR_EMAIL": "josh@example.com",
    "GIT_COMMITTER_NAME": "Josh Smith", "GIT_COMMITTER_EMAIL": "josh@example.com",
    "GIT_CONFIG_NOSYSTEM": "1", "HOME": os.environ.get("HOME", "/"),
}


def git(cwd: Path, *args: str) -> str:
    out = subprocess.run(["git", *args], cwd=cwd, env={**os.environ, **GIT_ENV}, check=True,
                         capture_output=True, text=True)
    return out.stdout.strip()


class CatalogRepo:
    """A working clone plus a bare repository it pushes to (the 'remote' PAO syncs from)."""

    def __init__(self, root: Path, branch: str = "main", remote: Path | None = None):
        self.branch = branch
        self.remote = remote or root / "remote.git"
        root.mkdir(parents=True, exist_ok=True)
        self.work = root / "work"
        if remote is None:
            git(root, "init", "--quiet", "--bare", f"--initial-branch={branch}", str(self.remote))
        git(root, "init", "--quiet", f"--initial-branch={branch}", str(self.work))
        git(self.work, "remote", "add", "origin", str(self.remote))

    @property
    def url(self) -> str:
        return self.remote.as_uri()

    def write(self, path: str, text: str) -> None:
        target = self.work / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(text))

    def remove(self, path: str) -> None:
        git(self.work, "rm", "--quiet", path)

    def move(self, old: str, new: str) -> None:
        (self.work / new).parent.mkdir(parents=True, exist_ok=True)
        git(self.work, "mv", old, new)

    def commit(self, message: str) -> str:
        git(self.work, "add", "-A")
        git(self.work, "commit", "--quiet", "--allow-empty", "-m", message)
        return git(self.work, "rev-parse", "HEAD")

    def push(self, *, force: bool = False, branch: str | None = None) -> str:
        target = branch or self.branch
        git(self.work, "push", "--quiet", *(["--force"] if force else []), "origin", f"HEAD:{target}")
        return git(self.work, "rev-parse", "HEAD")

    def commit_push(self, message: str) -> str:
        self.commit(message)
        return self.push()

    def reset_hard(self, ref: str) -> None:
        git(self.work, "reset", "--quiet", "--hard", ref)


def item_yaml(name: str, version: str = "1.0.0", *, owner: str = "platform-data-team",
              tags: tuple[str, ...] = ("database",), description: str | None = None) -> str:
    tag_list = ", ".join(f'"{t}"' for t in tags)
    return (f'name: "{name}"\nversion: "{version}"\n'
            f'description: "{description or name + " service"}"\nowner: "{owner}"\n'
            f"tags: [{tag_list}]\n"
            "presentation:\n  fields:\n    - name: \"n\"\n      type: \"string\"\n"
            "fulfillment:\n  manual:\n    system: \"jira\"\n    template:\n"
            "      project: \"PLATFORM\"\n      issue_type: \"Service Request\"\n"
            "      summary: \"Create {{ n }}\"\n")


MYSQL_SEED = '''\
# Header - Basic metadata
name: "mysql-database"
version: "1.0.0"
description: "MySQL database instance"
owner: "platform-data-team"
tags: ["database", "mysql", "storage"]

# Presentation - User interface definition
presentation:
  fields:
    - name: "database_name"
      type: "string"
      required: true
      max_length: 64
      regexp: "^[a-z][a-z0-9_]*$"
      help_text: "Database name (lowercase, underscores allowed)"
    - name: "instance_size"
      type: "selection"
      oneof: ["db.t3.micro", "db.t3.small", "db.t3.medium"]
      default: "db.t3.small"
      required: true
      help_text: "Database instance size"

# Fulfillment - Manual only for MVP
fulfillment:
  manual:
    system: "jira"
    template:
      project: "PLATFORM"
      issue_type: "Service Request"
      summary: "Create MySQL database {{ database_name }}"
      description: |
        Please create a MySQL database with the following specifications:
        - Database Name: {{ database_name }}
        - Instance Size: {{ instance_size }}
        - Requester: {{ requester.user_id }}
        - Team: {{ requester.team }}
'''

# Seed 001 step 7: what GET /api/v1/catalog/items/mysql-database answers.
MYSQL_SEED_RESPONSE = {
    "name": "mysql-database",
    "version": "1.0.0",
    "description": "MySQL database instance",
    "owner": "platform-data-team",
    "tags": ["database", "mysql", "storage"],
    "presentation": {
        "fields": [
            {"name": "database_name", "type": "string", "required": True, "max_length": 64,
             "regexp": "^[a-z][a-z0-9_]*$",
             "help_text": "Database name (lowercase, underscores allowed)"},
            {"name": "instance_size", "type": "selection",
             "oneof": ["db.t3.micro", "db.t3.small", "db.t3.medium"], "default": "db.t3.small",
             "required": True, "help_text": "Database instance size"},
        ]
    },
}


# -- a git host over smart HTTP with token auth (tests.fakes.git_http) -------------

TOKEN = "pao-test-token-7f3a9c1e5b"  # not token-shaped: only PAO's own scrubbing hides it


class GitHost:
    """Bare repositories under ``root`` served over HTTP; fetches need ``TOKEN``.

    ``gate``: when set to an unset asyncio.Event, fetches wait for it (to hold a
    sync mid-fetch). ``fetches`` counts upload-pack requests.
    """

    def __init__(self, root: Path):
        self.root = root
        self.gate: Any = None
        self.fetches = 0
        self.base_url = ""

    async def authorize(self, request: Any, repo: str, service: str) -> bool:
        from tests.fakes.git_http import basic_credentials

        if service == "git-upload-pack":
            self.fetches += 1
            if self.gate is not None:
                await self.gate.wait()
        return basic_credentials(request) == ("x-access-token", TOKEN)

    def url(self, full_name: str) -> str:
        return f"{self.base_url}/{full_name}.git"

    def repo(self, tmp: Path, full_name: str = "org/pao-repository", branch: str = "main") -> CatalogRepo:
        bare = self.root / f"{full_name}.git"
        bare.parent.mkdir(parents=True, exist_ok=True)
        git(bare.parent, "init", "--quiet", "--bare", f"--initial-branch={branch}", str(bare))
        return CatalogRepo(tmp, branch=branch, remote=bare)


async def start_git_host(aiohttp_server: Any, root: Path) -> GitHost:
    from aiohttp import web

    from tests.fakes.git_http import GitHttpBackend

    host = GitHost(root)
    backend = GitHttpBackend(root, host.authorize)
    app = web.Application()
    app.router.add_route("*", r"/{repo:.+\.git}/{tail:.*}", backend.route)
    server = await aiohttp_server(app)
    host.base_url = str(server.make_url("")).rstrip("/")
    return host


def push_payload(repo_url: str, full_name: str, before: str, after: str, *,
                 ref: str = "refs/heads/main", added: list[str] | None = None,
                 modified: list[str] | None = None, removed: list[str] | None = None) -> dict[str, Any]:
    """A push delivery's body, shaped as GitHub sends it (seed 000/001)."""
    owner, name = full_name.split("/")
    return {
        "ref": ref, "before": before, "after": after,
        "created": before == "0" * 40, "deleted": after == "0" * 40, "forced": False,
        "commits": [{"id": after, "message": "change", "timestamp": "2025-08-16T14:30:00-05:00",
                     "author": {"name": "Josh Smith", "email": "josh.smith@example.com"},
                     "added": added or [], "modified": modified or [], "removed": removed or []}],
        "head_commit": {"id": after, "message": "change"},
        "repository": {"id": 1, "name": name, "full_name": full_name, "private": True,
                       "clone_url": repo_url, "html_url": repo_url.removesuffix(".git"),
                       "default_branch": "main", "owner": {"login": owner}},
        "pusher": {"name": "josh-smith", "email": "josh.smith@example.com"},
    }
