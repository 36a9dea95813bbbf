"""Running git: credentials through the environment, never argv, disk or logs.

``run_git`` is the one way PAO starts git. The child's environment is
``app.git.env.child_env`` (no ``PAO_*`` setting) plus, for a call that reaches a
remote, that remote's token as an ``http.extraHeader`` through
``GIT_CONFIG_COUNT``/``GIT_CONFIG_KEY_n``/``GIT_CONFIG_VALUE_n``, which neither
``ps`` nor the repository's config file shows. Its output is scrubbed of the
token before it reaches an exception or a log.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import ctypes
import functools
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from app.aio import uncancellable
from app.git.env import child_env
from app.git.orphans import owner_env
from app.log import register_secret, scrub

DEFAULT_TIMEOUT = 600.0

# What git prints when the server refused our credentials or the repository is gone:
# retrying cannot help, so callers fail the job at once.
_AUTH_FAILURES = re.compile(
    r"(Authentication failed|could not read Username|HTTP Basic: Access denied|"
    r"The requested URL returned error: 40[13]|terminal prompts disabled|"
    r"Invalid username or password|Permission denied|returned error: 403)",
    re.IGNORECASE,
)
_NOT_FOUND = re.compile(
    r"(Repository not found|repository '.*' not found|returned error: 404|"
    r"does not appear to be a git repository|not found: did you run git update-server-info)",
    re.IGNORECASE,
)


class GitError(Exception):
    """git exited non-zero; ``output`` is its scrubbed stderr."""

    def __init__(self, args: Sequence[str], returncode: int, output: str):
        self.git_args = list(args)
        self.returncode = returncode
        self.output = output
        tail = output.strip().splitlines()[-3:]
        super().__init__(f"git {self.git_args[0] if args else ''} failed ({returncode}): "
                         + " / ".join(tail))


class GitAuthError(GitError):
    """The remote refused our credentials; retrying will not help."""


class GitNotFoundError(GitError):
    """The remote repository does not exist (or we may not see it)."""


class GitTimeout(GitError):
    """git ran longer than its timeout and was killed."""


@dataclass(frozen=True)
class GitResult:
    stdout: bytes
    stderr: str


def _origin(args: Sequence[str]) -> str | None:
    """``scheme://host[:port]/`` of the first http(s) URL among git's arguments."""
    for arg in args:
        if arg.startswith(("https://", "http://")):
            parts = urlsplit(arg)
            if parts.hostname:
                return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}/"
    return None


