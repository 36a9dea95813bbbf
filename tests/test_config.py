"""Start-up configuration: defaults, and errors that name the variable and the problem."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from app.config import ConfigError, Settings, usable_cpus
from app.log import register_secret, scrub

ROOT = Path(__file__).resolve().parent.parent


def test_defaults_need_no_configuration():
    s = Settings.from_env({})
    assert s.db_url is None  # embedded PostgreSQL
    assert s.repo_branch == "main"
    assert s.github_api_url == "https://api.github.com"
    assert (s.host, s.port) == ("127.0.0.1", 8000)
    assert (s.log_level, s.log_format) == ("INFO", "text")
    assert not s.app_mode


def test_web_processes_default_to_one_per_cpu_and_are_validated():
    assert Settings.from_env({}).web_processes == min(usable_cpus(), 4)
    assert Settings.from_env({"PAO_WEB_PROCESSES": "4"}).web_processes == 4
    with pytest.raises(ConfigError) as err:
        Settings.from_env({"PAO_WEB_PROCESSES": "0"})
    assert "PAO_WEB_PROCESSES: must be between 1 and 64, got 0" in str(err.value)


def test_sync_parse_processes_default_to_the_cpus_and_are_validated():
    from app.sync.config import default_parse_processes, sync_settings

    assert sync_settings(Settings.from_env({})).parse_processes == default_parse_processes() >= 1
    assert sync_settings(Settings.from_env({"PAO_SYNC_PARSE_PROCESSES": "1"})).parse_processes == 1
    for bad, says in (("0", "must be between 1 and 64, got 0"), ("two", "expected a whole number")):
        with pytest.raises(ConfigError) as err:
            Settings.from_env({"PAO_SYNC_PARSE_PROCESSES": bad})
        assert f"PAO_SYNC_PARSE_PROCESSES: {says}" in str(err.value)


def test_webhook_secret_list_allows_rotation():
    s = Settings.from_env({"PAO_WEBHOOK_SECRET": "old-secret, new-secret"})
    assert s.webhook_secrets == ("old-secret", "new-secret")


def test_every_problem_is_reported_with_its_variable():
    env = {
        "PAO_PORT": "eighty",
        "PAO_LOG_LEVEL": "LOUD",
        "PAO_LOG_FORMAT": "xml",
        "PAO_APP_ID": "abc",
        "PAO_GITHUB_API_URL": "ftp://github.example.com",
        "PAO_DB_URL": "mysql://localhost/pao",
        "PAO_JOB_STALL_TIMEOUT": "soon",
    }
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env)
    text = str(info.value)
    for name in env:
        assert name in text, f"{name} missing from: {text}"
    assert "expected a whole number" in text and "'eighty'" in text


def test_app_id_without_key_is_refused():
    with pytest.raises(ConfigError, match="PAO_APP_ID and PAO_PRIVATE_KEY"):
        Settings.from_env({"PAO_APP_ID": "123"})


def rsa_pem() -> str:
    from tests.fakes.github import AppKey

    return AppKey.generate().private_pem


def test_private_key_path_is_read_and_checked(tmp_path):
    key = tmp_path / "key.pem"
    key.write_text(rsa_pem())
    s = Settings.from_env({"PAO_APP_ID": "123", "PAO_PRIVATE_KEY_PATH": str(key)})
    assert s.app_mode and s.private_key.startswith("-----BEGIN")
    with pytest.raises(ConfigError, match="PAO_PRIVATE_KEY_PATH: cannot read"):
        Settings.from_env({"PAO_APP_ID": "123", "PAO_PRIVATE_KEY_PATH": str(tmp_path / "nope")})
    with pytest.raises(ConfigError, match="not a PEM private key"):
        Settings.from_env({"PAO_APP_ID": "123", "PAO_PRIVATE_KEY": "hunter2"})


def test_flattened_pem_newlines_are_restored():
    flat = rsa_pem().strip().replace("\n", "\\n")
    s = Settings.from_env({"PAO_APP_ID": "1", "PAO_PRIVATE_KEY": flat})
    assert "\n" in s.private_key and "\\n" not in s.private_key


def test_repo_url_with_credentials_is_refused_without_echoing_them():
    with pytest.raises(ConfigError) as info:
        Settings.from_env({"PAO_REPO_URL": "https://user:ghp_secretsecret@github.com/o/r.git"})
    assert "PAO_REPO_TOKEN" in str(info.value)
    assert "ghp_secretsecret" not in str(info.value)


def test_repo_url_accepts_local_paths_and_file_urls():
    assert Settings.from_env({"PAO_REPO_URL": "/srv/catalog"}).repo_url == "/srv/catalog"
    assert Settings.from_env({"PAO_REPO_URL": "file:///srv/catalog"}).repo_url
    with pytest.raises(ConfigError, match="PAO_REPO_URL"):
        Settings.from_env({"PAO_REPO_URL": "ssh://git@github.com/o/r.git"})


def test_secrets_stay_out_of_repr():
    s = Settings.from_env({"PAO_REPO_TOKEN": "ghp_abcdefabcdefabcdef12",
                           "PAO_ADMIN_TOKEN": "adm1n-t0ken-of-some-length"})
    assert "ghp_abcdef" not in repr(s) and "adm1n" not in repr(s)
    s = Settings.from_env({"PAO_DB_URL": "postgresql://pao:db-passw0rd@db.internal/pao"})
    assert "db-passw0rd" not in repr(s)


def test_a_short_admin_token_is_refused_naming_the_variable():
    with pytest.raises(ConfigError, match="PAO_ADMIN_TOKEN: use at least 16 characters"):
        Settings.from_env({"PAO_ADMIN_TOKEN": "admin"})
    assert Settings.from_env({"PAO_ADMIN_TOKEN": "x" * 16}).admin_token == "x" * 16


def test_scrub_hides_tokens_and_url_credentials():
    register_secret("my-very-own-secret")
    line = ("clone https://x-access-token:ghs_0123456789abcdefghijABCD@github.com/o/r.git "
            "Authorization: Bearer abc.def.ghi my-very-own-secret github_pat_11ABCDEFG0123456789_xyz")
    out = scrub(line)
    for leaked in ("ghs_0123", "abc.def.ghi", "my-very-own-secret", "github_pat_11"):
        assert leaked not in out
    assert "https://***@github.com/o/r.git" in out


def test_app_manifest_is_a_valid_github_app_manifest():
    manifest = yaml.safe_load((ROOT / "app.yml").read_text())
    assert manifest["name"] and manifest["url"].startswith("https://")
    assert manifest["hook_attributes"]["url"].endswith("/api/v1/webhooks/github")
    assert manifest["default_permissions"] == {
        "contents": "write", "checks": "write", "metadata": "read", "pull_requests": "write",
        "members": "read",  # members: sign-in reads the user's teams
        "issues": "write", "actions": "write"}
    assert set(manifest["default_events"]) == {
        "push", "pull_request", "check_suite", "check_run", "star", "watch", "installation",
        "installation_repositories", "issues", "workflow_run"}
    # Only keys GitHub's manifest flow knows.
    known = {"name", "url", "hook_attributes", "redirect_url", "callback_urls", "setup_url",
             "description", "public", "default_events", "default_permissions",
             "request_oauth_on_install", "setup_on_update"}
    assert set(manifest) <= known


def test_procfile_runs_web_worker_and_migrations():
    lines = dict(line.split(":", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line)
    assert "pao serve" in lines["web"] and "pao worker" in lines["worker"]
    assert "pao migrate" in lines["release"]


def test_private_key_that_cannot_sign_is_refused_without_echoing_it():
    body = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7notakey"
    pem = f"-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----\n"
    with pytest.raises(ConfigError) as info:
        Settings.from_env({"PAO_APP_ID": "123", "PAO_PRIVATE_KEY": pem})
    assert "PAO_PRIVATE_KEY" in str(info.value) and body not in str(info.value)


def test_webhook_secret_that_lists_no_secret_is_refused():
    with pytest.raises(ConfigError, match="PAO_WEBHOOK_SECRET"):
        Settings.from_env({"PAO_WEBHOOK_SECRET": " , ,"})


@pytest.mark.parametrize("branch", ["-c core.x=y", "feature branch", "a..b", "main.lock",
                                    "topic/", "x~1", "what?"])
def test_repo_branch_that_git_would_refuse_is_refused(branch):
    with pytest.raises(ConfigError, match="PAO_REPO_BRANCH"):
        Settings.from_env({"PAO_REPO_BRANCH": branch})
    assert Settings.from_env({"PAO_REPO_BRANCH": "release/2.x"}).repo_branch == "release/2.x"


def test_log_level_is_case_insensitive():
    assert Settings.from_env({"PAO_LOG_LEVEL": "debug"}).log_level == "DEBUG"


def test_data_dir_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "f").write_text("")
    with pytest.raises(ConfigError, match="PAO_DATA_DIR"):
        Settings.from_env({"PAO_DATA_DIR": str(tmp_path / "f")})


def test_stall_timeout_too_short_for_heartbeats_is_refused():
    # Heartbeats go out at most every 0.2 s: a shorter stall timeout would have
    # peers take over every running job.
    with pytest.raises(ConfigError, match="PAO_JOB_STALL_TIMEOUT"):
        Settings.from_env({"PAO_JOB_STALL_TIMEOUT": "0.1"})
    assert Settings.from_env({"PAO_JOB_STALL_TIMEOUT": "1"}).job_stall_timeout == 1.0


def test_procfile_web_listens_on_the_platforms_port():
    # Heroku-style platforms (and foreman/honcho) give the web process its port in
    # $PORT, and route to nothing else.
    import subprocess

    web = dict(line.split(":", 1) for line in (ROOT / "Procfile").read_text().splitlines()
               if line)["web"]
    expanded = subprocess.run(["bash", "-c", f"echo {web}"], env={"PORT": "5123"},
                              capture_output=True, text=True, check=True).stdout
    assert "--port 5123" in expanded and "--host 0.0.0.0" in expanded


URL_VARIABLES = ("PAO_GITHUB_API_URL", "PAO_GITHUB_URL", "PAO_PUBLIC_URL", "PAO_ONEDEV_URL",
                 "PAO_JIRA_URL", "PAO_SERVICENOW_URL", "PAO_NOTIFY_SLACK_URL",
                 "PAO_NOTIFY_WEBHOOK_URL", "PAO_DB_URL", "PAO_REPO_URL")


@pytest.mark.parametrize("value", ["http://[::1", "https://host:99999/x"])
@pytest.mark.parametrize("name", URL_VARIABLES)
def test_a_url_urllib_cannot_parse_is_a_problem_naming_its_variable(name, value):
    with pytest.raises(ConfigError) as info:
        Settings.from_env({name: value})
    assert name in str(info.value)


def test_team_slack_urls_that_are_no_urls_are_named():
    with pytest.raises(ConfigError, match="PAO_NOTIFY_TEAM_SLACK_URLS"):
        Settings.from_env({"PAO_NOTIFY_TEAM_SLACK_URLS": "web=http://[::1"})


DURATIONS = ("PAO_JOB_POLL_INTERVAL", "PAO_JOB_STALL_TIMEOUT", "PAO_MIRROR_POLL_INTERVAL",
             "PAO_MIRROR_REFRESH_INTERVAL", "PAO_MIRROR_TIMEOUT", "PAO_HTTP_POLL_INTERVAL",
             "PAO_HTTP_TIMEOUT", "PAO_TICKET_POLL_INTERVAL", "PAO_DELIVERY_RECOVERY_INTERVAL")


@pytest.mark.parametrize("value", ["nan", "inf", "1e309", "-inf", "99999999999999999999d", "400d"])
@pytest.mark.parametrize("name", DURATIONS)
def test_durations_must_be_finite_and_below_a_year(name, value):
    # nan passed "> 0" and reached asyncio timers; huge values overflow them and SQL intervals.
    with pytest.raises(ConfigError) as info:
        Settings.from_env({name: value})
    assert name in str(info.value)
    assert Settings.from_env({name: "366d"})  # the largest accepted


def test_retention_has_an_upper_bound():
    with pytest.raises(ConfigError, match="PAO_RETENTION_DAYS: must be between 1 and 36500"):
        Settings.from_env({"PAO_RETENTION_DAYS": "99999999999999999999"})


@pytest.mark.parametrize("name", ["PAO_WEBHOOK_SECRET", "PAO_REPO_BRANCH", "PAO_ONEDEV_TOKEN",
                                  "PAO_JIRA_TOKEN", "PAO_HOST", "PAO_ADMIN_USERS"])
def test_values_that_are_not_utf8_are_refused_without_quoting_them(name):
    # os.environ turns undecodable bytes into lone surrogates: "\udcff" is the byte 0xff.
    env = {name: "secret\udcffvalue", "PAO_JIRA_URL": "https://jira.example.com"}
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env)
    assert f"{name}: is not valid UTF-8" in info.value.problems
    assert "secret" not in str(info.value)


def test_app_id_takes_ascii_digits_only():
    with pytest.raises(ConfigError, match="PAO_APP_ID: expected the numeric App ID"):
        Settings.from_env({"PAO_APP_ID": "١٢٣", "PAO_PRIVATE_KEY": rsa_pem()})


def test_unusable_data_dir_and_key_path_are_named(tmp_path):
    with pytest.raises(ConfigError, match="PAO_DATA_DIR: unusable path"):
        Settings.from_env({"PAO_DATA_DIR": str(tmp_path / ("x" * 5000))})
    binary = tmp_path / "key.der"
    binary.write_bytes(b"\x30\x82\xff\xfe" * 100)
    with pytest.raises(ConfigError, match=r"PAO_PRIVATE_KEY_PATH: .* is not a PEM text file"):
        Settings.from_env({"PAO_APP_ID": "1", "PAO_PRIVATE_KEY_PATH": str(binary)})
    # A device that never ends is read only as far as a key could go.
    with pytest.raises(ConfigError, match="PAO_PRIVATE_KEY_PATH: not a PEM private key"):
        Settings.from_env({"PAO_APP_ID": "1", "PAO_PRIVATE_KEY_PATH": "/dev/zero"})
