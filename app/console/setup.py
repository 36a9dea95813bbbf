"""``/setup``: register PAO as a GitHub App with GitHub's manifest flow, without a restart.

Open while PAO has no App credentials, and only to whoever holds the one-time set-up
token printed at start. The manifest (``app.yml`` with ``PAO_PUBLIC_URL`` filled in) is
posted from the browser to GitHub's "new App" page; GitHub sends the browser back to
``/setup/callback`` with a code, which PAO exchanges (``POST /app-manifests/{code}/conversions``)
for the App's id, private key, webhook secret and OAuth client, stored encrypted.
"""

from __future__ import annotations

import copy
import json
import logging
import re
import secrets
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import yaml
from aiohttp import web
from gidgethub import BadRequest, GitHubException
from gidgethub.aiohttp import GitHubAPI

from app.console import registration
from app.console.config import SECRET_KEY_ADVICE, github_web
from app.console.render import error_page, page
from app.console.session import public_url, read_form, set_console_cookie
from app.crypto import SecretError
from app.github import USER_AGENT
from app.state import RUNTIME

log = logging.getLogger(__name__)
routes = web.RouteTableDef()

MANIFEST_FILE = Path(__file__).resolve().parents[2] / "app.yml"
SETUP_COOKIE = "pao_setup"
SETUP_LIFETIME = 3600  # seconds a browser has to finish, once unlocked
_ORG = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$")


def build_manifest(template: dict[str, Any], base_url: str) -> dict[str, Any]:
    """PAO's App manifest with every URL pointing at ``base_url``."""
    manifest = copy.deepcopy(template)
    manifest["hook_attributes"] = {**manifest.get("hook_attributes", {}),
                                   "url": f"{base_url}/api/v1/webhooks/github"}
    manifest["redirect_url"] = f"{base_url}/setup/callback"
    manifest["callback_urls"] = [f"{base_url}/login/callback"]
    manifest["url"] = base_url
    return manifest


def load_manifest_template() -> dict[str, Any]:
    return yaml.safe_load(MANIFEST_FILE.read_text())


def _closed(request: web.Request) -> web.Response | None:
    """The answer when set-up cannot run: done already, or no PAO_SECRET_KEY to store secrets with."""
    rt = request.app[RUNTIME]
    if rt.settings.app_mode:
        return error_page(request, 404, "PAO is already registered as a GitHub App; set-up is closed.")
    if registration.keys_for(rt.settings) is None:
        return error_page(request, 503, "Set-up needs somewhere safe for the App's secrets: "
                                        + SECRET_KEY_ADVICE + ", then restart PAO.")
    return None


def _setup_session(request: web.Request) -> dict[str, Any] | None:
    keys = registration.keys_for(request.app[RUNTIME].settings)
    cookie = request.cookies.get(SETUP_COOKIE)
    if keys is None or not cookie:
        return None
    try:
        data = keys.unsign("setup", cookie)
    except SecretError:
        return None
    return data if isinstance(data.get("exp"), int) and data["exp"] > time.time() else None


@routes.get("/setup")
async def setup_page(request: web.Request) -> web.Response:
    closed = _closed(request)
    if closed is not None:
        return closed
    session = _setup_session(request)
    if session is None:
        return page(request, "setup_unlock.html", problem=None)
    org = request.query.get("org", "").strip()
    account = request.query.get("account")
    if account is None:
        return page(request, "setup_owner.html", problem=None, org=org)
    if account == "org" and not _ORG.match(org):
        return page(request, "setup_owner.html", status=400, org=org,
                    problem="Enter the organisation's login (letters, digits and hyphens).")
    rt = request.app[RUNTIME]
    keys = registration.keys_for(rt.settings)
    assert keys is not None
    web_url = github_web(rt.settings)
    target = f"{web_url}/organizations/{quote(org)}/settings/apps/new" if account == "org" \
        else f"{web_url}/settings/apps/new"
    state = keys.mac("setup-state", session["nonce"])
    manifest = build_manifest(load_manifest_template(), public_url(request))
    return page(request, "setup_manifest.html", action=f"{target}?{urlencode({'state': state})}",
                manifest=json.dumps(manifest), owner=org if account == "org" else "your personal account",
                base_url=public_url(request))


@routes.post("/setup/unlock")
async def unlock(request: web.Request) -> web.Response:
    closed = _closed(request)
    if closed is not None:
        return closed
    form = await read_form(request)
    token = str(form.get("token", ""))
    rt = request.app[RUNTIME]
    if not token or not await registration.use_setup_token(rt.pool, token):
        return page(request, "setup_unlock.html", status=403,
                    problem="That is not a valid set-up token. Each token works once; "
                            "restart PAO to print a new one.")
    keys = registration.keys_for(rt.settings)
    assert keys is not None
    cookie = keys.sign("setup", {"nonce": secrets.token_urlsafe(16),
                                 "exp": int(time.time()) + SETUP_LIFETIME})
    response = web.HTTPSeeOther("/setup")
    set_console_cookie(request, response, SETUP_COOKIE, cookie, max_age=SETUP_LIFETIME, path="/setup")
    raise response


@routes.get("/setup/callback")
async def callback(request: web.Request) -> web.Response:
    closed = _closed(request)
    if closed is not None:
        return closed
    session = _setup_session(request)
    rt = request.app[RUNTIME]
    keys = registration.keys_for(rt.settings)
    assert keys is not None
    code, state = request.query.get("code", ""), request.query.get("state", "")
    if session is None or not secrets.compare_digest(state, keys.mac("setup-state", session["nonce"])):
        return error_page(request, 403, "This browser did not start this set-up (or it took over an hour); "
                                        "open /setup and start again.")
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,100}", code):
        return error_page(request, 400, "GitHub's answer has no valid code; start again from /setup.")
    gh = GitHubAPI(rt.http, USER_AGENT, base_url=rt.settings.github_api_url)
    try:
        data = await gh.post("/app-manifests/{code}/conversions", url_vars={"code": code}, data=b"")
        reg = registration.AppRegistration.from_conversion(data)
    except GitHubException as exc:
        log.warning("GitHub refused the App manifest code: %s", exc)
        # A 4xx is about the code (expired, used): the person's to redo; else GitHub failed.
        status = 403 if isinstance(exc, BadRequest) else 502
        return error_page(request, status, "GitHub refused the code (a code works once, within an hour): "
                                           "start again from /setup.")
    except (KeyError, TypeError, ValueError):
        return error_page(request, 502,
                          "GitHub's answer lacked the App's credentials; start again from /setup.")
    async with rt.pool.acquire() as conn, conn.transaction():
        stored = await registration.save(conn, reg, keys)
        if stored:
            await conn.execute("DELETE FROM console_setup_tokens")
    if not stored:
        return error_page(request, 409, "Another set-up finished first; this App was not stored. "
                                        f"Delete the App {reg.slug} on GitHub.")
    registration.apply(rt, reg)
    log.info("registered as GitHub App %s (id %s) through /setup", reg.slug, reg.app_id)
    response = page(request, "setup_done.html", reg=reg, install_url=f"{reg.html_url}/installations/new")
    response.del_cookie(SETUP_COOKIE, path="/setup")
    return response
