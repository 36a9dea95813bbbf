"""A bare repository the GitHub fake hosts, and helpers that write commits straight into it.

``FakeRepo.commit`` builds commits with ``git fast-import`` (one process per
commit), so tests can create history, branches, tags and force pushes quickly
without a working tree. ``to_json`` renders the repository as GitHub's API does.
"""

from __future__ import annotations

import base64
import itertools
import os
import subprocess
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.fakes.github import FakeGitHub

ZERO_SHA = "0" * 40

FileContent = str | bytes | None


def iso_time(ts: float) -> str:
    """GitHub's timestamp format: ``2024-01-01T00:00:00Z``."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def node_id(kind: str, number: int) -> str:
    """A GraphQL node id shaped like GitHub's legacy ones."""
    return base64.b64encode(f"0{len(kind)}:{kind}{number}".encode()).decode().rstrip("=")


_iso = iso_time
_node_id = node_id


class FakeRepo:
    """A bare repository the fake hosts, with helpers to write commits straight into it."""

    def __init__(self, fake: FakeGitHub, owner: str, name: str, *, id: int, private: bool,
                 default_branch: str, description: str | None):
        self.fake = fake
        self.owner = owner
        self.name = name
        self.id = id
        self.private = private
        self.default_branch = default_branch
        self.description = description
        self.archived = False
        self.created_at = time.time()
        self.pushed_at = self.created_at
        self.size_kb: int | None = None  # override the computed size
        self.path = fake.git_root / owner / f"{name}.git"
        self._clock = itertools.count(int(self.created_at))

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    @property
    def clone_url(self) -> str:
        return f"{self.fake.url}/{self.full_name}.git"

    def git(self, *args: str, input: bytes | None = None, env: Mapping[str, str] | None = None) -> str:
        """Run git in the bare repository; its stdout, stripped."""
        result = subprocess.run(
            ["git", *args], cwd=self.path, input=input, capture_output=True, check=False,
            env={**os.environ, "GIT_CONFIG_NOSYSTEM": "1", **(env or {})},
        )
        if result.returncode != 0:
            raise RuntimeError(f"git {' '.join(args)}: {result.stderr.decode(errors='replace')}")
        return result.stdout.decode().strip()

    def ref_target(self, ref: str) -> str | None:
        """The object ``ref`` names (an annotated tag's own SHA, unlike ``sha``), or None."""
        result = subprocess.run(["git", "rev-parse", "--verify", "--quiet", ref],
                                cwd=self.path, capture_output=True, text=True, check=False)
        return result.stdout.strip() or None

    def sha(self, ref: str | None = None) -> str | None:
        """The commit SHA ``ref`` (branch, tag, SHA; default branch if None) points at."""
        ref = ref or self.default_branch
        result = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],
                                cwd=self.path, capture_output=True, text=True, check=False)
        return result.stdout.strip() or None

    def commit(self, files: Mapping[str, FileContent], message: str = "Update files", *,
               branch: str | None = None, parent: str | None = None, base: str | None = None,
               replace: bool = False, author: tuple[str, str] = ("Test Author", "author@example.com"),
               ) -> str:
        """Commit ``files`` (None deletes a path) on ``branch``; returns the new SHA.

        The parent is the branch's tip; for a new branch, ``base`` (a ref) or none.
        ``parent`` names the parent explicitly and moves the branch there even if
        that rewrites history (what a force push does). ``replace`` starts from an
        empty tree instead of the parent's.
        """
        branch = branch or self.default_branch
        if parent is None:
            parent = self.sha(f"refs/heads/{branch}") or (self.sha(base) if base else None)
        when = next(self._clock)
        name, email = author
        msg = message.encode()
        lines = [f"commit refs/heads/{branch}".encode(),
                 f"author {name} <{email}> {when} +0000".encode(),
                 f"committer {name} <{email}> {when} +0000".encode(),
                 f"data {len(msg)}".encode(), msg]
        if parent:
            lines.append(f"from {parent}".encode())
        if replace:
            lines.append(b"deleteall")
        for path, content in files.items():
            quoted = _quote_path(path)
            if content is None:
                lines.append(b"D " + quoted)
            else:
                data = content.encode() if isinstance(content, str) else content
                lines += [b"M 100644 inline " + quoted, f"data {len(data)}".encode(), data]
        stream = b"\n".join(lines) + b"\n\n"
        self.git("fast-import", "--quiet", "--force", "--done", input=stream + b"done\n")
        self.pushed_at = time.time()
        sha = self.sha(f"refs/heads/{branch}")
        assert sha is not None
        return sha

    def set_ref(self, ref: str, sha: str | None) -> None:
        """Point ``ref`` (``main``, ``refs/tags/v1``...) at ``sha``, or delete it if None."""
        full = ref if ref.startswith("refs/") else f"refs/heads/{ref}"
        if sha is None:
            self.git("update-ref", "-d", full)
        else:
            self.git("update-ref", full, sha)
        self.pushed_at = time.time()

    def tag(self, name: str, ref: str | None = None, message: str | None = None) -> str:
        """Create tag ``name`` at ``ref`` (annotated when ``message`` is given); the commit SHA."""
        sha = self.sha(ref)
        assert sha is not None, f"no commit at {ref!r}"
        if message is None:
            self.git("update-ref", f"refs/tags/{name}", sha)
        else:
            self.git("-c", "user.name=Test Author", "-c", "user.email=author@example.com",
                     "tag", "-a", name, "-m", message, sha)
        return sha

    def read(self, path: str, ref: str | None = None) -> bytes | None:
        """A file's content at ``ref``, or None when it does not exist there."""
        result = subprocess.run(["git", "cat-file", "blob", f"{ref or self.default_branch}:{path}"],
                                cwd=self.path, capture_output=True, check=False)
        return result.stdout if result.returncode == 0 else None

    def size(self) -> int:
        if self.size_kb is not None:
            return self.size_kb
        total = sum(p.stat().st_size for p in self.path.rglob("*") if p.is_file())
        return total // 1024

    def commits_between(self, before: str, after: str, limit: int = 20) -> list[dict[str, Any]]:
        """Commits in ``after`` not in ``before`` (oldest first), shaped as in a push payload."""
        if after == ZERO_SHA:
            return []
        spec = [after] if before == ZERO_SHA else [f"{before}..{after}"]
        if before == ZERO_SHA:
            default = self.sha(f"refs/heads/{self.default_branch}")
            if default and default != after:
                spec.append(f"^{default}")
        shas = self.git("rev-list", "--reverse", *spec).split()
        return [self.commit_payload(sha) for sha in shas[-limit:]]

    def commit_payload(self, sha: str) -> dict[str, Any]:
        fmt = "%H%x00%T%x00%an%x00%ae%x00%cn%x00%ce%x00%aI%x00%B"
        full, tree, an, ae, cn, ce, date, body = self.git("show", "-s", f"--format={fmt}", sha).split(
            "\x00", 7)
        status = self.git("diff-tree", "--no-commit-id", "--no-renames", "-r", "--root",
                          "--name-status", sha)
        changes: dict[str, list[str]] = {"A": [], "D": [], "M": []}
        for line in status.splitlines():
            kind, _, path = line.partition("\t")
            changes.setdefault(kind[:1], []).append(path)
        return {
            "id": full, "tree_id": tree, "distinct": True, "message": body.strip(),
            "timestamp": date, "url": f"{self.fake.url}/{self.full_name}/commit/{full}",
            "author": {"name": an, "email": ae, "username": an.replace(" ", "-").lower()},
            "committer": {"name": cn, "email": ce, "username": cn.replace(" ", "-").lower()},
            "added": changes["A"], "removed": changes["D"], "modified": changes["M"],
        }

    def to_json(self, *, for_event: str | None = None) -> dict[str, Any]:
        """The repository object as the REST API (or, with ``for_event="push"``, a push) shows it."""
        base = self.fake.url
        api = f"{base}/repos/{self.full_name}"
        owner = self.fake.account_json(self.owner)
        data: dict[str, Any] = {
            "id": self.id, "node_id": _node_id("Repository", self.id), "name": self.name,
            "full_name": self.full_name, "private": self.private, "owner": owner,
            "html_url": f"{base}/{self.full_name}", "description": self.description,
            "fork": False, "url": api,
            "git_url": f"git://{base.split('://', 1)[-1]}/{self.full_name}.git",
            "ssh_url": f"git@{base.split('://', 1)[-1].split(':')[0]}:{self.full_name}.git",
            "clone_url": self.clone_url, "svn_url": f"{base}/{self.full_name}",
            "homepage": None, "size": self.size(), "stargazers_count": self.fake.stargazers(self),
            "watchers_count": self.fake.stargazers(self), "language": None, "has_issues": True,
            "has_projects": True, "has_downloads": True, "has_wiki": True, "has_pages": False,
            "has_discussions": False, "forks_count": 0, "mirror_url": None,
            "archived": self.archived, "disabled": False, "open_issues_count": 0, "license": None,
            "allow_forking": True, "is_template": False, "web_commit_signoff_required": False,
            "topics": [], "visibility": "private" if self.private else "public", "forks": 0,
            "open_issues": 0, "watchers": self.fake.stargazers(self),
            "default_branch": self.default_branch,
            "created_at": _iso(self.created_at), "updated_at": _iso(self.pushed_at),
            "pushed_at": _iso(self.pushed_at),
        }
        for name, suffix in _REPO_URLS.items():
            data[f"{name}_url"] = f"{api}/{suffix}"
        data.update(network_count=0, subscribers_count=0)
        if for_event == "push":
            # Push payloads carry Unix timestamps and the legacy master_branch field.
            data.update(created_at=int(self.created_at), pushed_at=int(self.pushed_at),
                        stargazers=data["stargazers_count"], master_branch=self.default_branch)
        return data


