"""Processes on this host: is the process that made a record still alive?

A pid alone cannot say: pids are reused. A ``ProcessIdentity`` adds the kernel's
boot id, the pid namespace and the process's start time (clock ticks after
boot, from ``/proc/<pid>/stat``), so a later process with the same pid is never
taken for the one recorded. Two processes can only be compared when they share a
boot and a pid namespace (``is_local``); otherwise nothing can be known from here.
"""

from __future__ import annotations

import contextlib
import os
import socket
from dataclasses import dataclass
from pathlib import Path

_PROC = Path("/proc")


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def boot_id() -> str:
    """This boot's id (Linux), or "" where there is none."""
    return _read(_PROC / "sys" / "kernel" / "random" / "boot_id")


def pid_namespace() -> str:
    """The pid namespace this process sees (``pid:[inode]``), or ""."""
    with contextlib.suppress(OSError):
        return os.readlink(_PROC / "self" / "ns" / "pid")
    return ""


def start_ticks(pid: int) -> int | None:
    """When ``pid`` started (clock ticks after boot), or None when there is no such live process."""
    stat = _read(_PROC / str(pid) / "stat")
    if not stat:
        return None
    # "pid (comm) state ppid ..." where comm may hold spaces and parentheses.
    fields = stat.rpartition(")")[2].split()
    if not fields or fields[0] in ("Z", "X"):  # a zombie has finished its work
        return None
    return int(fields[19])  # starttime is field 22 of stat; fields[0] is field 3


@dataclass(frozen=True)
class ProcessIdentity:
    """Which process, exactly: host name, boot, pid namespace, pid and start time."""

    host: str
    boot_id: str
    pid_ns: str
    pid: int
    start: int

    @classmethod
    def of(cls, pid: int | None = None) -> ProcessIdentity:
        """The identity of ``pid`` (default: this process), as seen from here."""
        pid = os.getpid() if pid is None else pid
        return cls(socket.gethostname(), boot_id(), pid_namespace(), pid, start_ticks(pid) or 0)

    def __str__(self) -> str:
        return f"{self.boot_id}/{self.pid_ns}/{self.pid}/{self.start}"

    @classmethod
    def parse(cls, text: str, host: str = "") -> ProcessIdentity | None:
        """The inverse of ``str()``; None for anything else."""
        parts = text.rsplit("/", 3)
        if len(parts) != 4 or not parts[2].isdigit() or not parts[3].isdigit():
            return None
        return cls(host, parts[0], parts[1], int(parts[2]), int(parts[3]))

    def is_local(self) -> bool:
        """True when this process can tell whether that one is alive (same boot, same pids)."""
        return bool(self.boot_id) and self.boot_id == boot_id() and self.pid_ns == pid_namespace()

    def is_gone(self) -> bool:
        """True only when it is certain: a local process whose pid is free or now someone else's."""
        return self.is_local() and start_ticks(self.pid) != self.start
