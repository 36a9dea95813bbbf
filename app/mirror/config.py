"""Mirror settings (``PAO_ONEDEV_*``, ``PAO_MIRROR_*``); mirroring is off without PAO_ONEDEV_URL."""

from __future__ import annotations

import string
from dataclasses import dataclass, field

from app.config import FEATURE_READERS, EnvReader
from app.log import register_secret

UNSTAR_POLICIES = ("keep", "delete")
# suffix: a project name held by something else -> "<name>-<GitHub repository id>";
# adopt: push into an existing project PAO did not create (never another mirror's);
# fail: stop with a clear status.
CONFLICT_POLICIES = ("suffix", "adopt", "fail")
RENAME_POLICIES = ("keep", "rename")
TEMPLATE_FIELDS = {"owner", "repo"}


@dataclass(frozen=True)
class MirrorSettings:
    onedev_url: str | None = None
    onedev_token: str | None = field(default=None, repr=False)
    onedev_user: str | None = None
    onedev_parent: str | None = None
    users: tuple[str, ...] = ()
    poll_interval: float = 15 * 60.0
    refresh_interval: float = 8 * 3600.0
    on_unstar: str = "keep"
    name_template: str = "{owner}-{repo}"
    on_conflict: str = "suffix"
    on_rename: str = "keep"
    timeout: float = 30 * 60.0

    @property
    def enabled(self) -> bool:
        return self.onedev_url is not None


OFF_REASON = "mirroring is off (PAO_ONEDEV_URL is unset)"


def _template_fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


def read(r: EnvReader) -> MirrorSettings:
    """Read and check the mirror variables; problems go to ``r.problems``."""
    url = r.url("PAO_ONEDEV_URL")
    token = r.raw("PAO_ONEDEV_TOKEN")
    register_secret(token)
    if url is not None and token is None:
        r.problems.append("PAO_ONEDEV_TOKEN: required when PAO_ONEDEV_URL is set "
                          "(a OneDev access token allowed to create projects)")
    template = r.str("PAO_MIRROR_NAME_TEMPLATE", "{owner}-{repo}") or "{owner}-{repo}"
    try:
        unknown = _template_fields(template) - TEMPLATE_FIELDS
        if unknown or "{" not in template:
            r.problems.append(
                "PAO_MIRROR_NAME_TEMPLATE: may use only {owner} and {repo}"
                + (f"; unknown: {', '.join(sorted(unknown))}" if unknown else
                   f"; got {template!r}, which names every mirror the same")
            )
            template = "{owner}-{repo}"
    except ValueError as exc:
        r.problems.append(f"PAO_MIRROR_NAME_TEMPLATE: {exc}")
        template = "{owner}-{repo}"
    parent = r.str("PAO_ONEDEV_PARENT")
    if parent is not None:
        parent = parent.strip("/") or None
    return MirrorSettings(
        onedev_url=url,
        onedev_token=token,
        onedev_user=r.str("PAO_ONEDEV_USER"),
        onedev_parent=parent,
        users=tuple(r.list("PAO_MIRROR_USERS")),
        poll_interval=r.duration("PAO_MIRROR_POLL_INTERVAL", 15 * 60.0),
        refresh_interval=r.duration("PAO_MIRROR_REFRESH_INTERVAL", 8 * 3600.0),
        on_unstar=r.choice("PAO_MIRROR_ON_UNSTAR", UNSTAR_POLICIES, "keep"),
        name_template=template,
        on_conflict=r.choice("PAO_MIRROR_ON_CONFLICT", CONFLICT_POLICIES, "suffix"),
        on_rename=r.choice("PAO_MIRROR_ON_RENAME", RENAME_POLICIES, "keep"),
        timeout=r.duration("PAO_MIRROR_TIMEOUT", 30 * 60.0),
    )


FEATURE_READERS["mirror"] = read


def mirror_settings(settings: object) -> MirrorSettings:
    """The mirror settings inside ``Settings.extra`` (defaults: off)."""
    extra = getattr(settings, "extra", None) or {}
    value = extra.get("mirror")
    return value if isinstance(value, MirrorSettings) else MirrorSettings()
