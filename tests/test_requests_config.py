"""Request settings: every bad variable is named at start-up; credentials go by URL prefix."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from app.config import ConfigError, Settings
from app.log import scrub
from app.requests.config import request_settings


def test_defaults_leave_secrets_and_ticket_systems_off():
    rs = request_settings(Settings.from_env({}))
    assert rs.secret_key is None and rs.jira_url is None and rs.http_credentials == ()


def test_every_bad_request_variable_is_reported_by_name():
    env = {"PAO_SECRET_KEY": "not-a-key", "PAO_HTTP_CREDENTIALS": "nonsense,https://x.example/=UNSET_VAR",
           "PAO_JIRA_URL": "https://jira.example.com", "PAO_SERVICENOW_URL": "https://snow.example.com",
           "PAO_SMTP_PORT": "99999", "PAO_TICKET_POLL_INTERVAL": "soon"}
    with pytest.raises(ConfigError) as exc:
        Settings.from_env(env)
    problems = "\n".join(exc.value.problems)
    for name in ("PAO_SECRET_KEY", "UNSET_VAR", "'nonsense'", "PAO_JIRA_TOKEN", "PAO_SERVICENOW_PASSWORD",
                 "PAO_SMTP_PORT", "PAO_TICKET_POLL_INTERVAL"):
        assert name in problems, name
    assert "not-a-key" not in problems  # a wrong key may still be close to a real one


def test_credentials_are_chosen_by_the_longest_url_prefix_and_never_logged():
    key = Fernet.generate_key().decode()
    rs = request_settings(Settings.from_env({
        "PAO_SECRET_KEY": key,
        "PAO_HTTP_CREDENTIALS": "https://api.example.com/=GENERAL_AUTH,https://api.example.com/db/=DB_AUTH",
        "GENERAL_AUTH": "Bearer general-token-123", "DB_AUTH": "Bearer db-token-456"}))
    assert rs.secret_key == key
    assert rs.credential_for("https://api.example.com/db/create").variable == "DB_AUTH"
    assert rs.credential_for("https://api.example.com/cache").variable == "GENERAL_AUTH"
    assert rs.credential_for("https://other.example.com/") is None
    assert "db-token-456" not in scrub("sent Bearer db-token-456 to the API")
    assert "db-token-456" not in repr(rs)
