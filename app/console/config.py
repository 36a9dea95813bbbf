"""Console settings (``PAO_PUBLIC_URL``, ``PAO_SECRET_KEY``, ``PAO_GITHUB_URL``, admins)."""

from __future__ import annotations

from dataclasses import dataclass, field

from app.config import FEATURE_READERS, EnvReader
from app.github.hosts import github_web_url
from app.log import register_secret

# Shortest PAO_SECRET_KEY accepted: it protects stored App secrets and signs sessions.
MIN_SECRET_KEY = 32
SECRET_KEY_ADVICE = ("set PAO_SECRET_KEY to a random string of at least 32 characters, e.g. the output "
                     "of: python3 -c 'import secrets; print(secrets.token_urlsafe(32))'")


@dataclass(frozen=True)
class ConsoleSettings:
    public_url: str | None = None  # where browsers and GitHub reach PAO
    secret_key: str | None = field(default=None, repr=False)
    github_url: str | None = None  # GitHub's web host (login, new-App pages); None: from the API URL
    admin_users: frozenset[str] = frozenset()  # GitHub logins (lower case)
    admin_teams: frozenset[str] = frozenset()  # "org/team-slug" (lower case)
    # OAuth client of an App registered by hand (PAO_APP_ID); /setup stores its own.
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)


def read(r: EnvReader) -> ConsoleSettings:
    secret_key = r.raw("PAO_SECRET_KEY")
    if secret_key is not None and len(secret_key) < MIN_SECRET_KEY:
        r.problems.append(f"PAO_SECRET_KEY: too short ({len(secret_key)} characters); {SECRET_KEY_ADVICE}")
        secret_key = None
    register_secret(secret_key)
    teams = frozenset(t.lower() for t in r.list("PAO_ADMIN_TEAMS"))
    for team in teams:
        r.check(team.count("/") == 1 and all(team.split("/")),
                f"PAO_ADMIN_TEAMS: expected ORG/TEAM-SLUG entries, got {team!r}")
    client_id, client_secret = r.str("PAO_GITHUB_CLIENT_ID"), r.raw("PAO_GITHUB_CLIENT_SECRET")
    r.check((client_id is None) == (client_secret is None),
            "PAO_GITHUB_CLIENT_ID and PAO_GITHUB_CLIENT_SECRET go together: set both or neither")
    register_secret(client_secret)
    return ConsoleSettings(
        public_url=r.url("PAO_PUBLIC_URL"),
        secret_key=secret_key,
        github_url=r.url("PAO_GITHUB_URL"),
        admin_users=frozenset(u.lower() for u in r.list("PAO_ADMIN_USERS")),
        admin_teams=teams,
        client_id=client_id,
        client_secret=client_secret,
    )


FEATURE_READERS["console"] = read


def console_settings(settings: object) -> ConsoleSettings:
    """The console part of a ``Settings`` (defaults when it was built without it, as in tests)."""
    extra = getattr(settings, "extra", {}) or {}
    found = extra.get("console")
    return found if isinstance(found, ConsoleSettings) else ConsoleSettings()


def github_web(settings: object) -> str:
    """GitHub's web address for ``settings``: PAO_GITHUB_URL, else derived from the API's."""
    return github_web_url(str(getattr(settings, "github_api_url", "https://api.github.com")),
                          console_settings(settings).github_url)
