"""``pao doctor``: check configuration, database, GitHub and OneDev access, and say how to fix each problem.

Each check yields ``Finding``s; a failed one carries the fix. Checks that need an
earlier one (GitHub calls need the configuration) are skipped when it failed.
The exit code is 0 when every check passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import gidgethub

from app.config import ConfigError, Settings

# What the catalog check runs and the sync need from an installation (app.yml).
REQUIRED_PERMISSIONS = {"contents": ("read", "write"), "checks": ("write",),
                        "metadata": ("read", "write")}


@dataclass(frozen=True)
class Finding:
    check: str
    ok: bool
    detail: str
    fix: str = ""


def _fail(check: str, detail: str, fix: str) -> Finding:
    return Finding(check, False, detail, fix)


def configuration(env: Mapping[str, str]) -> tuple[Settings | None, list[Finding]]:
    """Settings from ``env``, and a finding per problem (each names its variable)."""
    try:
        settings = Settings.from_env(env)
    except ConfigError as exc:
        return None, [_fail("configuration", problem, "correct the variable named here "
                            "(README.md, Configuration) and run `pao doctor` again")
                      for problem in exc.problems]
    found = [Finding("configuration", True, "every PAO_* variable is valid")]
    if not settings.webhook_secrets:
        found.append(_fail("configuration", "PAO_WEBHOOK_SECRET is unset: every delivery is refused",
                           "set PAO_WEBHOOK_SECRET to the webhook secret on the App's settings page"))
    if not settings.app_mode and not settings.repo_token:
        found.append(_fail("configuration", "no GitHub credentials",
                           "set PAO_APP_ID and PAO_PRIVATE_KEY_PATH (App mode) or PAO_REPO_TOKEN"))
    return settings, found


def secret_key(settings: Settings) -> list[Finding]:
    """Where the secret key comes from; a key file PAO could not use is a failure."""
    from app.console.config import console_settings
    from app.secret_key import key_path, read_key

    if console_settings(settings).secret_key is not None:
        return [Finding("secret key", True, "from PAO_SECRET_KEY")]
    path = key_path(settings.data_dir)
    try:
        read_key(path)
    except FileNotFoundError:
        return [Finding("secret key", True, f"{path} is generated at the first start (back it up)")]
    except ConfigError as exc:
        return [_fail("secret key", exc.problems[0], "restore the file from a backup (stored App "
                      "secrets need the same key), or set PAO_SECRET_KEY")]
    return [Finding("secret key", True, f"from {path} (PAO_SECRET_KEY is unset; back the file up)")]


def _database_failure(settings: Settings, exc: BaseException) -> Finding:
    where = "PAO_DB_URL" if settings.db_url else f"the embedded server in {settings.data_dir}"
    return _fail("database", f"cannot connect: {type(exc).__name__}: {_scrubbed(exc)}",
                 f"check {where}: is the server up, and are the address and password right?")


async def database(settings: Settings, dsn: str) -> list[Finding]:
    from app import db

    try:
        conn = await asyncio.wait_for(db.connect(dsn), 15)
        try:
            pending = await db.pending_migrations(conn)
        finally:
            await conn.close()
    except Exception as exc:
        return [_database_failure(settings, exc)]
    if pending:
        return [_fail("database", f"migrations not applied: {', '.join(map(str, pending))}",
                      "run `pao migrate`")]
    return [Finding("database", True, "reachable and migrated")]


async def github_app(github: Any) -> list[Finding]:
    """The App's JWT against ``GET /app``."""
    try:
        app = await github.app_api().getitem("/app", jwt=github.jwt())
    except gidgethub.BadRequest as exc:
        return [_fail("GitHub App", f"GET /app answered {exc.status_code}: {exc}",
                      "PAO_APP_ID and PAO_PRIVATE_KEY(_PATH) must be the App's id and a current "
                      "private key from its settings page; the clock must be right (JWT times)")]
    except (gidgethub.GitHubException, aiohttp.ClientError, TimeoutError) as exc:
        return [_fail("GitHub App", f"GitHub unreachable: {type(exc).__name__}: {_scrubbed(exc)}",
                      "check PAO_GITHUB_API_URL and the network path to it")]
    return [Finding("GitHub App", True, f"authenticated as App {app.get('slug')} (id {app.get('id')})")]


