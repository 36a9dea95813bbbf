"""Which repository is the catalog: ``PAO_REPO_URL`` normalised, and matching pushes against it.

``PAO_REPO_URL`` may be an https URL, a ``file://`` URL or a local path. The
normalised form (``key``) names the repository in the sync tables and in job
locks; ``full_name`` (``owner/name``) matches push payloads.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from app.git.repo import cache_dir


@dataclass(frozen=True)
class CatalogSource:
    url: str  # what git fetches from (no credentials, ever)
    branch: str
    key: str  # normalised identity
    full_name: str | None  # owner/name, when the URL has one

    @property
    def is_local(self) -> bool:
        return self.url.startswith("file://")

    @property
    def lock(self) -> str:
        """The job queue key: one waiting and one running sync per repository."""
        return f"sync_catalog:{self.key}"

    def cache_dir(self, data_dir: Path, use: str = "catalog") -> Path:
        """The bare git cache for this repository under the data dir, one per ``use``
        (the sync's and the pull-request checks' are kept apart so they never contend)."""
        return cache_dir(data_dir, use, self.full_name or Path(self.key).name, self.key)


def normalise(url: str) -> str:
    """Compare-friendly form of a repository URL: lowercase host, no ``.git``, no slash."""
    if url.startswith(("http://", "https://")):
        return _normalise_http(url)
    parsed = urlparse(url)
    if parsed.scheme in ("http", "https"):  # "HTTPS://..."
        return _normalise_http(url)
    return to_fetch_url(url).rstrip("/")


@functools.lru_cache(maxsize=1024)
def _normalise_http(url: str) -> str:
    # Cached (a pure function of the text): every push compares five of its repository's
    # URLs with the catalog's, and urlparse was a fifth of a push's handler time.
    parsed = urlparse(url)
    path = parsed.path.rstrip("/")
    path = path[:-4] if path.endswith(".git") else path
    host = (parsed.hostname or "").lower() + (f":{parsed.port}" if parsed.port else "")
    return f"{parsed.scheme}://{host}{path}"


def to_fetch_url(url: str) -> str:
    """A URL git can fetch: https as given; local paths become absolute ``file://`` URLs."""
    parsed = urlparse(url)
    if parsed.scheme in ("http", "https"):
        return url
    path = parsed.path if parsed.scheme == "file" else url
    return Path(path).expanduser().resolve().as_uri()


def full_name_of(url: str) -> str | None:
    parsed = urlparse(url)
    parts = [p for p in parsed.path.split("/") if p]
    if len(parts) < 2:
        return None
    name = parts[-1][:-4] if parts[-1].endswith(".git") else parts[-1]
    return f"{parts[-2]}/{name}"


def catalog_source(settings: Any) -> CatalogSource | None:
    """The configured catalog repository, or None when ``PAO_REPO_URL`` is unset."""
    if not settings.repo_url:
        return None
    if settings.repo_url.startswith(("http://", "https://")):
        # A pure function of the two settings, asked for by every push: cached.
        return _http_source(settings.repo_url, settings.repo_branch)
    return _source(settings.repo_url, settings.repo_branch)


@functools.lru_cache(maxsize=16)
def _http_source(repo_url: str, branch: str) -> CatalogSource:
    return _source(repo_url, branch)


def _source(repo_url: str, branch: str) -> CatalogSource:
    # (A local path is resolved against the file system each time: not cached.)
    url = to_fetch_url(repo_url)
    is_http = urlparse(url).scheme in ("http", "https")
    return CatalogSource(url=url, branch=branch, key=normalise(url),
                         full_name=full_name_of(url) if is_http else None)


# The payload's repository fields that may name the catalog repository by URL.
PUSH_URL_FIELDS = ("clone_url", "html_url", "url", "git_url", "ssh_url")


def push_matches(source: CatalogSource, repository: dict[str, Any]) -> bool:
    """Is the pushed repository (the payload's ``repository``) the catalog repository?"""
    for field in PUSH_URL_FIELDS:
        value = repository.get(field)
        if isinstance(value, str) and value.startswith(("http://", "https://", "file://")) \
                and normalise(value) == source.key:
            return True
    full_name = repository.get("full_name")
    return bool(source.full_name and isinstance(full_name, str)
                and full_name.lower() == source.full_name.lower())
