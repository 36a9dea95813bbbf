"""run_git's process handling: a killed worker takes its git with it."""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.git.locks import writing
from app.git.orphans import OWNER_VAR
from app.git.repo import BareRepository
from app.git.run import GitTimeout, run_git
from tests.support import wait_for

ROOT = Path(__file__).resolve().parent.parent
# git's ext:: transport runs a command as the "remote": a slow remote with no network.
SLOW_REMOTE = ["-c", "protocol.ext.allow=always", "ls-remote", "ext::sleep 30"]


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except FileNotFoundError:
        return []
    return [int(p) for p in text.split()]


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ")[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc and PR_SET_PDEATHSIG")
@pytest.mark.parametrize("spawn", ["setpriv", "preexec"])
def test_git_dies_with_a_killed_worker(spawn):
    if spawn == "setpriv":
        from app.git.run import _death_signal_prefix

        assert _death_signal_prefix() is not None, "setpriv (util-linux) with --pdeathsig is missing"
    # "preexec": a host without setpriv sets the signal in the forked child instead.
    fallback = "run._death_signal_prefix = lambda: None; " if spawn == "preexec" else ""
    code = ("import asyncio; from app.git import run; from app.git.run import run_git; "
            f"{fallback}asyncio.run(run_git({SLOW_REMOTE!r}, timeout=60))")
    worker = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT)
    try:
        deadline = time.monotonic() + 20
        gits: list[int] = []
        while not gits and time.monotonic() < deadline:
            gits = [p for p in children(worker.pid)
                    if Path(f"/proc/{p}/comm").read_text().strip().startswith("git")]
            time.sleep(0.05)
        assert gits, "git never started"
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait()
        deadline = time.monotonic() + 5
        while any(alive(p) for p in gits) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(alive(p) for p in gits), "git outlived its killed worker"
    finally:
        if worker.poll() is None:
            worker.kill()


async def test_timeout_kills_git_and_its_helpers_promptly():
    started = time.monotonic()
    with pytest.raises(GitTimeout, match="timed out after 1s"):
        await run_git(SLOW_REMOTE, timeout=1)
    assert time.monotonic() - started < 10
    await asyncio.sleep(0)


def test_token_header_is_scoped_to_the_remote_host():
    from app.git.run import _origin, auth_env

    assert _origin(["fetch", "--quiet", "https://github.example.com:8443/o/r.git", "+a:b"]) == \
        "https://github.example.com:8443/"
    assert _origin(["gc", "--auto"]) is None
    env = auth_env("ghs_" + "x" * 36, url="https://github.example.com/")
    assert env["GIT_CONFIG_KEY_0"] == "http.https://github.example.com/.extraHeader"
    assert "ghs_" not in " ".join(env.values())  # only its base64 form, in the header


def test_per_call_tokens_do_not_grow_the_scrubber_without_bound():
    # A long-running worker runs git with a fresh installation token every hour
    # per installation; the scrubber must keep the recent ones, not every one ever.
    from app import log
    from app.git.run import auth_env

    log.register_secret("pinned-start-up-secret")
    before = log.secret_count()
    for n in range(3 * log.MAX_SHORT_LIVED_SECRETS):
        auth_env(f"token-{n:06d}-value")
    assert log.secret_count() <= before + log.MAX_SHORT_LIVED_SECRETS
    latest = f"token-{3 * log.MAX_SHORT_LIVED_SECRETS - 1:06d}-value"
    assert log.scrub(f"git said {latest}") == "git said ***"
    # Secrets from the configuration are kept for the life of the process.
    assert log.scrub("pinned-start-up-secret") == "***"


