"""At start, while PAO has no GitHub App: print how to register one, with a one-time set-up token.

Until then every long-running process (each ``pao serve`` web process, ``pao worker``) watches
for an App registered through another process's ``/setup``: woken by the ``NOTIFY`` the set-up
transaction sends, with a periodic re-check in case a notification was missed. None of them
needs a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from typing import Any

import asyncpg

from app.console import registration
from app.console.config import SECRET_KEY_ADVICE, console_settings

log = logging.getLogger(__name__)

# Seconds between re-checks for an App another process registered, should its NOTIFY be missed
# (the listening connection dropped, or LISTEN failed).
REGISTRATION_RECHECK_INTERVAL = 30.0
WATCH = "console.registration_watch"  # Runtime.extra key of the watching task


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


def start_watching(rt: Any, interval: float = REGISTRATION_RECHECK_INTERVAL) -> asyncio.Task[None] | None:
    """Watch for an App registered elsewhere, unless this process has one (or no key to read it)."""
    if rt.settings.app_mode or registration.keys_for(rt.settings) is None:
        return None
    task = asyncio.create_task(watch_for_registration(rt, interval), name="pao-registration-watch")
    rt.extra[WATCH] = task
    return task


async def watch_for_registration(rt: Any, interval: float = REGISTRATION_RECHECK_INTERVAL) -> None:
    """Adopt the App another process's /setup stores: at its NOTIFY, or at the next re-check."""
    woken = asyncio.Event()
    conn: asyncpg.Connection | None = None
    try:
        try:
            conn = await asyncpg.connect(rt.dsn)
            await conn.add_listener(registration.CHANNEL, lambda *_: woken.set())
        except Exception as exc:  # the re-checks still find it
            log.warning("LISTEN for the App's registration failed (%s); re-checking every %.0fs",
                        exc, interval)
        # Listening first, then looking: a registration between the two is not missed.
        while True:
            try:
                if await adopt_registration(rt):
                    return
            except Exception as exc:  # a database blip: look again next time
                log.debug("looking for a registered App failed: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(woken.wait(), interval)
            woken.clear()
    finally:
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()