def auth_env(token: str | None, *, username: str = "x-access-token",
             url: str | None = None) -> dict[str, str]:
    """Environment variables that make git send ``token`` as HTTP basic auth.

    With ``url`` (``scheme://host/``) the header goes only to that server, so a
    redirect to another host never carries the token.
    """
    env = {
        "GIT_TERMINAL_PROMPT": "0",
        # Never ask a credential helper or the user; we provide the header.
        "GIT_ASKPASS": "true",
        "SSH_ASKPASS": "true",
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    if token:
        # Installation tokens change hourly: kept among the recent ones only.
        register_secret(token, short_lived=True)
        basic = base64.b64encode(f"{username}:{token}".encode()).decode()
        register_secret(basic, short_lived=True)
        env.update(
            {
                "GIT_CONFIG_COUNT": "2",
                "GIT_CONFIG_KEY_0": f"http.{url}.extraHeader" if url else "http.extraHeader",
                "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}",
                "GIT_CONFIG_KEY_1": "credential.helper",
                "GIT_CONFIG_VALUE_1": "",
            }
        )
    return env


_LIBC = None
if sys.platform.startswith("linux"):
    with contextlib.suppress(OSError):
        _LIBC = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1


def _child_setup() -> None:
    """In the forked git, before exec: die with the worker (fallback without ``setpriv``)."""
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


@functools.cache
def _death_signal_prefix() -> tuple[str, ...] | None:
    """``setpriv --pdeathsig KILL --``: what makes git die with its worker, if it works here.

    Python runs a ``preexec_fn`` only by fork(), which copies the worker's page
    tables: with a big catalog in memory that took 20-35 ms per git (a one-file
    sync runs six), where vfork() and an exec of setpriv (util-linux) take 2-5 ms.
    The signal setting survives setpriv's exec of git.
    """
    setpriv = shutil.which("setpriv")
    if setpriv is None or not sys.platform.startswith("linux"):
        return None
    try:
        ok = subprocess.run([setpriv, "--pdeathsig", "KILL", "--", "true"], env=child_env({}),
                            capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        ok = False
    return (setpriv, "--pdeathsig", "KILL", "--") if ok else None


def _spawn_options() -> tuple[tuple[str, ...], dict[str, Any]]:
    """The argv prefix and Popen options every git gets: its own process group, and death
    with the worker.

    The group lets a timeout kill git's helpers too. The parent-death signal
    stops git itself when its worker is killed, but not the helpers git started
    (the signal is not inherited): those are stopped by the next write to the
    cache or the next worker start (``app.git.orphans``).
    """
    # A new session (so a group of its own): unlike process_group, uvloop (`pao`'s
    # event loop) supports it too.
    prefix = _death_signal_prefix()
    if prefix is not None or _LIBC is None:
        return prefix or (), {"start_new_session": True}
    return (), {"start_new_session": True, "preexec_fn": _child_setup}


def _start(argv: list[str], *, cwd: str | None, env: dict[str, str], stdin: int,
           options: dict[str, Any]) -> subprocess.Popen[bytes]:
    """Start git with piped output (in the caller's thread: by vfork, a millisecond)."""
    # Its own process group, so a timeout also stops the helpers git starts
    # (git-remote-http holds the pipes open until the server answers).
    return subprocess.Popen(argv, cwd=cwd, env=env, stdin=stdin, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, **options)


# Threads that wait for a git's output, one per running git.
_WAITERS = concurrent.futures.ThreadPoolExecutor(max_workers=32, thread_name_prefix="pao-git")


def _communicate(proc: subprocess.Popen[bytes], input: bytes | None,
                 timeout: float) -> tuple[bytes, bytes]:
    """``proc``'s output; past ``timeout`` its group is killed (and reaped) and
    ``TimeoutExpired`` raised."""
    try:
        return proc.communicate(input, timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        proc.communicate()
        raise


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()


async def run_git(
    args: Sequence[str],
    *,
    cwd: str | Path | None = None,
    token: str | None = None,
    username: str = "x-access-token",
    input: bytes | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    env: Mapping[str, str] | None = None,
    check: bool = True,
) -> GitResult:
    """Run ``git *args``; raise GitError (or a subclass) with scrubbed output on failure."""
    full_env = child_env({**owner_env(), **auth_env(token, username=username, url=_origin(args)),
                          **(env or {})})
    prefix, options = _spawn_options()
    # Started by the standard library, not the event loop: uvloop (`pao`'s loop) starts
    # processes with fork(), which copies the worker's page tables (20-35 ms a git once a
    # big catalog was loaded); Popen uses vfork(). A thread waits for the output.
    proc = _start([*prefix, "git", *args], cwd=str(cwd) if cwd is not None else None,
                  env=full_env, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                  options=options)
    waiting = _WAITERS.submit(_communicate, proc, input, timeout)
    try:
        stdout, stderr_bytes = await asyncio.wrap_future(waiting)
    except subprocess.TimeoutExpired:
        raise GitTimeout(args, -9, f"timed out after {timeout:.0f}s") from None
    except asyncio.CancelledError:
        _kill_group(proc)
        # The waiting thread ends once git is gone, and reaps it; if it never started,
        # git is reaped here.
        reaped = (asyncio.to_thread(proc.communicate) if waiting.cancelled()
                  else asyncio.wrap_future(waiting))
        with contextlib.suppress(Exception):
            await uncancellable(reaped)
        raise
    stderr = scrub(stderr_bytes.decode("utf-8", "replace"))
    if check and proc.returncode != 0:
        assert proc.returncode is not None
        if _AUTH_FAILURES.search(stderr):
            raise GitAuthError(args, proc.returncode, stderr)
        if _NOT_FOUND.search(stderr):
            raise GitNotFoundError(args, proc.returncode, stderr)
        raise GitError(args, proc.returncode, stderr)
    return GitResult(stdout, stderr)
