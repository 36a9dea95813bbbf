"""Which webhook's delivery log recovery reads, and how it asks that webhook for a redelivery.

App mode: the App's webhook (``/app/hook/...``, with the App's JWT). Token mode: a repository's
or an organisation's webhook (``/repos/{owner}/{repo}/hooks/{hook_id}/...`` or
``/orgs/{org}/hooks/{hook_id}/...``, with ``PAO_REPO_TOKEN``): the one ``PAO_DELIVERY_HOOK``
names, or else the catalog repository's webhook whose URL is PAO's webhook endpoint.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from app.console.config import console_settings
from app.deliveries.config import HookTarget, recovery_settings
from app.state import WEBHOOK_PATHS


class HookNotFound(Exception):
    """No single webhook of the repository or organisation points at PAO (the message says how to fix)."""


def points_at_pao(hook_url: str, public_url: str | None) -> bool:
    """True when a webhook's URL is PAO's endpoint: under PAO_PUBLIC_URL when it is set."""
    url = hook_url.rstrip("/")
    if public_url:
        return any(url == public_url.rstrip("/") + path for path in WEBHOOK_PATHS)
    return urlparse(url).path.endswith(WEBHOOK_PATHS)


@dataclass
class HookLog:
    """One webhook's delivery log: list its attempts, ask for one again."""

    name: str  # for messages: "the App's webhook", "repos/acme/catalog/hooks/12"
    gh: Any  # gidgethub GitHubAPI
    path: str  # URI template of the hook: "/app/hook", "/repos/{owner}/{repo}/hooks/{hook_id}"
    url_vars: dict[str, str] = field(default_factory=dict)
    jwt: Callable[[], str] | None = None  # App mode: a fresh JWT per request

    def _auth(self) -> dict[str, Any]:
        return {"jwt": self.jwt()} if self.jwt is not None else {}

    def deliveries(self) -> AsyncIterator[dict[str, Any]]:
        """Newest first, following GitHub's cursor pages."""
        return self.gh.getiter(self.path + "/deliveries?per_page=100", self.url_vars, **self._auth())

    async def redeliver(self, delivery_id: int) -> None:
        await self.gh.post(self.path + "/deliveries/{delivery_id}/attempts",
                           url_vars={**self.url_vars, "delivery_id": str(delivery_id)}, data=b"",
                           **self._auth())


def app_log(github: Any) -> HookLog:
    return HookLog("the App's webhook", github.app_api(), "/app/hook", jwt=github.jwt)


def default_target(settings: Any) -> HookTarget | None:
    """Token mode's usual webhook: the catalog repository's (README: "add a repository webhook")."""
    from app.sync.source import catalog_source

    source = catalog_source(settings)
    if source is None or not source.full_name:
        return None
    owner, repo = source.full_name.split("/", 1)
    return HookTarget(owner, repo)


async def token_log(github: Any, target: HookTarget, public_url: str | None) -> HookLog:
    """The log of ``target`` read with PAO_REPO_TOKEN; its id found by URL when not given."""
    gh = await github.api(None)
    url_vars = {"owner": target.owner, "repo": target.repo} if target.repo else {"org": target.owner}
    scope = "/repos/{owner}/{repo}" if target.repo else "/orgs/{org}"
    hook_id = target.hook_id
    if hook_id is None:
        hooks = [h async for h in gh.getiter(scope + "/hooks?per_page=100", url_vars)]
        ours = [h for h in hooks if points_at_pao(str((h.get("config") or {}).get("url") or ""), public_url)]
        if len(ours) != 1:
            where = f"{target.scope}'s webhooks"
            found = "none points" if not ours else \
                f"{len(ours)} point ({', '.join(str(h['id']) for h in ours)})"
            raise HookNotFound(
                f"{found} at PAO's webhook URL among {where} ({len(hooks)} listed); set "
                f"PAO_DELIVERY_HOOK={target.scope}/hooks/HOOK_ID (the id is in the webhook's "
                "settings URL)" + ("" if public_url else ", or PAO_PUBLIC_URL to match on"))
        hook_id = int(ours[0]["id"])
    return HookLog(f"{target.scope}/hooks/{hook_id}", gh, scope + "/hooks/{hook_id}",
                   {**url_vars, "hook_id": str(hook_id)})


async def resolve(settings: Any, github: Any) -> HookLog | None:
    """The log recovery reads: the App's, else (token mode) the configured or discovered
    repository/organisation webhook; None without credentials or a webhook to look for.

    Raises HookNotFound when token mode has no single webhook pointing at PAO.
    """
    if github.app_mode:
        return app_log(github)
    if not github.static_token:
        return None
    target = recovery_settings(settings).hook or default_target(settings)
    if target is None:
        return None
    return await token_log(github, target, console_settings(settings).public_url)
