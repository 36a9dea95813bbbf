"""GitHub's web address, and whether a git URL is on it: where GitHub credentials may go."""

from __future__ import annotations

from urllib.parse import urlsplit


def github_web_url(api_url: str, configured: str | None) -> str:
    """GitHub's web address: PAO_GITHUB_URL, else derived from the API's (github.com or GHES)."""
    if configured:
        return configured
    if api_url.rstrip("/") == "https://api.github.com":
        return "https://github.com"
    return api_url.rstrip("/").removesuffix("/api/v3")


def _origin(url: str) -> tuple[str, str, int | None] | None:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return None
    return parts.scheme, parts.hostname.lower(), port or (443 if parts.scheme == "https" else 80)


def on_github(url: str, web_url: str) -> bool:
    """True when git ``url`` is served by the GitHub at ``web_url`` (same scheme, host and port).

    A clone URL comes from webhook payloads and API answers; an installation token is sent
    only to GitHub itself, never to a host a payload names."""
    here, github = _origin(url), _origin(web_url)
    return here is not None and here == github
