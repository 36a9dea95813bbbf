"""Binding a listening socket, with a start-up error that names the variable behind the address."""

from __future__ import annotations

from aiohttp import web

from app.config import StartupError


async def listen(site: web.BaseSite, variable: str, address: str) -> None:
    """Start ``site``; a StartupError naming ``variable`` when the address cannot be bound."""
    try:
        await site.start()
    except OSError as exc:  # in use, not an address of this host, an unknown name
        raise StartupError(f"{variable}: cannot listen on {address}: "
                           f"{exc.strerror or exc}") from None
    except (UnicodeError, ValueError) as exc:  # a name no resolver accepts (a label too long)
        raise StartupError(f"{variable}: cannot listen on {address}: {exc}") from None
