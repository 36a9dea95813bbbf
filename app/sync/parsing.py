"""Parsing the files a sync read, off the event loop.

The validator (``app.catalog.parse``) is the same one the CLI and check runs
use, so the API serves only what passes it. It costs about 1.2 times a bare
YAML load, which makes it the largest part of a full load: from
``PARALLEL_FROM`` files on (full loads, big pushes) the files are parsed in
chunks by the thread and ``PAO_SYNC_PARSE_PROCESSES - 1`` processes (forked from
a forkserver that has the validator imported), each taking the next chunk when
free, with exactly the serial path's results, in the same order. Smaller
batches parse in one thread: starting processes would cost more than it saves.
The cyclic garbage collector is paused during a batch (and the engine pauses it
for a whole sync): the thousands of documents it builds are kept, and rescanning
them on every collection nearly doubled a full load's parse.

YAML can carry values PostgreSQL cannot store (a NUL character, written ``"\\0"``,
a lone surrogate, an integer beyond 64 bits): such a document is an error of its
file, and finding messages are made storable, so one file never fails the sync's
transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import gc
import itertools
import logging
import multiprocessing
import threading
from collections.abc import Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.context import BaseContext
from typing import Any

import orjson

from app.aio import uncancellable
from app.catalog.crossfile import NAME
from app.catalog.model import crashed
from app.catalog.parse import Finding, ParsedFile, parse_catalog_file
from app.pgtext import LONE_SURROGATE, NUL, unstorable_kind
from app.sync.plan import content_hash

Parsed = tuple[dict[str, ParsedFile], dict[str, str]]
log = logging.getLogger(__name__)


_HOLDS = {NUL: "a NUL character", LONE_SURROGATE: "a lone surrogate (not Unicode text)"}


def _unstorable(text: str) -> str | None:
    """What in ``text`` PostgreSQL text could not hold (worded for a finding), or None."""
    kind = unstorable_kind(text)
    return None if kind is None else _HOLDS[kind]


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
    parsed = parse_catalog_file(path, data)
    if parsed.loaded is not None:
        # The one mark the sync places a finding at: a lost name (PAO040). The others
        # would only be held, and shipped back from a parsing process, for nothing.
        parsed.loaded = parsed.loaded.only(NAME)
    try:
        return storable(parsed, data)
    except Exception as exc:  # one file's failure never fails the sync's other files
        return ParsedFile(path, parsed.kind, None, None, [crashed(path, "storing", exc)])


def parse_batch(contents: Mapping[str, bytes]) -> Parsed:
    """Parse each path's bytes; also return each one's content hash."""
    with collector_paused():
        parsed = {path: parse_one(path, data) for path, data in contents.items()}
    return parsed, {path: content_hash(data) for path, data in contents.items()}


# Below this many files a batch parses in one thread. Forking the pool's processes from
# a running forkserver and shipping the results back costs tens of milliseconds.
PARALLEL_FROM = 500
# Files per chunk handed to a process: small enough that every process gets several
# (an even finish) and a cancelled sync waits little for the chunks already running.
CHUNK_FILES = 250


async def parse_many(contents: Mapping[str, bytes], *, processes: int = 1) -> Parsed:
    """``parse_batch`` off the event loop, so the web app keeps answering during a big load:
    in a worker thread, helped by ``processes - 1`` processes from ``PARALLEL_FROM`` files on."""
    if processes > 1 and len(contents) >= PARALLEL_FROM:
        return await _parse_in_processes(contents, processes)
    return await asyncio.to_thread(parse_batch, contents)


@functools.cache
def _context() -> BaseContext:
    """A forkserver that has imported the validator: each pool process forks from it, ready.

    Not fork() from the worker itself: it runs threads (a child could inherit a lock
    one of them held) and copying its page tables is what made each git cost 20 ms.
    The server also imports the main module (``pao``'s script, guarded by
    ``__name__``) once, or every pool process would run it again on start.
    """
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["__main__", __name__])
    return context


async def _parse_in_processes(contents: Mapping[str, bytes], processes: int) -> Parsed:
    """Chunks parsed by this process (in a thread) and ``processes - 1`` pool processes.

    Each takes the next chunk when it is free, so whoever gets the CPU does the work:
    on a host whose cores are busy the pool's processes may get little of it, and the
    thread still parses as fast as the one-thread path would.
    """
    items = list(contents.items())
    chunks = [dict(items[i:i + CHUNK_FILES]) for i in range(0, len(items), CHUNK_FILES)]
    done: list[Parsed | None] = [None] * len(chunks)
    order = itertools.count()  # next() is atomic under the GIL: each chunk is taken once
    stop = threading.Event()

    def take() -> int | None:
        i = next(order)
        return i if i < len(chunks) and not stop.is_set() else None

    def in_this_process() -> None:
        while (i := take()) is not None:
            done[i] = parse_batch(chunks[i])

    loop = asyncio.get_running_loop()

    async def in_a_process(executor: ProcessPoolExecutor) -> None:
        while (i := take()) is not None:
            try:
                done[i] = await loop.run_in_executor(executor, parse_batch, chunks[i])
            except (BrokenProcessPool, OSError) as exc:
                # No process could start, or one died (a main module that runs code when
                # imported, a resource limit, a crash): the thread parses what is left.
                log.warning("parsing process failed (%s: %s); parsing in this process",
                            type(exc).__name__, exc)
                return

    executor = ProcessPoolExecutor(max_workers=processes - 1, mp_context=_context())
    here = asyncio.ensure_future(asyncio.to_thread(in_this_process))
    try:
        await asyncio.gather(asyncio.shield(here), *(in_a_process(executor) for _ in range(processes - 1)))
    finally:
        # Cancelled or failed: no chunk is started any more, and the running ones are
        # awaited, so neither the thread nor a process outlives the sync.
        stop.set()
        await uncancellable(asyncio.gather(
            here, asyncio.to_thread(executor.shutdown, wait=True, cancel_futures=True),
            return_exceptions=True))
    missing = {i: chunks[i] for i, chunk in enumerate(done) if chunk is None}
    if missing:  # the chunks a failed process had taken
        redone = await asyncio.to_thread(lambda: {i: parse_batch(c) for i, c in missing.items()})
        for i, chunk in redone.items():
            done[i] = chunk
    parsed: dict[str, ParsedFile] = {}
    hashes: dict[str, str] = {}
    for chunk in done:  # in chunk order: the serial path's order
        assert chunk is not None
        parsed.update(chunk[0])
        hashes.update(chunk[1])
    return parsed, hashes
