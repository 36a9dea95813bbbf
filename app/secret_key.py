"""Where PAO's secret key comes from: ``PAO_SECRET_KEY``, else a key generated into the data dir.

A first ``./scripts/run`` must be able to finish ``/setup`` in the browser, which needs a key
to encrypt the App's secrets with. So when ``PAO_SECRET_KEY`` is unset, the first process
to start writes a random key to ``$PAO_DATA_DIR/secret_key`` (mode 0600) and every later
process sharing that data dir (``PAO_WEB_PROCESSES``, ``pao worker``) reads the same one.
Creation is race-free: the key is written to a private temporary file and hard-linked into
place, which fails if another process got there first; the loser reads the winner's key.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import secrets
import stat
from pathlib import Path
from typing import Any

from app.config import ConfigError
from app.console.config import MIN_SECRET_KEY, console_settings
from app.log import register_secret
from app.requests.config import request_settings

log = logging.getLogger(__name__)

KEY_FILE = "secret_key"


def key_path(data_dir: Path) -> Path:
    return data_dir / KEY_FILE


def _unusable(path: Path, exc: OSError) -> ConfigError:
    return ConfigError([f"PAO_SECRET_KEY: unset, and {path}: {exc.strerror or exc}; fix the file's "
                        "permissions (PAO must read it), or set PAO_SECRET_KEY"])


def read_key(path: Path) -> str:
    """The key in ``path``; ConfigError naming the file when it cannot serve as one."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        raise
    except OSError as exc:  # a symbolic link, no permission
        raise _unusable(path, exc) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError([f"PAO_SECRET_KEY: unset, and {path} is not a regular file"])
        if info.st_mode & 0o077:
            log.warning("%s is readable by other users; restrict it: chmod 600 %s", path, path)
        with os.fdopen(fd, "r", closefd=False) as f:
            key = f.read().strip()
    finally:
        os.close(fd)
    if len(key) < MIN_SECRET_KEY:
        # Never replaced silently: stored secrets were encrypted with whatever key it held.
        raise ConfigError([f"PAO_SECRET_KEY: unset, and {path} holds no usable key (fewer than "
                           f"{MIN_SECRET_KEY} characters); restore it from a backup, or set PAO_SECRET_KEY"])
    return key


def load_or_create(data_dir: Path) -> tuple[str, bool]:
    """The key stored in ``data_dir``, created first when there is none; True when created here."""
    path = key_path(data_dir)
    with contextlib.suppress(FileNotFoundError):
        return read_key(path), False
    key = secrets.token_urlsafe(48)  # 384 bits
    temporary = data_dir / f".{KEY_FILE}.{os.getpid()}.{secrets.token_hex(6)}"
    try:
        # The directory keeps its usual mode: the embedded PostgreSQL's own user must traverse it.
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except OSError as exc:  # a read-only or foreign data dir
        problem = (f"PAO_SECRET_KEY: unset, and no key can be created in {data_dir}: "
                   f"{exc.strerror or exc}; make PAO_DATA_DIR writable, or set PAO_SECRET_KEY")
        raise ConfigError([problem]) from None
    try:
        try:
            os.write(fd, (key + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            # Appears complete or not at all; refuses to replace a key another process linked first.
            os.link(temporary, path)
            created = True
        except FileExistsError:
            created = False
        except OSError as exc:  # a file system without hard links: no race-free way to create it
            problem = (f"PAO_SECRET_KEY: unset, and {path} cannot be created safely in {data_dir} "
                       f"({exc.strerror or exc}); set PAO_SECRET_KEY, or put PAO_DATA_DIR elsewhere")
            raise ConfigError([problem]) from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
    if created:
        dir_fd = os.open(data_dir, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    return read_key(path), created


def with_secret_key(settings: Any) -> Any:
    """``settings`` with a secret key for the console and requests: PAO_SECRET_KEY wins, else the
    data dir's (created on the first start). Says at start which source is used, never the key."""
    console = console_settings(settings)
    if console.secret_key is not None:
        log.info("secret key: from PAO_SECRET_KEY")
        return settings
    key, created = load_or_create(settings.data_dir)
    register_secret(key)
    log.info("secret key: %s %s (PAO_SECRET_KEY is unset; back this file up)",
             "generated into" if created else "read from", key_path(settings.data_dir))
    extra = {**settings.extra,
             "console": dataclasses.replace(console, secret_key=key),
             "requests": dataclasses.replace(request_settings(settings), secret_key=key)}
    return dataclasses.replace(settings, extra=extra)
