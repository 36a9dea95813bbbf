"""Sign in with GitHub: the App's OAuth (user-to-server) flow makes a PAO identity.

``/login`` → GitHub's authorize page → ``/login/callback``: the code is exchanged for a
user token, which reads ``GET /user`` and ``GET /user/teams`` once and is then dropped;
the login and team become the session (``app/console/session.py``).
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from typing import Any
from urllib.parse import urlencode

from aiohttp import ClientError, web
from gidgethub import GitHubException
from gidgethub.aiohttp import GitHubAPI

from app.console import registration
from app.console.config import console_settings, github_web
from app.console.render import error_page, page
from app.console.session import (
    SESSION_COOKIE,
    csrf_checked_form,
    csrf_refused,
    current_user,
    decide_identity,
    new_identity,
    public_url,
    set_console_cookie,
    set_session,
)
from app.crypto import SecretError
from app.github import USER_AGENT
from app.log import register_secret
from app.state import RUNTIME

log = logging.getLogger(__name__)
routes = web.RouteTableDef()

OAUTH_COOKIE = "pao_oauth"
OAUTH_LIFETIME = 600  # seconds between leaving for GitHub and coming back
MAX_TEAM_PAGES = 10  # 1,000 teams: more than anyone is in
MAX_NEXT = 2000  # the path rides in the sign-in cookie, which browsers cap at 4 KB
VALID_CODE = re.compile(r"[A-Za-z0-9_-]{1,100}")  # GitHub's codes are 20 hex characters


def safe_next(value: str | None) -> str:
    """Where to go after signing in: a path on this site only (no open redirect).

    Browsers drop tabs and newlines from a URL (``/\t/evil.example`` is ``//evil.example``),
    and so does the Location header's URL parser: no control character or space passes.
    """
    if not value or len(value) > MAX_NEXT or not value.startswith("/") or value.startswith("//") \
            or "\\" in value or any(ord(c) <= 0x20 or ord(c) == 0x7F for c in value):
        return "/catalog"
    return value


def _oauth_client(request: web.Request) -> registration.OAuthClient | None:
    client = request.app[RUNTIME].extra.get(registration.OAUTH_CLIENT)
    return client if isinstance(client, registration.OAuthClient) else None


@routes.get("/login")
async def login_page(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    if current_user(request) is not None:
        raise web.HTTPSeeOther(safe_next(request.query.get("next")))
    problem = None
    if registration.keys_for(rt.settings) is None:
        problem = "Sign-in needs PAO_SECRET_KEY to be set."
    elif _oauth_client(request) is None:
        problem = ("Sign-in needs PAO's GitHub App: register it at /setup (or set PAO_GITHUB_CLIENT_ID "
                   "and PAO_GITHUB_CLIENT_SECRET for an App registered by hand).")
    return page(request, "login.html", status=503 if problem else 200, problem=problem,
                next=safe_next(request.query.get("next")))


@routes.get("/login/github")
async def login_start(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    keys, client = registration.keys_for(rt.settings), _oauth_client(request)
    if keys is None or client is None:
        raise web.HTTPSeeOther("/login")
    state = secrets.token_urlsafe(16)
    web_url = github_web(rt.settings)
    query = urlencode({"client_id": client.client_id, "redirect_uri": f"{public_url(request)}/login/callback",
                       "state": state})
    response = web.HTTPSeeOther(f"{web_url}/login/oauth/authorize?{query}")
    cookie = keys.sign("oauth", {"state": state, "next": safe_next(request.query.get("next")),
                                 "exp": int(time.time()) + OAUTH_LIFETIME})
    set_console_cookie(request, response, OAUTH_COOKIE, cookie, max_age=OAUTH_LIFETIME, path="/login")
    raise response


class CodeRefused(ValueError):
    """GitHub answered the code exchange with an OAuth error: the code is wrong, used or expired."""


async def _exchange(request: web.Request, client: registration.OAuthClient, code: str) -> str:
    """The user token for ``code``; CodeRefused with GitHub's reason when GitHub refuses the code,
    ValueError when its answer makes no sense."""
    rt = request.app[RUNTIME]
    web_url = github_web(rt.settings)
    async with rt.http.post(f"{web_url}/login/oauth/access_token", headers={"Accept": "application/json"},
                            json={"client_id": client.client_id, "client_secret": client.client_secret,
                                  "code": code, "redirect_uri": f"{public_url(request)}/login/callback"},
                            ) as resp:
        if resp.status != 200:
            raise ValueError(f"GitHub answered {resp.status}")
        data: Any = await resp.json(content_type=None)
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        raise CodeRefused(str(data.get("error_description") or data["error"]))
    if not isinstance(data, dict) or not isinstance(data.get("access_token"), str):
        raise ValueError("no access token in GitHub's answer")
    register_secret(data["access_token"], short_lived=True)
    return data["access_token"]


async def _teams(gh: GitHubAPI) -> list[str]:
    teams: list[str] = []
    async for team in gh.getiter("/user/teams?per_page=100"):
        teams.append(f"{team['organization']['login']}/{team['slug']}")
        if len(teams) >= 100 * MAX_TEAM_PAGES:
            break
    return teams


@routes.get("/login/callback")
async def login_callback(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    keys, client = registration.keys_for(rt.settings), _oauth_client(request)
    if keys is None or client is None:
        raise web.HTTPSeeOther("/login")
    try:
        started = keys.unsign("oauth", request.cookies.get(OAUTH_COOKIE, ""))
    except SecretError:
        started = {}
    state = request.query.get("state", "")
    if not started or started.get("exp", 0) < time.time() or \
            not secrets.compare_digest(state, str(started.get("state", ""))):
        return error_page(request, 403, "This sign-in was not started here or took too long; sign in again.")
    if "error" in request.query:  # the person declined on GitHub
        return error_page(request, 403, "GitHub did not authorise the sign-in: "
                                        + request.query.get("error_description", request.query["error"]))
    code = request.query.get("code", "")
    if not VALID_CODE.fullmatch(code):
        return error_page(request, 400, "GitHub's answer has no valid sign-in code; sign in again.")
    try:
        token = await _exchange(request, client, code)
        gh = GitHubAPI(rt.http, USER_AGENT, oauth_token=token, base_url=rt.settings.github_api_url)
        user = await gh.getitem("/user")
        teams = await _teams(gh)
    except CodeRefused as exc:  # the person's own code, not GitHub failing
        return error_page(request, 403, f"GitHub refused the sign-in ({exc}); sign in again.")
    except (ValueError, GitHubException, ClientError, KeyError, TypeError) as exc:
        log.warning("sign-in with GitHub failed: %s", exc)
        return error_page(request, 502, f"GitHub did not complete the sign-in ({exc}); try again.")
    console = console_settings(rt.settings)
    login = str(user["login"])
    team, is_admin = decide_identity(login, teams, admin_users=console.admin_users,
                                     admin_teams=console.admin_teams)
    response = web.HTTPSeeOther(safe_next(started.get("next")))
    set_session(request, response, new_identity(login, team, teams, is_admin))
    response.del_cookie(OAUTH_COOKIE, path="/login")
    log.info("%s signed in to the console (team %s%s)", login, team, ", admin" if is_admin else "")
    raise response


@routes.post("/logout")
async def logout(request: web.Request) -> web.Response:
    if await csrf_checked_form(request) is None:
        return csrf_refused(request)
    response = web.HTTPSeeOther("/login")
    response.del_cookie(SESSION_COOKIE, path="/")
    raise response
