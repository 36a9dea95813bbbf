"""The aiohttp application key under which the process's ``Runtime`` is kept, and the paths
GitHub's deliveries come to (``app/web.py`` serves them; recovery finds PAO's webhook by them)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

RUNTIME: web.AppKey[Any] = web.AppKey("runtime", object)

# The first is the documented one (README); the second is kept for webhooks set up before it.
WEBHOOK_PATHS = ("/api/v1/webhooks/github", "/webhooks/github")
