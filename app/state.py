"""The aiohttp application key under which the process's ``Runtime`` is kept."""

from __future__ import annotations

from typing import Any

from aiohttp import web

RUNTIME: web.AppKey[Any] = web.AppKey("runtime", object)