async def catalog_repository(settings: Settings, github: Any, pool: Any) -> list[Finding]:
    """The installation on the catalog repository, its permissions, and git access to the branch."""
    from app.git.catalog import ls_remote_head
    from app.git.run import GitError
    from app.sync.source import catalog_source
    from app.sync.tasks import git_token, repository_installation

    source = catalog_source(settings)
    if source is None:
        return [Finding("catalog repository", True, "PAO_REPO_URL unset: the example catalog is served")]
    found: list[Finding] = []
    try:
        if settings.app_mode and source.full_name:
            installation_id = await repository_installation(github, source.full_name)
            if installation_id is None:
                return [_fail("catalog repository", f"the App is not installed on {source.full_name}",
                              f"install the App on {source.full_name} (or on its organisation)")]
            inst = await github.app_api().getitem(f"/app/installations/{installation_id}",
                                                  jwt=github.jwt())
            granted = inst.get("permissions") or {}
            missing = [f"{name}: {levels[-1]}" for name, levels in REQUIRED_PERMISSIONS.items()
                       if granted.get(name) not in levels]
            if missing:
                found.append(_fail("catalog repository", f"installation {installation_id} lacks "
                                   + ", ".join(missing),
                                   "grant these permissions in the App's settings and accept them "
                                   "on the installation (app.yml lists them)"))
        token = await git_token(github, pool, source, None)
        head = await ls_remote_head(source, token)
    except Exception as exc:  # git errors, refused tokens: all are a finding, none a crash
        kind = "the token" if isinstance(exc, GitError) else "the credentials"
        return [*found, _fail("catalog repository", f"cannot read {source.url}: {_scrubbed(exc)}",
                              f"check PAO_REPO_URL and that {kind} may read the repository")]
    if head is None:
        return [*found, _fail("catalog repository", f"branch {source.branch} not found in {source.url}",
                              "set PAO_REPO_BRANCH to the catalog's branch")]
    return [*found, Finding("catalog repository", True,
                            f"{source.url} readable, {source.branch} at {head[:12]}")]


async def delivery_log(settings: Settings, github: Any) -> list[Finding]:
    """Missed-delivery recovery can read its webhook's delivery log (App's, or token mode's
    repository or organisation webhook, found by PAO's URL unless PAO_DELIVERY_HOOK names it)."""
    from app.deliveries.config import recovery_settings
    from app.deliveries.hooks import HookNotFound, resolve

    check = "webhook deliveries"
    if not recovery_settings(settings).interval:
        return [Finding(check, True, "missed-delivery recovery is off (PAO_DELIVERY_RECOVERY_INTERVAL)")]
    token_fix = ("PAO_REPO_TOKEN must be a repository admin's (organisation owner's) and allowed "
                 "webhooks (classic token: scope repo or admin:repo_hook, admin:org_hook for an "
                 "organisation's; fine-grained: the \"Webhooks\" permission, write to redeliver)")
    try:
        log = await resolve(settings, github)
        if log is None:
            return [Finding(check, True, "no webhook log to read, so missed deliveries are not "
                            "recovered; in token mode set PAO_DELIVERY_HOOK to recover them")]
        async for _ in log.deliveries():
            break
    except HookNotFound as exc:
        return [_fail(check, str(exc), "point the webhook at PAO's /api/v1/webhooks/github, or set "
                                       "PAO_DELIVERY_HOOK to the one that does")]
    except gidgethub.BadRequest as exc:
        return [_fail(check, f"GitHub answered {exc.status_code} listing deliveries: {exc}",
                      token_fix if not github.app_mode else
                      "check that the App's webhook is set on its settings page")]
    except (gidgethub.GitHubException, aiohttp.ClientError, TimeoutError) as exc:
        return [_fail(check, f"GitHub unreachable: {type(exc).__name__}: {_scrubbed(exc)}",
                      "check PAO_GITHUB_API_URL and the network path to it")]
    return [Finding(check, True, f"missed deliveries are recovered from {log.name}")]


