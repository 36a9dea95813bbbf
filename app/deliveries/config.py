"""Recovery settings: ``PAO_DELIVERY_RECOVERY_INTERVAL``, ``PAO_DELIVERY_RECOVERY_MAX`` and, in
token mode, ``PAO_DELIVERY_HOOK`` (which repository or organisation webhook)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.config import FEATURE_READERS, EnvReader

_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]*"
_HOOK = re.compile(rf"^(?:repos/(?P<owner>{_NAME})/(?P<repo>{_NAME})|orgs/(?P<org>{_NAME}))"
                   r"(?:/hooks/(?P<hook_id>\d{1,18}))?$")
HOOK_FORMS = "repos/OWNER/REPO or orgs/ORG, optionally followed by /hooks/HOOK_ID"


@dataclass(frozen=True)
class HookTarget:
    """A repository's or an organisation's webhook; without ``hook_id``, found by its URL."""

    owner: str
    repo: str | None = None  # None: the organisation's webhook
    hook_id: int | None = None

    @property
    def scope(self) -> str:
        return f"repos/{self.owner}/{self.repo}" if self.repo else f"orgs/{self.owner}"

    def __str__(self) -> str:
        return self.scope + (f"/hooks/{self.hook_id}" if self.hook_id is not None else "")


def parse_target(text: str) -> HookTarget:
    """``repos/OWNER/REPO[/hooks/ID]`` or ``orgs/ORG[/hooks/ID]`` (API paths); ValueError otherwise."""
    match = _HOOK.match(text.strip().strip("/"))
    if match is None:
        raise ValueError(f"expected {HOOK_FORMS}, got {text!r}")
    hook_id = int(match["hook_id"]) if match["hook_id"] else None
    if match["org"]:
        return HookTarget(match["org"], None, hook_id)
    return HookTarget(match["owner"], match["repo"], hook_id)


@dataclass(frozen=True)
class RecoverySettings:
    interval: float = 600.0  # seconds between periodic runs; 0: off
    max_per_run: int = 50  # redeliveries requested per run at most
    hook: HookTarget | None = None  # token mode; None: the catalog repository's webhook


def read(r: EnvReader) -> RecoverySettings:
    """Read the recovery variables; ``PAO_DELIVERY_RECOVERY_INTERVAL=off`` disables the job."""
    raw = r.raw("PAO_DELIVERY_RECOVERY_INTERVAL")
    off = raw is not None and raw.lower() in ("off", "0", "false", "no")
    interval = 0.0 if off else r.duration("PAO_DELIVERY_RECOVERY_INTERVAL", 600.0)
    return RecoverySettings(
        interval=interval,
        max_per_run=r.int("PAO_DELIVERY_RECOVERY_MAX", 50, minimum=1, maximum=1000),
        hook=r.parse("PAO_DELIVERY_HOOK", None, parse_target),
    )


FEATURE_READERS["deliveries"] = read


def recovery_settings(settings: object) -> RecoverySettings:
    """The recovery settings inside ``Settings.extra`` (defaults when absent)."""
    value = (getattr(settings, "extra", None) or {}).get("deliveries")
    return value if isinstance(value, RecoverySettings) else RecoverySettings()
