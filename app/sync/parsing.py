"""Parsing the files a sync read, off the event loop.

The validator (``app.catalog.parse``) is the same one the CLI and check runs
use, so the API serves only what passes it. It costs about 1.3 times a bare
YAML load, which makes it the largest part of a full load.
(A process pool was measured for 10,000-file loads and did not pay on a
loaded 2-core host, so parsing stays in one thread.) The cyclic garbage
collector is paused during a batch (and the engine pauses it for a whole sync):
the thousands of documents it builds are kept, and rescanning them on every
collection nearly doubled a full load's parse.

YAML can carry values PostgreSQL cannot store (a NUL character, written ``"\\0"``,
a lone surrogate, an integer beyond 64 bits): such a document is an error of its
file, and finding messages are made storable, so one file never fails the sync's
transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import orjson

from app.catalog.model import crashed
from app.catalog.parse import Finding, ParsedFile, parse_catalog_file
from app.sync.plan import content_hash

Parsed = tuple[dict[str, ParsedFile], dict[str, str]]


def _unstorable(text: str) -> str | None:
    """Why PostgreSQL text could not hold ``text``, or None."""
    if "\x00" in text:
        return "a NUL character"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "a lone surrogate (not Unicode text)"
    return None


def storable_text(text: str) -> str:
    """``text`` with NULs and lone surrogates written as escapes."""
    return text.replace("\x00", "\\0").encode("utf-8", "backslashreplace").decode("utf-8")


def _first_unstorable(document: Any) -> str | None:
    """Why some key or string in ``document`` cannot be stored, or None (iterative: no depth limit)."""
    stack = [document]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            problem = _unstorable(value)
            if problem:
                return problem
        elif isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return None


def _unstorable_document(document: Any, data: bytes) -> str | None:
    """Why ``document`` cannot be stored as jsonb, or None."""
    try:
        orjson.dumps(document, default=str)  # as the store encodes it; microseconds a document
    except orjson.JSONEncodeError as exc:  # an integer beyond 64 bits, a lone surrogate
        return f"a value JSON cannot encode ({exc})"
    # YAML refuses a literal NUL: only an escape ("\0") makes one, so most files skip the walk.
    return _first_unstorable(document) if b"\\" in data else None


def storable(parsed: ParsedFile, data: bytes) -> ParsedFile:
    """``parsed`` as the sync can store it: findings' text escaped; an unstorable document an error."""
    findings = [f if _unstorable(f.message) is None
                else dataclasses.replace(f, message=storable_text(f.message)) for f in parsed.findings]
    problem = _unstorable_document(parsed.document, data) if parsed.document is not None else None
    if problem is None:
        return parsed if findings == parsed.findings else dataclasses.replace(parsed, findings=findings)
    findings.append(Finding(parsed.path, 1, 1, "unstorable-value", "error",
                            f"the file holds {problem}, which the catalog database cannot store; "
                            "change or remove it"))
    return dataclasses.replace(parsed, identifier=None, document=None, findings=findings)


_gc_pauses = 0
_gc_was_enabled = False
_gc_lock = threading.Lock()


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector (process-wide) for the block; nests across threads.

    Reference counting still frees everything acyclic; cycles made meanwhile are
    collected once the last pause ends (if the collector was on before the first).
    """
    global _gc_pauses, _gc_was_enabled
    with _gc_lock:
        if _gc_pauses == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_pauses += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pauses -= 1
            if _gc_pauses == 0 and _gc_was_enabled:
                gc.enable()


def parse_one(path: str, data: bytes) -> ParsedFile:
    """One file, validated and made storable; whatever fails is that file's error."""
    # The marks cross-file rules use: the sync reports a lost name (PAO040) at its place.
    parsed = parse_catalog_file(path, data)
    try:
        return storable(parsed, data)
    except Exception as exc:  # one file's failure never fails the sync's other files
        return ParsedFile(path, parsed.kind, None, None, [crashed(path, "storing", exc)])


def parse_batch(contents: Mapping[str, bytes]) -> Parsed:
    """Parse each path's bytes; also return each one's content hash."""
    with collector_paused():
        parsed = {path: parse_one(path, data) for path, data in contents.items()}
    return parsed, {path: content_hash(data) for path, data in contents.items()}


async def parse_many(contents: Mapping[str, bytes]) -> Parsed:
    """``parse_batch`` in a worker thread, so the web app keeps answering during a big load."""
    return await asyncio.to_thread(parse_batch, contents)
