"""The aiohttp application: webhook intake, health checks, and the REST API routes."""

from __future__ import annotations

import json
import logging
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from app import metrics, metrics_endpoint, webhooks
from app.api.auth import TOKEN_CACHE, TokenCache, api_auth_middleware
from app.console.render import error_page
from app.db import pending_migrations
from app.handlers import router as handlers
from app.requests import events_stream
from app.requests.batch import SUBMISSIONS, SubmissionWriter, stop_submissions
from app.state import RUNTIME, WEBHOOK_PATHS

log = logging.getLogger(__name__)

# Feature modules that expose ``routes: aiohttp.web.RouteTableDef``; composed here.
ROUTE_MODULES: tuple[str, ...] = (
    "app.api.openapi", "app.api.catalog", "app.api.sync", "app.mirror.api", "app.api.requests",
    "app.api.jira_webhook",
    "app.console.catalog", "app.console.setup", "app.console.login", "app.console.admin",
    "app.console.request_form", "app.console.request_pages",
)


# Paths that are not the console: machines call them and read JSON errors.
MACHINE_PATHS = ("/api/", "/webhooks/", "/metrics", "/healthz", "/readyz")


def _is_console(request: web.Request) -> bool:
    """A console page's request, or a browser's for a path PAO does not serve."""
    if request.path.startswith(MACHINE_PATHS):
        return False
    matched = request.match_info.http_exception is None  # a route of PAO's, not a 404/405
    return matched or "text/html" in request.headers.get("Accept", "")


def _console_error(request: web.Request, status: int, message: str) -> web.StreamResponse | None:
    """The console's HTML error page, or None if even that cannot be drawn."""
    try:
        return error_page(request, status, message)
    except Exception:
        log.exception("could not draw the error page for %s %s", request.method, request.path)
        return None


@web.middleware
async def json_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """Every error leaves with the right status and a body naming the problem, never a
    traceback: JSON for the API and webhooks, an HTML page for the console."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.content_type == "application/json" or exc.status < 400:
            raise
        messages = {404: "not found", 405: "method not allowed", 413: "payload too large"}
        body = {"error": messages.get(exc.status, exc.reason.lower())}
        if exc.text and exc.text != f"{exc.status}: {exc.reason}":
            body["detail"] = exc.text
        allow = {k: v for k, v in exc.headers.items() if k.lower() == "allow"}
        if _is_console(request):
            shown = _console_error(request, exc.status, str(body.get("detail") or body["error"]))
            if shown is not None:
                shown.headers.update(allow)
                return shown
        return web.json_response(body, status=exc.status, headers=allow)
    except Exception:
        log.exception("unhandled error in %s %s", request.method, request.path)
        if _is_console(request):
            shown = _console_error(request, 500, "PAO could not answer this page; the error is logged.")
            if shown is not None:
                return shown
        return web.json_response({"error": "internal error"}, status=500)


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    state = request.app[RUNTIME]
    try:
        async with state.pool.acquire(timeout=2) as conn:
            pending = await pending_migrations(conn)
    except Exception as exc:
        return web.json_response(
            {"status": "unavailable", "database": f"unreachable: {type(exc).__name__}"}, status=503
        )
    if pending:
        return web.json_response(
            {"status": "unavailable", "database": "ok", "pending_migrations": pending}, status=503
        )
    return web.json_response({"status": "ready", "database": "ok"})


async def receive_counted(request: web.Request) -> web.StreamResponse:
    """The webhook endpoint, with every answer counted by status (``pao_webhook_answers_total``):
    the one place all of intake's answers leave, so no return path is missed."""
    try:
        response = await webhooks.receive(request)
    except Exception as exc:  # answered by the json_errors middleware (a 500, or the HTTP error's own)
        metrics.count_webhook_answer(getattr(exc, "status", 500))
        raise
    metrics.count_webhook_answer(response.status)
    return response


def create_app(state: Any) -> web.Application:
    """The web application around an already-started ``app.service.Runtime``."""
    import importlib

    app = web.Application(
        middlewares=[json_errors, api_auth_middleware],
        # Webhook bodies are read by our own capped reader; other routes are small.
        client_max_size=webhooks.MAX_PAYLOAD_BYTES + 1024,
    )
    app[RUNTIME] = state
    app[TOKEN_CACHE] = TokenCache()
    app[SUBMISSIONS] = SubmissionWriter(state)  # group commit of service requests
    app.on_cleanup.append(stop_submissions)
    app[webhooks.INTAKE_WRITER] = webhooks.IntakeWriter(state, handlers)
    app[webhooks.LARGE_BODY_BUDGET] = webhooks.ByteBudget(webhooks.LARGE_BODY_BUDGET_BYTES)
    app.on_startup.append(webhooks.start_intake)
    app.on_cleanup.append(webhooks.stop_intake)
    app.on_shutdown.append(events_stream.close_streams)  # open SSE streams must not hold up SIGTERM
    for path in WEBHOOK_PATHS:
        app.router.add_post(path, receive_counted)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_endpoint.metrics_endpoint)  # not REST API: its own token
    for name in ROUTE_MODULES:
        app.router.add_routes(importlib.import_module(name).routes)
    return app


class JsonErrorsProtocol(RequestHandler):
    """aiohttp's connection handler, answering its own HTTP parser's errors as JSON too.

    A request line or header aiohttp cannot parse (too long, malformed, repeated where it
    must be single) never reaches the middlewares: this is where it is answered.
    """

    def handle_error(self, request: BaseRequest, status: int = 500,
                     exc: BaseException | None = None, message: str | None = None,
                     ) -> web.StreamResponse:
        if status >= 500 or request.writer.output_size > 0:
            return super().handle_error(request, status, exc, message)
        # Anyone can send a malformed request: one short line, never a traceback.
        webhooks.log_unauthenticated("refused an HTTP request aiohttp cannot parse (%s): %s",
                                     status, type(exc).__name__ if exc else message)
        detail = getattr(exc, "message", None) or message or ""
        response = web.json_response({"error": "bad request" if status == 400 else
                                      f"http error {status}", "detail": str(detail)[:200]},
                                     status=status)
        response.force_close()
        return response


class _JsonErrorsServer(web.Server):
    def __call__(self) -> RequestHandler:
        return JsonErrorsProtocol(self, loop=self._loop, **self._kwargs)


class AppRunner(web.AppRunner):
    """``web.AppRunner`` whose connections answer HTTP parser errors as JSON."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        return _JsonErrorsServer(server.request_handler, request_factory=server.request_factory,
                                 handler_cancellation=server.handler_cancellation,
                                 loop=server._loop, **server._kwargs)


def dumps(value: Any) -> str:
    return json.dumps(value, default=str)