async def onedev(settings: Settings, http: aiohttp.ClientSession) -> list[Finding]:
    """OneDev answers, accepts the token, and has the parent project."""
    from app.mirror.config import mirror_settings
    from app.mirror.onedev import OneDevAuthError, OneDevClient, OneDevError

    ms = mirror_settings(settings)
    if not ms.enabled:
        return [Finding("OneDev", True, "mirroring is off (PAO_ONEDEV_URL unset)")]
    assert ms.onedev_url and ms.onedev_token
    client = OneDevClient(http, ms.onedev_url, ms.onedev_token, ms.onedev_user, timeout=15)
    try:
        # A query needs a valid token; OneDev has no dry run for "may create projects",
        # which shows at the first mirror (the job fails naming PAO_ONEDEV_TOKEN).
        await client.find_by_name("pao-doctor-probe")
        if ms.onedev_parent and await client.project_id(ms.onedev_parent) is None:
            return [_fail("OneDev", f"parent project {ms.onedev_parent} not found (or not visible "
                          "to the token)", "create it, or correct PAO_ONEDEV_PARENT")]
    except OneDevAuthError as exc:
        return [_fail("OneDev", str(exc), "issue a new access token for an account that may "
                      "create projects and set PAO_ONEDEV_TOKEN")]
    except OneDevError as exc:
        return [_fail("OneDev", str(exc), "check PAO_ONEDEV_URL and that OneDev is up")]
    return [Finding("OneDev", True, f"{ms.onedev_url} reachable, token accepted")]


async def diagnose(env: Mapping[str, str]) -> list[Finding]:
    """Every finding for the configuration in ``env``."""
    from app import db
    from app.github import GitHubClients
    from app.log import register_secret

    settings, found = configuration(env)
    if settings is None:
        return found
    found += secret_key(settings)
    for secret in (*settings.webhook_secrets, settings.repo_token, settings.admin_token):
        register_secret(secret)
    async with contextlib.AsyncExitStack() as stack:
        try:
            # Unset PAO_DB_URL: this starts the embedded server, once for every check.
            dsn = await stack.enter_async_context(db.database_url(settings))
        except Exception as exc:
            db_findings = [_database_failure(settings, exc)]
        else:
            db_findings = await database(settings, dsn)
        found += db_findings
        http = await stack.enter_async_context(
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)))
        github = GitHubClients.from_settings(settings, http)
        if settings.app_mode:
            found += await github_app(github)
        if all(f.ok for f in db_findings) and all(f.ok for f in found if f.check == "GitHub App"):
            pool = await db.create_pool(dsn, min_size=1, max_size=2)
            try:
                found += await catalog_repository(settings, github, pool)
            finally:
                await pool.close()
            found += await delivery_log(settings, github)
        found += await onedev(settings, http)
    return found


def report(findings: list[Finding]) -> str:
    lines = []
    for f in findings:
        lines.append(f"{'ok  ' if f.ok else 'FAIL'}  {f.check}: {f.detail}")
        if not f.ok:
            lines.append(f"      fix: {f.fix}")
    failed = sum(not f.ok for f in findings)
    lines.append("all checks passed" if not failed else f"{failed} problem(s) found")
    return "\n".join(lines)


def _scrubbed(exc: BaseException) -> str:
    from app.log import scrub

    return scrub(str(exc))


async def _cmd(args: argparse.Namespace) -> int:
    findings = await diagnose(os.environ)
    print(report(findings))
    return 0 if all(f.ok for f in findings) else 1


def add_commands(sub: Any) -> None:
    p = sub.add_parser("doctor", help="check configuration, database, GitHub and OneDev access")
    p.set_defaults(func=_cmd)



