"""Imported by the parsing processes' forkserver only (a preload of ``app.sync.parsing``).

The forkserver dies when a fork it is asked for fails (at a process limit, fork()
raises in its loop). The sync then parses in its own thread and logs one WARNING;
the server's own last words are one line naming the cause, not a traceback of
multiprocessing's internals on the worker's stderr at every big sync.
"""

from __future__ import annotations

import sys
from types import TracebackType


def _one_line(kind: type[BaseException], error: BaseException, _tb: TracebackType | None) -> None:
    sys.stderr.write(f"parsing processes' forkserver stopped: {kind.__name__}: {error}\n")


sys.excepthook = _one_line
