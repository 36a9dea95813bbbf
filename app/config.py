"""Configuration from ``PAO_*`` environment variables, validated once at start-up.

Every problem names the variable and says what is wrong, and all problems are
reported together so an operator fixes them in one pass.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import ParseResult, urlparse

T = TypeVar("T")

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class ConfigError(Exception):
    """One or more environment variables are invalid; ``problems`` lists each."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid configuration:\n" + "\n".join(f"  - {p}" for p in problems))


class StartupError(Exception):
    """A resource the configuration names cannot be used (the database, the listen address):
    the message names the variable, and ``pao`` prints it instead of a traceback."""


class EnvReader:
    """Reads typed values from an environment mapping and collects problems.

    Feature modules (sync, mirror, ...) use the same reader so every variable
    gets the same treatment: defaults, type checks, and messages naming it.
    """

    def __init__(self, env: Mapping[str, str]):
        self.env = env
        self.problems: list[str] = []

    def raw(self, name: str) -> str | None:
        value = self.env.get(name)
        if value is None or value.strip() == "":
            return None
        if not is_utf8(value):
            # os.environ decodes undecodable bytes to lone surrogates, which fail later
            # (HMAC keys, headers, SQL): refuse them here, without quoting a possible secret.
            self.problem(f"{name}: is not valid UTF-8")
            return None
        return value.strip()

    def problem(self, message: str) -> None:
        """Record ``message`` once (a variable may be read more than once)."""
        if message not in self.problems:
            self.problems.append(message)

    def str(self, name: str, default: str | None = None) -> str | None:
        value = self.raw(name)
        return default if value is None else value

    def int(self, name: str, default: int, *, minimum: int = 0, maximum: int | None = None) -> int:
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            self.problems.append(f"{name}: expected a whole number, got {value!r}")
            return default
        if number < minimum or (maximum is not None and number > maximum):
            bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
            self.problems.append(f"{name}: must be {bound}, got {number}")
            return default
        return number

    def duration(self, name: str, default: float) -> float:
        """Seconds, written as ``90``, ``90s``, ``15m``, ``8h`` or ``1d``."""
        value = self.raw(name)
        if value is None:
            return default
        units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
        number, unit = (value[:-1], value[-1]) if value[-1] in units else (value, "s")
        try:
            seconds = float(number) * units[unit]
            if not math.isfinite(seconds):
                raise ValueError(value)
        except ValueError:
            self.problems.append(
                f"{name}: expected a duration such as 90, 90s, 15m or 8h, got {value!r}"
            )
            return default
        if seconds <= 0:
            self.problems.append(f"{name}: must be positive, got {value!r}")
            return default
        if seconds > MAX_DURATION:
            # Beyond this, timers overflow the event loop and SQL intervals.
            self.problems.append(f"{name}: must be at most 366d, got {value!r}")
            return default
        return seconds

    def bool(self, name: str, default: bool) -> bool:
        value = self.raw(name)
        if value is None:
            return default
        lowered = value.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        self.problems.append(f"{name}: expected true or false, got {value!r}")
        return default

    def choice(self, name: str, choices: tuple[str, ...], default: str, *,
               ignore_case: bool = False) -> str:
        value = self.raw(name)
        if value is None:
            return default
        if ignore_case:
            value = next((c for c in choices if c.lower() == value.lower()), value)
        if value not in choices:
            self.problems.append(f"{name}: must be one of {', '.join(choices)}; got {value!r}")
            return default
        return value

    def url(self, name: str, default: str | None = None, *, schemes=("http", "https")) -> str | None:
        value = self.raw(name)
        if value is None:
            return default
        parsed = parse_url(value)
        if parsed is None or parsed.scheme not in schemes or not parsed.netloc:
            self.problems.append(
                f"{name}: expected an absolute {'/'.join(schemes)} URL, got {redact_url(value)!r}"
            )
            return default
        if parsed.username or parsed.password:
            self.problems.append(
                f"{name}: must not carry credentials in the URL; "
                "use the matching token variable instead"
            )
            return default
        return value.rstrip("/")

    def list(self, name: str) -> list[str]:
        value = self.raw(name)
        if value is None:
            return []
        return [part.strip() for part in value.split(",") if part.strip()]

    def check(self, ok: bool, message: str) -> None:
        if not ok:
            self.problems.append(message)

    def parse(self, name: str, default: T, parser: Callable[[str], T]) -> T:
        value = self.raw(name)
        if value is None:
            return default
        try:
            return parser(value)
        except ValueError as exc:
            self.problems.append(f"{name}: {exc}")
            return default


MAX_DURATION = 366 * 86400.0
MAX_KEY_BYTES = 64 * 1024


def is_utf8(value: str) -> bool:
    """False for a string holding undecodable bytes (``surrogateescape``) or lone surrogates."""
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def parse_url(value: str) -> ParseResult | None:
    """``urlparse(value)``, or None when it is no URL at all (a broken IPv6 host, a port
    outside 0..65535): urllib raises on those, and start-up must name the variable instead."""
    try:
        parsed = urlparse(value)
        parsed.port  # noqa: B018  (raises ValueError for a port out of range)
    except ValueError:
        return None
    return parsed


