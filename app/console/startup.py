"""At start, while PAO has no GitHub App: print how to register one, with a one-time set-up token.

Until then each process also looks for an App registered through another process's
``/setup`` (several ``pao serve`` share a port), so none of them needs a restart.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Any

from app.console import registration
from app.console.config import SECRET_KEY_ADVICE, console_settings

log = logging.getLogger(__name__)

REGISTRATION_POLL_INTERVAL = 5.0  # seconds between looks for an App another process registered


def setup_address(rt: Any) -> str:
    console = console_settings(rt.settings)
    return console.public_url or f"http://{rt.settings.host}:{rt.settings.port}"


async def on_startup(rt: Any) -> None:
    if rt.settings.app_mode:
        return
    url = setup_address(rt) + "/setup"
    if registration.keys_for(rt.settings) is None:
        print(f"\nPAO has no GitHub App. To register one from the browser ({url}), "
              f"{SECRET_KEY_ADVICE}.\n", file=sys.stderr, flush=True)
        return
    rt.extra["console.registration_watch"] = asyncio.create_task(watch_for_registration(rt))
    token = await registration.new_setup_token(rt.pool)
    # Printed, not logged: log files are kept and shipped; the terminal of whoever started PAO is not.
    print(f"\nPAO has no GitHub App yet. Register one at {url}\n"
          f"One-time set-up token: {token}\n", file=sys.stderr, flush=True)


async def adopt_registration(rt: Any) -> bool:
    """Use the App stored by another process's /setup, if there is one now; True once in App mode."""
    if rt.settings.app_mode:
        return True
    if await registration.is_registered(rt.pool):
        await registration.apply_stored(rt)
    return bool(rt.settings.app_mode)


async def watch_for_registration(rt: Any, interval: float = REGISTRATION_POLL_INTERVAL) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            if await adopt_registration(rt):
                return
        except Exception as exc:  # a database blip: look again next time
            log.debug("looking for a registered App failed: %s", exc)
