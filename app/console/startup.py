"""At start, while PAO has no GitHub App: print how to register one, with a one-time set-up token."""

from __future__ import annotations

import sys
from typing import Any

from app.console import registration
from app.console.config import SECRET_KEY_ADVICE, console_settings


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
