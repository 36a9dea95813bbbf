"""Jinja2 templates of the console, and the helpers every page uses to answer in HTML."""

from __future__ import annotations

import functools
from typing import Any

import jinja2
from aiohttp import web

# What the pages show when a handler refuses: the same words the JSON API uses.
TITLES = {400: "Bad request", 403: "Forbidden", 404: "Not found", 405: "Method not allowed",
          409: "Conflict", 413: "Payload too large", 415: "Unsupported media type",
          500: "Internal error", 502: "GitHub did not answer as expected"}


@functools.cache
def environment() -> jinja2.Environment:
    """The template environment; autoescaping is on for every template."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("app.console", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env


# Page context providers (the signed-in user, the CSRF token) registered by other console
# modules; each takes the request and returns names for the templates.
CONTEXT_PROVIDERS: list[Any] = []


def page(request: web.Request, template: str, *, status: int = 200,
         headers: dict[str, str] | None = None, **context: Any) -> web.Response:
    """Render ``template`` with ``context`` (plus what the providers add) as an HTML response."""
    values: dict[str, Any] = {"path": request.path, "user": None, "csrf_token": ""}
    for provider in CONTEXT_PROVIDERS:
        values.update(provider(request))
    values.update(context)
    body = environment().get_template(template).render(**values)
    response = web.Response(text=body, status=status, content_type="text/html", headers=headers)
    # Pages may hold personal data: never cached by a shared proxy; and never framed.
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        "script-src 'self' 'unsafe-inline'; "
        "form-action 'self' https: http:; frame-ancestors 'none'")
    return response


def error_page(request: web.Request, status: int, message: str) -> web.Response:
    """An HTML error page: the status, its title and what went wrong."""
    return page(request, "error.html", status=status,
                title=TITLES.get(status, "Error"), message=message)
