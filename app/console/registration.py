"""The GitHub App PAO registered through ``/setup``: stored encrypted, applied without a restart.

``PAO_APP_ID`` / ``PAO_PRIVATE_KEY`` win when set; otherwise a process reads the stored
registration when it starts (``apply_stored``), and ``/setup`` applies a new one to the
running process (``apply``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import secrets
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from app.console.config import console_settings
from app.crypto import Keys, SecretError
from app.log import register_secret

log = logging.getLogger(__name__)

# NOTIFY channel of a new registration: every process's watcher (app/console/startup.py) adopts it.
CHANNEL = "pao_app_registration"
# Runtime.extra key of the OAuth client PAO signs people in with.
OAUTH_CLIENT = "console.oauth_client"


@dataclass(frozen=True)
class OAuthClient:
    client_id: str
    client_secret: str = field(repr=False)


@dataclass(frozen=True)
class AppRegistration:
    """What GitHub's manifest conversion returned, as PAO keeps it."""

    app_id: int
    slug: str
    html_url: str
    client_id: str
    private_key: str = field(repr=False)
    webhook_secret: str | None = field(repr=False)
    client_secret: str = field(repr=False)

    @classmethod
    def from_conversion(cls, data: dict[str, Any]) -> AppRegistration:
        """From ``POST /app-manifests/{code}/conversions``'s answer; KeyError/TypeError if malformed."""
        return cls(app_id=int(data["id"]), slug=str(data["slug"]), html_url=str(data["html_url"]),
                   client_id=str(data["client_id"]), private_key=str(data["pem"]),
                   webhook_secret=data.get("webhook_secret"), client_secret=str(data["client_secret"]))


def keys_for(settings: Any) -> Keys | None:
    """The keys from PAO_SECRET_KEY, or None when it is unset."""
    secret_key = console_settings(settings).secret_key
    return Keys(secret_key) if secret_key else None


async def save(conn: asyncpg.Connection, reg: AppRegistration, keys: Keys) -> bool:
    """Store ``reg`` unless an App is already stored; True when this one was stored.

    In the caller's transaction: the other processes are notified when it commits.
    """
    stored = await conn.fetchval(
        """INSERT INTO github_app_registration (app_id, slug, html_url, client_id, private_key_encrypted,
                                                webhook_secret_encrypted, client_secret_encrypted)
           VALUES ($1, $2, $3, $4, $5, $6, $7)
           ON CONFLICT (singleton) DO NOTHING RETURNING app_id""",
        reg.app_id, reg.slug, reg.html_url, reg.client_id, keys.encrypt(reg.private_key),
        keys.encrypt(reg.webhook_secret) if reg.webhook_secret else None, keys.encrypt(reg.client_secret))
    if stored is not None:
        await conn.execute("SELECT pg_notify($1, '')", CHANNEL)
    return stored is not None


async def load(conn: asyncpg.Connection | asyncpg.Pool, keys: Keys) -> AppRegistration | None:
    row = await conn.fetchrow("SELECT * FROM github_app_registration")
    if row is None:
        return None
    secret = row["webhook_secret_encrypted"]
    return AppRegistration(
        app_id=row["app_id"], slug=row["slug"], html_url=row["html_url"], client_id=row["client_id"],
        private_key=keys.decrypt(row["private_key_encrypted"]),
        webhook_secret=keys.decrypt(secret) if secret else None,
        client_secret=keys.decrypt(row["client_secret_encrypted"]))


async def is_registered(conn: asyncpg.Connection | asyncpg.Pool) -> bool:
    return bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM github_app_registration)"))


def apply(rt: Any, reg: AppRegistration) -> None:
    """Make the running process act as the App: API clients, webhook secret, sign-in."""
    for value in (reg.private_key, reg.webhook_secret, reg.client_secret):
        register_secret(value)
    secrets_now = rt.settings.webhook_secrets
    if reg.webhook_secret and reg.webhook_secret not in secrets_now:
        secrets_now = (*secrets_now, reg.webhook_secret)
    rt.settings = dataclasses.replace(rt.settings, app_id=str(reg.app_id), private_key=reg.private_key,
                                      webhook_secrets=secrets_now)
    rt.github.app_id = str(reg.app_id)
    rt.github.private_key = reg.private_key
    rt.extra[OAUTH_CLIENT] = OAuthClient(reg.client_id, reg.client_secret)
    # Whoever keeps its own reference to the settings (a Worker's jobs) sees the App too.
    for listener in getattr(rt, "settings_listeners", ()):
        listener(rt.settings)


async def apply_stored(rt: Any) -> None:
    """At start: use the stored App unless PAO_APP_ID is set; and the OAuth client from the env."""
    console = console_settings(rt.settings)
    if console.client_id and console.client_secret:
        rt.extra[OAUTH_CLIENT] = OAuthClient(console.client_id, console.client_secret)
    if rt.settings.app_mode:
        return
    keys = keys_for(rt.settings)
    if keys is None:
        return
    try:
        reg = await load(rt.pool, keys)
    except SecretError as exc:
        log.error("the GitHub App registered through /setup cannot be used: %s", exc)
        return
    if reg is not None:
        apply(rt, reg)
        log.info("acting as GitHub App %s (id %s), registered through /setup", reg.slug, reg.app_id)


def hash_setup_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def new_setup_token(conn: asyncpg.Connection | asyncpg.Pool) -> str:
    """A fresh one-time set-up token (only its hash is stored)."""
    token = "pao_setup_" + secrets.token_urlsafe(24)
    await conn.execute("INSERT INTO console_setup_tokens (token_hash) VALUES ($1)", hash_setup_token(token))
    register_secret(token)
    return token


async def use_setup_token(conn: asyncpg.Connection | asyncpg.Pool, token: str) -> bool:
    """True, once, for a token printed at start."""
    used = await conn.fetchval("DELETE FROM console_setup_tokens WHERE token_hash = $1 RETURNING 1",
                               hash_setup_token(token.strip()))
    return used is not None
