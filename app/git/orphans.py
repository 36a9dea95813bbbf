"""git helpers left running by a killed PAO process: found and stopped before the next attempt.

``run_git`` starts git in its own process group with a parent-death signal, so
git itself dies with its worker. That signal is not inherited: the helpers git
starts (``git-remote-http``, ``send-pack``, ``index-pack``...) are re-parented to
init and run on, and a push finishes after its worker was killed, racing the
retried job. So every git PAO starts carries ``OWNER_VAR``, the identity of the
PAO process (``app.procinfo``), in its environment, which its helpers inherit;
``stop_orphans`` kills every process whose owner is gone. It runs before each
write to a cache (``app.git.locks.writing``) and when a worker starts.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
from functools import cache

from app.procinfo import ProcessIdentity, start_ticks

OWNER_VAR = "GIT_PAO_OWNER"
_NEEDLE = f"\0{OWNER_VAR}=".encode()


@cache
def _identity(pid: int) -> str:
    return str(ProcessIdentity.of(pid))


def owner_env() -> dict[str, str]:
    """The environment entry naming this process as the owner of a git it starts."""
    return {OWNER_VAR: _identity(os.getpid())}  # keyed by pid: right after a fork too


def _owner(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            environ = b"\0" + f.read()
    except OSError:  # gone, or another user's process
        return None
    at = environ.find(_NEEDLE)
    if at < 0:
        return None
    value = environ[at + len(_NEEDLE):].split(b"\0", 1)[0]
    return value.decode("ascii", "replace")


def find_orphans() -> list[tuple[int, int]]:
    """(pid, start time) of every process PAO's git started whose owner is gone."""
    gone: dict[str, bool] = {}
    found = []
    with contextlib.suppress(OSError), os.scandir("/proc") as entries:
        for entry in entries:
            if not entry.name.isdigit():
                continue
            owner = _owner(int(entry.name))
            if owner is None:
                continue
            if owner not in gone:
                identity = ProcessIdentity.parse(owner)
                gone[owner] = identity is not None and identity.is_gone()
            start = start_ticks(int(entry.name))
            if gone[owner] and start is not None:
                found.append((int(entry.name), start))
    return found


def _kill_and_wait(pid: int, start: int, timeout: float) -> bool:
    """SIGKILL ``pid`` if it is still the process found (never a later one with its pid)."""
    try:
        fd = os.pidfd_open(pid)
    except OSError:
        return False
    try:
        if start_ticks(pid) != start:  # exited (and maybe reused) since it was found
            return False
        with contextlib.suppress(ProcessLookupError):
            signal.pidfd_send_signal(fd, signal.SIGKILL)
        poller = select.poll()
        poller.register(fd, select.POLLIN)  # readable once the process has exited
        poller.poll(timeout * 1000)
        return True
    finally:
        os.close(fd)


def stop_orphans(timeout: float = 5.0) -> list[int]:
    """Kill every git process (and helper) whose PAO owner is gone; return their pids.

    Blocking (reads /proc): call it through ``asyncio.to_thread``.
    """
    return [pid for pid, start in find_orphans() if _kill_and_wait(pid, start, timeout)]
