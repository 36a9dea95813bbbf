"""Who is using the console: a signed session cookie, CSRF tokens, and page guards.

The cookie holds the PAO identity made at sign-in (GitHub login, team, admin or not),
signed with a key derived from ``PAO_SECRET_KEY``: HttpOnly, SameSite=Lax, Secure when
PAO_PUBLIC_URL is https. No GitHub token is kept. Every POST carries a CSRF token tied
to the session (``check_csrf``).
"""

from __future__ import annotations

import functools
import hmac
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from app.console import registration
from app.console.config import console_settings
from app.console.render import CONTEXT_PROVIDERS, error_page
from app.crypto import SecretError
from app.pgtext import text_problem
from app.state import RUNTIME

SESSION_COOKIE = "pao_session"
SESSION_LIFETIME = 8 * 3600  # seconds; then sign in again (team changes take effect)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Identity:
    """A signed-in person as PAO sees them."""

    login: str
    team: str | None
    teams: tuple[str, ...]  # "org/slug", every team GitHub reported
    is_admin: bool
    session_id: str


USER: web.RequestKey[Identity | None] = web.RequestKey("console_user", object)


def decide_identity(login: str, teams: list[str], *, admin_users: frozenset[str],
                    admin_teams: frozenset[str]) -> tuple[str | None, bool]:
    """(team, is_admin) for a GitHub login and its "org/slug" teams: pure, so it is tested alone.

    The team is the first team's slug in name order (deterministic when one belongs to
    several); admins are listed by login or by team.
    """
    ordered = sorted(t.lower() for t in teams)
    team = ordered[0].split("/", 1)[1] if ordered else None
    is_admin = login.lower() in admin_users or any(t in admin_teams for t in ordered)
    return team, is_admin


def session_cookie_value(settings: Any, identity: Identity, *, now: float | None = None) -> str:
    keys = registration.keys_for(settings)
    assert keys is not None, "sessions need PAO_SECRET_KEY"
    now = time.time() if now is None else now
    return keys.sign("session", {"login": identity.login, "team": identity.team,
                                 "teams": list(identity.teams), "admin": identity.is_admin,
                                 "sid": identity.session_id, "exp": int(now) + SESSION_LIFETIME})


def new_identity(login: str, team: str | None, teams: list[str], is_admin: bool) -> Identity:
    return Identity(login, team, tuple(teams), is_admin, secrets.token_urlsafe(16))


def public_url(request: web.Request) -> str:
    """Where browsers and GitHub reach PAO: PAO_PUBLIC_URL, else the address this request came to."""
    configured = console_settings(request.app[RUNTIME].settings).public_url
    return configured or f"{request.scheme}://{request.host}"


def set_console_cookie(request: web.Request, response: web.StreamResponse, name: str, value: str, *,
                       max_age: int, path: str) -> None:
    """Every console cookie: HttpOnly, SameSite=Lax, and Secure whenever PAO is reached by https."""
    response.set_cookie(name, value, max_age=max_age, httponly=True, samesite="Lax",
                        secure=public_url(request).startswith("https://"), path=path)


def set_session(request: web.Request, response: web.StreamResponse, identity: Identity) -> None:
    set_console_cookie(request, response, SESSION_COOKIE,
                       session_cookie_value(request.app[RUNTIME].settings, identity),
                       max_age=SESSION_LIFETIME, path="/")


def current_user(request: web.Request) -> Identity | None:
    """The signed-in person, or None (no cookie, a forged or expired one, or no PAO_SECRET_KEY)."""
    if USER in request:
        return request[USER]
    user = None
    keys = registration.keys_for(request.app[RUNTIME].settings)
    cookie = request.cookies.get(SESSION_COOKIE)
    if keys is not None and cookie:
        try:
            data = keys.unsign("session", cookie)
            if isinstance(data.get("exp"), int) and data["exp"] > time.time():
                user = Identity(str(data["login"]), data.get("team"), tuple(data.get("teams") or ()),
                                bool(data.get("admin")), str(data["sid"]))
        except (SecretError, KeyError):
            user = None
    request[USER] = user
    return user


def csrf_token(request: web.Request) -> str:
    user = current_user(request)
    keys = registration.keys_for(request.app[RUNTIME].settings)
    if user is None or keys is None:
        return ""
    return keys.mac("csrf", user.session_id)


async def read_form(request: web.Request) -> Any:
    """The posted form's fields, all text PostgreSQL can store; else a 400 naming the problem
    (the console's error middleware draws it as a page). aiohttp raises on bodies it cannot
    decode (bytes not in the declared charset, an unknown charset, broken multipart)."""
    try:
        form = await request.post()
    except web.HTTPException:
        raise  # too large: aiohttp's own 413
    except (ValueError, LookupError, AssertionError, RuntimeError, HttpProcessingError) as exc:
        raise web.HTTPBadRequest(text=f"The form could not be read ({type(exc).__name__}): send it "
                                      "from PAO's page, as UTF-8.") from None
    for name, value in form.items():
        shown = repr(name[:64])
        if not isinstance(value, str):
            raise web.HTTPBadRequest(text=f"Field {shown} is a file upload; PAO's forms take text only.")
        problem = text_problem(name) or text_problem(value)
        if problem:
            raise web.HTTPBadRequest(text=f"Field {shown} {problem}.")
    return form


async def csrf_checked_form(request: web.Request) -> Any:
    """The posted form if it carries this session's CSRF token, else None (answer with ``csrf_refused``)."""
    form = await read_form(request)
    expected = csrf_token(request)
    given = str(form.get("csrf_token", ""))
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        return None
    return form


def csrf_refused(request: web.Request) -> web.Response:
    return error_page(request, 403,
                      "The form expired or came from another site; reload the page and try again.")


def _to_login(request: web.Request) -> web.StreamResponse:
    if request.method != "GET":
        return error_page(request, 403, "Sign in first.")
    raise web.HTTPSeeOther("/login?next=" + quote(request.path_qs, safe=""))


def signed_in(handler: Handler) -> Handler:
    """The page needs a signed-in person; others are sent to sign in."""
    @functools.wraps(handler)
    async def guarded(request: web.Request) -> web.StreamResponse:
        if current_user(request) is None:
            return _to_login(request)
        return await handler(request)
    return guarded


def admin_only(handler: Handler) -> Handler:
    """The page is for admins (PAO_ADMIN_USERS / PAO_ADMIN_TEAMS): others get a 403, strangers sign in."""
    @functools.wraps(handler)
    async def guarded(request: web.Request) -> web.StreamResponse:
        user = current_user(request)
        if user is None:
            return _to_login(request)
        if not user.is_admin:
            return error_page(request, 403, "This page is for PAO admins.")
        return await handler(request)
    return guarded


def _context(request: web.Request) -> dict[str, Any]:
    return {"user": current_user(request), "csrf_token": csrf_token(request)}


CONTEXT_PROVIDERS.append(_context)