def redact_url(url: str) -> str:
    """The URL with any user:password part replaced, safe to log."""
    parsed = parse_url(url)
    if parsed is None:
        return "(not a URL)"
    if parsed.username is None and parsed.password is None:
        return url
    netloc = parsed.hostname or ""
    if parsed.port:
        netloc += f":{parsed.port}"
    return parsed._replace(netloc="***@" + netloc).geturl()


# What git refuses in a branch name (see git check-ref-format), plus a leading
# dash, which git would read as an option.
_BAD_BRANCH = re.compile(r"(^[-/.])|([/.]$)|(\.\.)|(//)|(@\{)|(\.lock$)|(/\.)|([\x00-\x20~^:?*\[\\\x7f])")


def branch_problem(name: str) -> str | None:
    """Why git would refuse ``name`` as a branch, or None."""
    if name == "@" or _BAD_BRANCH.search(name):
        return "not a valid git branch name"
    return None


def rsa_key_problem(pem: str) -> str | None:
    """Why ``pem`` cannot sign GitHub App JWTs (RS256), or None. Never quotes the key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError):
        return ("cannot load the private key (is it the complete, unencrypted PEM "
                "downloaded from the App's settings?)")
    except Exception:  # cryptography's UnsupportedAlgorithm and friends
        return "cannot load the private key"
    if not isinstance(key, rsa.RSAPrivateKey):
        return "GitHub App keys are RSA; this is another kind of key"
    return None


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "pao"


# Each web process holds a pool of up to 10 connections; PostgreSQL allows 100 by default.
MAX_WEB_PROCESSES = 64
# The default stays within PostgreSQL's default connection limit on big hosts too.
DEFAULT_WEB_PROCESSES_CAP = 4


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity, where the OS tells it)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def default_web_processes() -> int:
    """One web process per usable CPU, at most DEFAULT_WEB_PROCESSES_CAP."""
    return min(usable_cpus(), DEFAULT_WEB_PROCESSES_CAP)


@dataclass(frozen=True)
class Settings:
    """Validated configuration for one PAO process."""

    db_url: str | None = field(default=None, repr=False)  # may hold a password
    data_dir: Path = field(default_factory=default_data_dir)
    webhook_secrets: tuple[str, ...] = ()
    app_id: str | None = None
    private_key: str | None = field(default=None, repr=False)
    repo_url: str | None = None
    repo_branch: str = "main"
    repo_token: str | None = field(default=None, repr=False)
    github_api_url: str = "https://api.github.com"
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "INFO"
    log_format: str = "text"
    workers: int = 4
    web_processes: int = 1
    job_poll_interval: float = 2.0
    job_stall_timeout: float = 120.0
    admin_token: str | None = field(default=None, repr=False)
    retention_days: int = 30
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def app_mode(self) -> bool:
        return self.app_id is not None and self.private_key is not None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read and validate every ``PAO_*`` variable; raise ConfigError listing all problems."""
        env = os.environ if env is None else env
        r = EnvReader(env)
        db_url = r.str("PAO_DB_URL")
        parsed_db_url = parse_url(db_url) if db_url is not None else None
        if db_url is not None and (parsed_db_url is None
                                   or parsed_db_url.scheme not in ("postgres", "postgresql")):
            r.problems.append("PAO_DB_URL: expected a postgresql:// URL")
        data_dir = Path(r.str("PAO_DATA_DIR") or default_data_dir()).expanduser()
        try:
            if data_dir.exists() and not data_dir.is_dir():
                r.problems.append(f"PAO_DATA_DIR: {data_dir} exists and is not a directory")
        except OSError as exc:  # a name too long for the file system, say
            r.problems.append(f"PAO_DATA_DIR: unusable path: {exc.strerror}")

        app_id = r.str("PAO_APP_ID")
        if app_id is not None and not (app_id.isascii() and app_id.isdigit()):
            r.problems.append(f"PAO_APP_ID: expected the numeric App ID, got {app_id!r}")
        private_key = r.raw("PAO_PRIVATE_KEY")
        key_path = r.str("PAO_PRIVATE_KEY_PATH")
        key_var = "PAO_PRIVATE_KEY_PATH" if key_path and not private_key else "PAO_PRIVATE_KEY"
        if private_key and key_path:
            r.problems.append("PAO_PRIVATE_KEY and PAO_PRIVATE_KEY_PATH: set one, not both")
        elif key_path:
            try:
                # A PEM key is a few KB: reading a bounded amount keeps /dev/zero from hanging start-up.
                with Path(key_path).expanduser().open("rb") as key_file:
                    private_key = key_file.read(MAX_KEY_BYTES).decode()
            except OSError as exc:
                r.problems.append(f"PAO_PRIVATE_KEY_PATH: cannot read {key_path}: {exc.strerror}")
            except UnicodeDecodeError:
                r.problems.append(f"PAO_PRIVATE_KEY_PATH: {key_path} is not a PEM text file")
        if private_key is not None:
            # Environments often flatten the PEM's newlines to literal "\n".
            private_key = private_key.replace("\\n", "\n")
            if "PRIVATE KEY-----" not in private_key:
                r.problems.append(
                    f"{key_var}: not a PEM private key (expected '-----BEGIN ... PRIVATE KEY-----')"
                )
            else:
                problem = rsa_key_problem(private_key)
                if problem:
                    r.problems.append(f"{key_var}: {problem}")
        if (app_id is None) != (private_key is None):
            r.problems.append(
                "PAO_APP_ID and PAO_PRIVATE_KEY (or PAO_PRIVATE_KEY_PATH) go together: "
                "set both for GitHub App mode, or neither"
            )

        repo_url = r.str("PAO_REPO_URL")
        if repo_url is not None:
            parsed_repo = parse_url(repo_url)
            scheme = parsed_repo.scheme if parsed_repo is not None else None
            if parsed_repo is None:
                r.problems.append("PAO_REPO_URL: not a valid URL or path")
            elif scheme in ("http", "https"):
                if parsed_repo.username or parsed_repo.password:
                    r.problems.append(
                        "PAO_REPO_URL: must not carry credentials; put the token in PAO_REPO_TOKEN"
                    )
            elif scheme not in ("", "file"):
                r.problems.append(
                    f"PAO_REPO_URL: expected an https URL, a file:// URL or a local path, "
                    f"got scheme {scheme!r}"
                )

        secrets = tuple(r.list("PAO_WEBHOOK_SECRET"))
        if r.raw("PAO_WEBHOOK_SECRET") is not None and not secrets:
            r.problems.append("PAO_WEBHOOK_SECRET: lists no secret (only commas and spaces)")
        repo_branch = r.str("PAO_REPO_BRANCH", "main") or "main"
        problem = branch_problem(repo_branch)
        if problem:
            r.problems.append(f"PAO_REPO_BRANCH: {problem}, got {repo_branch!r}")

        stall_timeout = r.duration("PAO_JOB_STALL_TIMEOUT", 120.0)
        if stall_timeout < 1.0:
            r.problems.append(f"PAO_JOB_STALL_TIMEOUT: must be at least 1s (workers send "
                              f"heartbeats every quarter of it), got {stall_timeout:g}s")
            stall_timeout = 120.0

        settings = cls(
            db_url=db_url,
            data_dir=data_dir,
            webhook_secrets=secrets,
            app_id=app_id,
            private_key=private_key,
            repo_url=repo_url,
            repo_branch=repo_branch,
            repo_token=r.raw("PAO_REPO_TOKEN"),
            github_api_url=r.url("PAO_GITHUB_API_URL", "https://api.github.com")
            or "https://api.github.com",
            host=r.str("PAO_HOST", "127.0.0.1") or "127.0.0.1",
            port=r.int("PAO_PORT", 8000, minimum=0, maximum=65535),
            log_level=r.choice("PAO_LOG_LEVEL", LOG_LEVELS, "INFO", ignore_case=True),
            log_format=r.choice("PAO_LOG_FORMAT", ("text", "json"), "text"),
            workers=r.int("PAO_WORKERS", 4, minimum=0, maximum=256),
            # One per CPU by default: measured side by side (bench/webhook_ingest.py) on a
            # quiet 2-core host, two web processes took 1.27x the deliveries of one at a
            # lower p99, once a delivery cost PostgreSQL half as much (payload kept as text).
            web_processes=r.int("PAO_WEB_PROCESSES", default_web_processes(), minimum=1,
                                maximum=MAX_WEB_PROCESSES),
            job_poll_interval=r.duration("PAO_JOB_POLL_INTERVAL", 2.0),
            job_stall_timeout=stall_timeout,
            admin_token=_admin_token(r),
            retention_days=r.int("PAO_RETENTION_DAYS", 30, minimum=1, maximum=36500),
            extra=_feature_settings(r),
        )
        if r.problems:
            raise ConfigError(r.problems)
        return settings


# Feature modules register a reader here: ``name -> fn(EnvReader) -> settings object``.
# The object is reachable as ``settings.extra[name]``; keeping the readers beside
# the features keeps this module from knowing about mirrors or catalogs.
FEATURE_READERS: dict[str, Callable[[EnvReader], Any]] = {}


def _admin_token(r: EnvReader) -> str | None:
    """PAO_ADMIN_TOKEN grants every right over the API: a short one could be guessed."""
    token = r.raw("PAO_ADMIN_TOKEN")
    if token is not None and len(token) < 16:
        r.problems.append("PAO_ADMIN_TOKEN: use at least 16 characters (a random string, "
                          "e.g. from `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)")
        return None
    return token


def _feature_settings(r: EnvReader) -> dict[str, Any]:
    from app import features  # noqa: F401  (imports the modules that register readers)

    return {name: reader(r) for name, reader in FEATURE_READERS.items()}