async def test_git_gets_its_own_credential_and_no_pao_setting(monkeypatch):
    secrets = {"PAO_ONEDEV_TOKEN": "onedev-secret-1", "PAO_REPO_TOKEN": "repo-secret-2",
               "PAO_GITHUB_PRIVATE_KEY": "-----BEGIN PRIVATE KEY-----secret-3",
               "PAO_WEBHOOK_SECRET": "hook-secret-4"}
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    token = "ghs_" + "t" * 36
    # A shell alias runs as git's child with git's environment: print it.
    out = await run_git(["-c", "alias.penv=!f() { env; }; f", "penv",
                         "https://git.example.com/o/r.git"], token=token)
    env = dict(line.split("=", 1) for line in out.stdout.decode().splitlines() if "=" in line)
    assert not [name for name in env if name.startswith("PAO_")]
    assert not [v for v in secrets.values() if v in out.stdout.decode()]
    header = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    assert env["GIT_CONFIG_KEY_0"] == "http.https://git.example.com/.extraHeader"
    assert env["GIT_CONFIG_VALUE_0"] == f"Authorization: Basic {header}"
    assert env["PATH"].endswith(os.environ["PATH"])  # what git needs still reaches it


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc and pidfds")
async def test_helpers_outliving_a_killed_worker_are_stopped_before_the_next_write(tmp_path):
    cache = BareRepository(tmp_path / "cache.git")
    await cache.ensure()
    code = ("import asyncio; from app.git.run import run_git; "
            f"asyncio.run(run_git({SLOW_REMOTE!r}, timeout=60))")
    worker = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT)
    try:
        # git's remote helper, and the "remote" it runs (sleep), are up: counting processes
        # is not enough, as git and its helper come up first and the remote only then.
        await wait_for(lambda: asyncio.to_thread(lambda: any(
            program(p) == "sleep" for p in owned_by(worker.pid))), what="git and its helpers")
        started = owned_by(worker.pid)
        [git_pid] = children(worker.pid)
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait()
        await wait_for(lambda: asyncio.to_thread(lambda: not alive(git_pid)), interval=0.01,
                       what="git to die with its worker")
        # The parent-death signal stopped git itself, not the helpers it started. (Read at
        # once: any PAO process's stop_orphans, another test session's too, may stop them.)
        survivors = [p for p in started if p != git_pid and alive(p)]
        assert survivors
        async with writing(cache.path):
            assert not any(alive(p) for p in survivors)
    finally:
        if worker.poll() is None:
            worker.kill()


def program(pid: int) -> str:
    """The name of the program process ``pid`` runs ("" once it is gone)."""
    try:
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
    except OSError:
        return ""
    return os.path.basename(argv0.decode(errors="replace"))


def owned_by(pid: int) -> list[int]:
    """Live processes whose environment names ``pid`` as the PAO process that started them."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                environ = (entry / "environ").read_bytes().split(b"\0")
            except OSError:
                continue
            for var in environ:
                if var.startswith(f"{OWNER_VAR}=".encode()) and var.split(b"/")[-2] == str(pid).encode():
                    found.append(int(entry.name))
    return [p for p in found if alive(p)]


def test_git_runs_on_uvloop_the_event_loop_pao_serves_on():
    # uvloop refuses some of asyncio's subprocess options (process_group): `pao serve`
    # and `pao worker` run on it, so every git they start goes through it.
    import uvloop

    async def version() -> bytes:
        return (await run_git(["--version"])).stdout

    assert uvloop.run(version()).startswith(b"git version")


async def test_a_cancelled_git_is_killed_and_reaped():
    # A run that loses its job (taken over, shut down) cancels its git: the git and its
    # helpers stop, and no zombie is left for the worker's lifetime.
    run = asyncio.create_task(run_git(SLOW_REMOTE, timeout=60))

    async def git_running() -> list[int]:
        return [p for p in children(os.getpid())
                if Path(f"/proc/{p}/comm").read_text().strip().startswith("git")]

    gits = await wait_for(git_running, what="git to start")
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert not set(gits) & set(children(os.getpid())), "git was not reaped"
    assert not any(alive(p) for p in gits)
