"""GitHub authentication: App JWTs, cached installation tokens, and API clients.

``GitHubClients`` is the factory handlers and jobs use: ``await clients.api(installation_id)``
gives a ``gidgethub.aiohttp.GitHubAPI`` bound to ``PAO_GITHUB_API_URL`` and to the
installation's token (App mode) or ``PAO_REPO_TOKEN`` (token mode).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp
import cachetools
import jwt
from gidgethub import BadRequest, RateLimitExceeded
from gidgethub.aiohttp import GitHubAPI

USER_AGENT = "pao-github-app"
# Refresh an installation token this long before GitHub says it expires, so a
# long job never starts with a token about to die.
TOKEN_REFRESH_MARGIN = 300.0


# What an operator should check when GitHub refuses an installation token.
_TOKEN_REFUSAL_HINTS = {
    401: " (GitHub rejected the App's JWT: check PAO_APP_ID, PAO_PRIVATE_KEY and the clock)",
    403: " (the installation is suspended or lacks permission)",
    404: " (no such installation: was the App uninstalled?)",
}


class GitHubAuthError(Exception):
    """PAO has no usable credentials for the call (no App, no token, or GitHub refused them)."""


def app_jwt(app_id: str, private_key: str, *, now: float | None = None) -> str:
    """A GitHub App JWT: RS256, issued 60 s in the past (clock drift), valid 9 minutes."""
    now = time.time() if now is None else now
    payload = {"iat": int(now) - 60, "exp": int(now) + 9 * 60, "iss": str(app_id)}
    return jwt.encode(payload, private_key, algorithm="RS256")


@dataclass(frozen=True)
class InstallationToken:
    token: str
    expires_at: float  # epoch seconds

    def fresh(self, now: float) -> bool:
        return self.expires_at - TOKEN_REFRESH_MARGIN > now


def _expiry_ttu(_key: Any, value: InstallationToken, now: float) -> float:
    return value.expires_at - TOKEN_REFRESH_MARGIN


class GitHubClients:
    """Creates GitHub API clients and the tokens git needs, caching installation tokens."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        api_url: str = "https://api.github.com",
        app_id: str | None = None,
        private_key: str | None = None,
        token: str | None = None,
        cache_size: int = 1024,
    ):
        self.session = session
        self.api_url = api_url.rstrip("/")
        self.app_id = app_id
        self.private_key = private_key
        self.static_token = token
        self._tokens: cachetools.TLRUCache[int, InstallationToken] = cachetools.TLRUCache(
            maxsize=cache_size, ttu=_expiry_ttu, timer=time.time
        )
        self._locks: dict[int, asyncio.Lock] = {}
        # Conditional-request cache (ETags) shared by every client we hand out.
        self.http_cache: cachetools.LRUCache[str, Any] = cachetools.LRUCache(maxsize=2048)

    @classmethod
    def from_settings(cls, settings: Any, session: aiohttp.ClientSession) -> GitHubClients:
        return cls(
            session,
            api_url=settings.github_api_url,
            app_id=settings.app_id if settings.app_mode else None,
            private_key=settings.private_key if settings.app_mode else None,
            token=settings.repo_token,
        )

    @property
    def app_mode(self) -> bool:
        return self.app_id is not None and self.private_key is not None

    def jwt(self) -> str:
        if not self.app_mode:
            raise GitHubAuthError("GitHub App credentials are not configured (PAO_APP_ID)")
        assert self.app_id is not None and self.private_key is not None
        return app_jwt(self.app_id, self.private_key)

    def app_api(self) -> GitHubAPI:
        """A client that authenticates as the App itself (JWT), for /app endpoints."""
        return GitHubAPI(self.session, USER_AGENT, base_url=self.api_url, cache=self.http_cache)

    async def installation_token(self, installation_id: int, *, refresh: bool = False,
                                 stale: str | None = None) -> str:
        """The installation's access token, from the cache unless it is near expiry.

        ``refresh`` forces a new token; with ``stale`` (the token GitHub just
        refused) only if the cache still holds that one, so many requests failing
        at once on a revoked token fetch one replacement, not one each.
        """
        lock = self._locks.setdefault(installation_id, asyncio.Lock())
        async with lock:
            cached = self._tokens.get(installation_id)
            if cached is not None and cached.fresh(time.time()):
                if not refresh or (stale is not None and cached.token != stale):
                    return cached.token
            gh = self.app_api()
            try:
                data = await gh.post(
                    "/app/installations/{installation_id}/access_tokens",
                    url_vars={"installation_id": str(installation_id)},
                    data=b"",
                    jwt=self.jwt(),
                )
            except BadRequest as exc:
                status = int(exc.status_code)
                if status == 429 or isinstance(exc, RateLimitExceeded):
                    # Rate limited: the credentials are fine and a later attempt will
                    # work, so this must stay retryable (not GitHubAuthError).
                    raise
                hint = _TOKEN_REFUSAL_HINTS.get(status, "")
                raise GitHubAuthError(
                    f"GitHub refused an installation token for installation {installation_id}: "
                    f"{status} {exc}{hint}"
                ) from None
            expires = datetime.fromisoformat(data["expires_at"].replace("Z", "+00:00"))
            token = InstallationToken(data["token"], expires.timestamp())
            self._tokens[installation_id] = token
            return token.token

    def forget(self, installation_id: int) -> None:
        self._tokens.pop(installation_id, None)

    async def token(self, installation_id: int | None = None) -> str:
        """The token to act with: the installation's in App mode, else ``PAO_REPO_TOKEN``."""
        if self.app_mode and installation_id is not None:
            return await self.installation_token(installation_id)
        if self.static_token:
            return self.static_token
        if self.app_mode:
            raise GitHubAuthError("no installation id to authenticate as; is the App installed?")
        raise GitHubAuthError("no GitHub credentials: set PAO_APP_ID/PAO_PRIVATE_KEY or PAO_REPO_TOKEN")

    async def api(self, installation_id: int | None = None) -> GitHubAPI:
        """A GitHub API client for the installation (App mode) or the static token."""
        token = await self.token(installation_id)
        if self.app_mode and installation_id is not None:
            return InstallationGitHubAPI(self, installation_id, token)
        return GitHubAPI(
            self.session, USER_AGENT, oauth_token=token, base_url=self.api_url,
            cache=self.http_cache,
        )


class InstallationGitHubAPI(GitHubAPI):
    """A GitHubAPI that fetches a new installation token once when GitHub answers 401.

    Tokens can be revoked before they expire (the App was reinstalled, the key
    rotated); one refresh covers that without a retry storm.
    """

    def __init__(self, clients: GitHubClients, installation_id: int, token: str):
        super().__init__(
            clients.session, USER_AGENT, oauth_token=token, base_url=clients.api_url,
            cache=clients.http_cache,
        )
        self._clients = clients
        self._installation_id = installation_id

    async def _request(
        self, method: str, url: str, headers: Any, body: bytes = b""
    ) -> tuple[int, Any, bytes]:
        status, resp_headers, data = await super()._request(method, url, headers, body)
        if status == 401 and "authorization" in {k.lower() for k in headers}:
            token = await self._clients.installation_token(
                self._installation_id, refresh=True, stale=self.oauth_token
            )
            self.oauth_token = token
            headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
            headers["authorization"] = f"token {token}"
            status, resp_headers, data = await super()._request(method, url, headers, body)
        return status, resp_headers, data
