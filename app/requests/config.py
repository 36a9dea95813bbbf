"""Request settings: ``PAO_SECRET_KEY`` (secret fields at rest) and ``PAO_HTTP_CREDENTIALS``."""

from __future__ import annotations

from dataclasses import dataclass, field

from app.config import FEATURE_READERS, EnvReader
from app.log import register_secret


@dataclass(frozen=True)
class HttpCredential:
    """An ``Authorization`` header value sent to URLs under ``prefix``."""

    prefix: str
    variable: str
    value: str = field(repr=False)


@dataclass(frozen=True)
class RequestSettings:
    secret_key: str | None = field(default=None, repr=False)
    http_credentials: tuple[HttpCredential, ...] = ()
    http_poll_interval: float = 5.0
    http_timeout: float = 30.0
    ticket_poll_interval: float = 300.0
    retention_days: int = 90  # ended requests unchanged this long are purged; 0 keeps them
    jira_url: str | None = None
    jira_user: str | None = None  # set: Jira Cloud basic auth (e-mail, API token)
    jira_token: str | None = field(default=None, repr=False)
    jira_webhook_secret: str | None = field(default=None, repr=False)
    servicenow_url: str | None = None
    servicenow_user: str | None = None  # set: basic auth with the password; else the token
    servicenow_password: str | None = field(default=None, repr=False)
    servicenow_token: str | None = field(default=None, repr=False)
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_from: str = "pao@localhost"
    smtp_user: str | None = None
    smtp_password: str | None = field(default=None, repr=False)
    smtp_starttls: bool = False

    def credential_for(self, url: str) -> HttpCredential | None:
        """The credential with the longest prefix of ``url``; None when none matches."""
        matches = [c for c in self.http_credentials if url.startswith(c.prefix)]
        return max(matches, key=lambda c: len(c.prefix), default=None)


def _credentials(r: EnvReader) -> tuple[HttpCredential, ...]:
    """``PAO_HTTP_CREDENTIALS=https://hooks.example.com/=HOOKS_AUTH,...``: URL prefix = env var.

    The catalog never holds credentials: an operator maps URL prefixes to variables
    whose values are whole ``Authorization`` header values (``Bearer ...``).
    """
    found: list[HttpCredential] = []
    for entry in r.list("PAO_HTTP_CREDENTIALS"):
        prefix, sep, variable = entry.rpartition("=")
        if not sep or not prefix.startswith(("http://", "https://")) or not variable:
            r.problems.append("PAO_HTTP_CREDENTIALS: expected URL_PREFIX=ENV_VAR entries separated "
                              f"by commas, got {entry!r}")
            continue
        value = r.raw(variable)
        if value is None:
            r.problems.append(f"PAO_HTTP_CREDENTIALS: {variable} (for {prefix}) is unset or empty")
            continue
        register_secret(value)
        found.append(HttpCredential(prefix, variable, value))
    return tuple(found)


def read(r: EnvReader) -> RequestSettings:
    key = r.raw("PAO_SECRET_KEY")
    # Its form (length) is checked once, with the console's settings (app/console/config.py).
    register_secret(key)
    jira_url = r.url("PAO_JIRA_URL")
    jira_token = r.raw("PAO_JIRA_TOKEN")
    if jira_url is not None and jira_token is None:
        r.problems.append("PAO_JIRA_TOKEN: required when PAO_JIRA_URL is set (a Data Center personal "
                          "access token, or a Cloud API token with PAO_JIRA_USER)")
    smtp_password = r.raw("PAO_SMTP_PASSWORD")
    snow_url = r.url("PAO_SERVICENOW_URL")
    snow_password, snow_token = r.raw("PAO_SERVICENOW_PASSWORD"), r.raw("PAO_SERVICENOW_TOKEN")
    if snow_url is not None and snow_token is None and snow_password is None:
        r.problems.append("PAO_SERVICENOW_PASSWORD: required when PAO_SERVICENOW_URL is set (with "
                          "PAO_SERVICENOW_USER), or set PAO_SERVICENOW_TOKEN (an OAuth bearer token)")
    for secret in (jira_token, r.raw("PAO_JIRA_WEBHOOK_SECRET"), smtp_password, snow_password, snow_token):
        register_secret(secret)
    return RequestSettings(
        jira_url=jira_url, jira_user=r.str("PAO_JIRA_USER"), jira_token=jira_token,
        jira_webhook_secret=r.raw("PAO_JIRA_WEBHOOK_SECRET"),
        servicenow_url=snow_url, servicenow_user=r.str("PAO_SERVICENOW_USER"),
        servicenow_password=snow_password, servicenow_token=snow_token,
        smtp_host=r.str("PAO_SMTP_HOST"), smtp_port=r.int("PAO_SMTP_PORT", 25, minimum=1, maximum=65535),
        smtp_from=r.str("PAO_SMTP_FROM", "pao@localhost") or "pao@localhost",
        smtp_user=r.str("PAO_SMTP_USER"), smtp_password=smtp_password,
        smtp_starttls=r.bool("PAO_SMTP_STARTTLS", False),
        secret_key=key,
        http_credentials=_credentials(r),
        http_poll_interval=r.duration("PAO_HTTP_POLL_INTERVAL", 5.0),
        http_timeout=r.duration("PAO_HTTP_TIMEOUT", 30.0),
        ticket_poll_interval=r.duration("PAO_TICKET_POLL_INTERVAL", 300.0),
        retention_days=r.int("PAO_REQUEST_RETENTION_DAYS", 90, minimum=0, maximum=36500),
    )


FEATURE_READERS["requests"] = read


def request_settings(settings: object) -> RequestSettings:
    """The request settings inside ``Settings.extra`` (defaults when absent)."""
    extra = getattr(settings, "extra", None) or {}
    value = extra.get("requests")
    return value if isinstance(value, RequestSettings) else RequestSettings()
