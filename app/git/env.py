"""The environment of every subprocess PAO starts: what the program needs, no secret.

A child gets the few variables below from PAO's environment and nothing else,
so no ``PAO_*`` setting (OneDev token, private key, webhook secret...) reaches
git, its helpers or hooks. The one credential a git call needs is added by
``app.git.run`` for that call only. Subprocesses a library starts (the embedded
PostgreSQL) are started with ``PAO_*`` hidden (``pao_settings_hidden``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping

# Finding programs and the user's git config, temp space, proxies and TLS trust:
# what git (and its curl) reads. Secrets never live in these.
PASSTHROUGH = (
    "PATH", "HOME", "USER", "LOGNAME", "TMPDIR", "TZ",
    "XDG_CONFIG_HOME", "GIT_CONFIG_GLOBAL", "GIT_EXEC_PATH",
    "http_proxy", "https_proxy", "no_proxy", "all_proxy",
    "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY",
    "SSL_CERT_FILE", "SSL_CERT_DIR", "GIT_SSL_CAINFO", "GIT_SSL_CAPATH",
)


def child_env(extra: Mapping[str, str] | None = None,
              source: Mapping[str, str] | None = None) -> dict[str, str]:
    """A minimal environment for a subprocess: ``PASSTHROUGH`` from ``source``, plus ``extra``.

    ``LC_ALL=C`` keeps git's messages in English, which the error classifiers read.
    """
    source = os.environ if source is None else source
    env = {name: source[name] for name in PASSTHROUGH if name in source}
    env["LC_ALL"] = "C"
    env.update(extra or {})
    return env


@contextlib.contextmanager
def pao_settings_hidden() -> Iterator[None]:
    """Hide ``PAO_*`` from ``os.environ`` while a library starts a subprocess PAO cannot
    give an environment to (the embedded PostgreSQL). Only for start-up, before
    anything else reads the environment concurrently.
    """
    hidden = {name: os.environ.pop(name) for name in list(os.environ) if name.startswith("PAO_")}
    try:
        yield
    finally:
        os.environ.update(hidden)
