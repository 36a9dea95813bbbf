"""The child processes of ``pao serve``: more web processes on the same port, and workers.

One Python process runs on one core, so with ``PAO_WEB_PROCESSES`` > 1 ``pao serve``
starts that many web processes (itself and children) sharing the listening port
through SO_REUSEPORT, and its workers in a process of their own, so slow jobs
never take CPU from intake. A child that dies is started again; on shutdown every child gets
SIGTERM (the graceful stop of ``pao serve`` / ``pao worker``) before the parent
stops the embedded PostgreSQL they use.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

# A child that keeps crashing is restarted at most this often.
RESTART_DELAY = 1.0
# Children finish their own graceful stop (running jobs get their grace period) in this.
STOP_TIMEOUT = 90.0
# How often a child checks that its parent is still there (it stops when orphaned).
ORPHAN_CHECK_INTERVAL = 1.0


@dataclass
class Child:
    """One supervised child: ``python -m app ARGS...``."""

    name: str
    args: tuple[str, ...]
    process: asyncio.subprocess.Process | None = None
    restarts: int = 0
    task: asyncio.Task[None] | None = field(default=None, repr=False)


class Supervisor:
    """Starts children, restarts the ones that die, stops them all on ``stop()``."""

    def __init__(self, env: Mapping[str, str]):
        self.env = dict(env)
        self.children: list[Child] = []
        self._stopping = False

    def add(self, name: str, *args: str) -> None:
        self.children.append(Child(name, args))

    def start(self) -> None:
        for child in self.children:
            child.task = asyncio.create_task(self._keep_running(child), name=f"pao-{child.name}")

    async def _keep_running(self, child: Child) -> None:
        while not self._stopping:
            child.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "app", *child.args, env=self.env)
            code = await child.process.wait()
            if self._stopping:
                return
            child.restarts += 1
            log.error("%s (pid %s) exited with %s; starting it again",
                      child.name, child.process.pid, code)
            await asyncio.sleep(RESTART_DELAY)

    async def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM every child, wait for them (SIGKILL after ``timeout``)."""
        self._stopping = True
        running = [c.process for c in self.children
                   if c.process is not None and c.process.returncode is None]
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
        waits = [asyncio.create_task(p.wait()) for p in running]
        if waits:
            _, late = await asyncio.wait(waits, timeout=timeout)
            for process in running:
                if process.returncode is None:
                    log.warning("child pid %s did not stop in %.0f s; killing it",
                                process.pid, timeout)
                    with contextlib.suppress(ProcessLookupError):
                        process.kill()
            if late:
                await asyncio.wait(late)
        for child in self.children:
            if child.task is not None:
                child.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await child.task


def child_env(base: Mapping[str, str], overrides: Mapping[str, str | None]) -> dict[str, str]:
    """``base`` with ``overrides`` applied (``None`` removes a variable)."""
    env = dict(base)
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


async def stop_when_orphaned(stop: asyncio.Event, parent_pid: int | None = None) -> None:
    """Set ``stop`` once the parent process is gone (a SIGKILLed ``pao serve``)."""
    parent = parent_pid if parent_pid is not None else os.getppid()
    while not stop.is_set():
        if os.getppid() != parent:
            log.warning("parent process %s is gone; stopping", parent)
            stop.set()
            return
        await asyncio.sleep(ORPHAN_CHECK_INTERVAL)


def web_child_args(host: str, port: int) -> Sequence[str]:
    return ("serve", "--child", "--host", host, "--port", str(port))