# The ``*_url`` fields of a repository object, as GitHub writes them (URI templates).
_REPO_URLS = {
    "archive": "{archive_format}{/ref}", "assignees": "assignees{/user}", "blobs": "git/blobs{/sha}",
    "branches": "branches{/branch}", "collaborators": "collaborators{/collaborator}",
    "comments": "comments{/number}", "commits": "commits{/sha}", "compare": "compare/{base}...{head}",
    "contents": "contents/{+path}", "contributors": "contributors", "deployments": "deployments",
    "downloads": "downloads", "events": "events", "forks": "forks",
    "git_commits": "git/commits{/sha}", "git_refs": "git/refs{/sha}", "git_tags": "git/tags{/sha}",
    "hooks": "hooks", "issue_comment": "issues/comments{/number}",
    "issue_events": "issues/events{/number}", "issues": "issues{/number}", "keys": "keys{/key_id}",
    "labels": "labels{/name}", "languages": "languages", "merges": "merges",
    "milestones": "milestones{/number}",
    "notifications": "notifications{?since,all,participating}", "pulls": "pulls{/number}",
    "releases": "releases{/id}", "stargazers": "stargazers", "statuses": "statuses/{sha}",
    "subscribers": "subscribers", "subscription": "subscription", "tags": "tags", "teams": "teams",
    "trees": "git/trees{/sha}",
}


def _quote_path(path: str) -> bytes:
    escaped = path.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'.encode()
