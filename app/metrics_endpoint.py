"""``GET /metrics``: on the main port with ``PAO_METRICS_TOKEN``, or tokenless on ``PAO_METRICS_LISTEN``.

The listener runs in ``pao serve`` and ``pao worker`` alike, so worker-side figures
(jobs, syncs, mirrors) can be scraped from worker processes too.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from app.config import FEATURE_READERS, EnvReader, StartupError
from app.listen import listen
from app.log import register_secret
from app.metrics import refresh_queue_gauges


@dataclass(frozen=True)
class MetricsSettings:
    token: str | None = field(default=None, repr=False)
    listen: tuple[str, int] | None = None  # (host, port) of the tokenless listener


def _listen_address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected HOST:PORT such as 127.0.0.1:9100, got {text!r}")
    return host.strip("[]"), int(port)


def read(r: EnvReader) -> MetricsSettings:
    token = r.raw("PAO_METRICS_TOKEN")
    register_secret(token)
    if token is not None and len(token) < 16:
        r.problems.append("PAO_METRICS_TOKEN: use at least 16 characters (a random string)")
        token = None
    return MetricsSettings(token, r.parse("PAO_METRICS_LISTEN", None, _listen_address))


FEATURE_READERS["metrics"] = read


def metrics_settings(settings: object) -> MetricsSettings:
    value = (getattr(settings, "extra", None) or {}).get("metrics")
    return value if isinstance(value, MetricsSettings) else MetricsSettings()


async def exposition(pool: Any) -> web.Response:
    """The metrics in Prometheus text format."""
    from app import tasks  # noqa: F401  (registers every task, so idle ones report 0)
    from app.jobs import TASKS

    await refresh_queue_gauges(pool, TASKS)
    return web.Response(body=generate_latest(REGISTRY),
                        headers={"Content-Type": CONTENT_TYPE_LATEST})


async def metrics_endpoint(request: web.Request) -> web.Response:
    """``GET /metrics`` on the main port: only with ``Authorization: Bearer $PAO_METRICS_TOKEN``."""
    from app.state import RUNTIME

    rt = request.app[RUNTIME]
    expected = metrics_settings(rt.settings).token
    if expected is None:
        return web.json_response({"error": "not found", "detail": "metrics are off on this port: set "
                                  "PAO_METRICS_TOKEN (or PAO_METRICS_LISTEN for a separate address)"},
                                 status=404)
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected.encode()):
        return web.json_response({"error": "unauthorized",
                                  "detail": "send 'Authorization: Bearer <PAO_METRICS_TOKEN>'"},
                                 status=401, headers={"WWW-Authenticate": "Bearer"})
    return await exposition(rt.pool)


async def start_listener(rt: Any) -> web.AppRunner | None:
    """Serve ``/metrics`` without a token on ``PAO_METRICS_LISTEN``, when set; None otherwise."""
    address = metrics_settings(rt.settings).listen
    if address is None:
        return None

    async def handler(request: web.Request) -> web.Response:
        return await exposition(rt.pool)

    app = web.Application()
    app.router.add_get("/metrics", handler)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        await listen(web.TCPSite(runner, address[0], address[1]), "PAO_METRICS_LISTEN",
                     f"{address[0]}:{address[1]}")
    except StartupError:
        await runner.cleanup()
        raise
    return runner
