"""Parsing the files a sync read, off the event loop.

The validator (``app.catalog.parse``) is the same one the CLI and check runs
use, so the API serves only what passes it. It costs about 1.2 times a bare
YAML load, which makes it the largest part of a full load: from
``PARALLEL_FROM`` files on (full loads, big pushes) the files are parsed in
chunks by ``PAO_SYNC_PARSE_PROCESSES`` processes (forked from a forkserver that
has the validator imported), each taking the next chunk when free, with exactly
the serial path's results, in the same order. Smaller
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
import logging
import multiprocessing
import multiprocessing.connection
import multiprocessing.forkserver
import os
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
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


# Called with each chunk's results as they come (in no set order), and awaited before
# the next: the sync writes rows while the rest is still being parsed.
OnChunk = Callable[[dict[str, ParsedFile], dict[str, str]], Awaitable[None]]


async def parse_many(contents: Mapping[str, bytes], *, processes: int = 1,
                     on_chunk: OnChunk | None = None) -> Parsed:
    """``parse_batch`` off the event loop, so the web app keeps answering during a big load:
    in a worker thread, or in ``processes`` processes from ``PARALLEL_FROM`` files on.

    ``on_chunk`` sees every file's result exactly once (with one thread, all at once).
    """
    if processes > 1 and len(contents) >= PARALLEL_FROM:
        return await _parse_in_processes(contents, processes, on_chunk)
    parsed, hashes = await asyncio.to_thread(parse_batch, contents)
    if on_chunk is not None:
        await on_chunk(parsed, hashes)
    return parsed, hashes


# What a chunk's future holds when its process died or could not start.
_PROCESS_FAILURES = (BrokenProcessPool, OSError, EOFError)


@functools.cache
def _context() -> BaseContext:
    """A forkserver that has imported the validator: each pool process forks from it, ready.

    Not fork() from the worker itself: it runs threads (a child could inherit a lock
    one of them held) and copying its page tables is what made each git cost 20 ms.
    """
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__, "app.sync.parse_server"])
    return context


def warm_up() -> None:
    """Start the forkserver now (blocking: call it in a thread), so a big sync's pool
    starts in milliseconds: the server's first start imports the validator (~0.2 s)."""
    _context()
    multiprocessing.forkserver.ensure_running()


@contextlib.contextmanager
def _main_not_rerun() -> Iterator[None]:
    """Start processes without each running this process's main script again.

    multiprocessing runs the main script (as ``__mp_main__``) in every process it
    starts this way: its forkserver's preload of ``__main__`` has never worked before
    Python 3.14 (CPython gh-126631). That cost each pool process 0.1 s (``pao``) to
    0.4 s (a bench script) on every big sync, for nothing: the pool runs this module's
    functions only. With the main module's file and spec hidden while the processes
    start, they run none. The pool starts its processes on the first submits, which
    run inside this block.
    """
    main = sys.modules["__main__"]
    saved = {k: main.__dict__[k] for k in ("__file__", "__spec__") if k in main.__dict__}
    main.__dict__.pop("__file__", None)
    main.__spec__ = None
    try:
        yield
    finally:
        main.__dict__.update(saved)


def _in_pool_process() -> None:
    """Set up a pool process: it exits when the process that started it does, keeps
    its collector off (it lives for one sync and holds one chunk's documents at a time,
    which a collection between chunks would rescan), and writes nothing to stderr.

    The worker reports a pool process that fails (one WARNING, and its chunks parsed
    in the thread), and a file's failure comes back as that file's error. What such a
    process printed itself was multiprocessing's traceback when the pool is torn down
    under it (a stop that signals the whole process group), on the worker's stderr.
    """
    gc.disable()
    sys.stderr = open(os.devnull, "w")  # kept open for the life of the process
    parent = multiprocessing.parent_process()
    if parent is not None:
        watch = threading.Thread(target=_exit_with, args=(parent.sentinel,), name="pao-parent-watch",
                                 daemon=True)
        # At a thread limit the process still parses; only a killed worker would leave it.
        with contextlib.suppress(RuntimeError):
            watch.start()


def _exit_with(parent_sentinel: int) -> None:
    """Exit this process once its parent (the worker that asked for it) has ended.

    A pool process is the forkserver's child, not the worker's, so nothing else ends
    it when the worker is killed: it would wait for the next chunk on a queue whose
    write end it holds itself, or block sending a result nobody reads, and, since it
    holds the forkserver's "alive" pipe, keep the forkserver (and its resource
    tracker) running too. The sentinel is the one pipe end only the worker holds.
    """
    multiprocessing.connection.wait([parent_sentinel])
    os._exit(1)


# How long the pool's processes get to finish their chunk and exit once the parse is
# over (or cancelled) before they are killed.
SHUTDOWN_GRACE_SECONDS = 10.0


def _shut_down(executor: ProcessPoolExecutor) -> None:
    """End the pool: queued chunks dropped, running ones awaited (bounded), no process left.

    ``shutdown(wait=True)`` alone can wait forever: a pool process killed while it held
    the queue's lock (a SIGTERM to the worker's process group as the pool starts) leaves
    another blocked on that lock, and the pool waits for it to exit. Such a process is
    killed after ``SHUTDOWN_GRACE_SECONDS``; the pool then ends.
    """
    # The pool's own table of its processes (there is no public one), read before
    # shutdown() empties it.
    handles = list((getattr(executor, "_processes", None) or {}).values())
    executor.shutdown(wait=False, cancel_futures=True)
    deadline = time.monotonic() + SHUTDOWN_GRACE_SECONDS
    for process in handles:
        process.join(max(0.0, deadline - time.monotonic()))
    stuck = [p for p in handles if p.is_alive()]
    for process in stuck:
        process.kill()
        process.join(SHUTDOWN_GRACE_SECONDS)
    if stuck:
        log.warning("killed parsing process(es) %s: not ended %.0f s after the parse",
                    ", ".join(str(p.pid) for p in stuck), SHUTDOWN_GRACE_SECONDS)


async def _parse_in_processes(contents: Mapping[str, bytes], processes: int,
                               on_chunk: OnChunk | None) -> Parsed:
    """Chunks parsed by ``processes`` pool processes, all submitted at once.

    The pool hands each process its next chunk as soon as it sends a result, with
    one more chunk queued, so no process waits on this one. (Parsing in this
    process's thread too cost more than it gave: the parse held the GIL, and every
    hand-off to a process (its start, each result and next chunk) waited for it,
    leaving a process idle about 40% of a full load.) A chunk a failed process
    leaves is parsed here in a thread.
    """
    items = list(contents.items())
    chunks = [dict(items[i:i + CHUNK_FILES]) for i in range(0, len(items), CHUNK_FILES)]
    done: list[Parsed | None] = [None] * len(chunks)
    executor = ProcessPoolExecutor(max_workers=min(processes, len(chunks)), mp_context=_context(),
                                   initializer=_in_pool_process)
    failure: BaseException | None = None

    async def outcome(i: int, future: asyncio.Future[Parsed]) -> tuple[int, Parsed | BaseException]:
        try:
            return i, await future
        except _PROCESS_FAILURES as exc:
            return i, exc

    waiting: list[asyncio.Future[tuple[int, Parsed | BaseException]]] = []
    try:
        try:
            with _main_not_rerun():
                for i, chunk in enumerate(chunks):
                    future = asyncio.wrap_future(executor.submit(parse_batch, chunk))
                    waiting.append(asyncio.ensure_future(outcome(i, future)))
        except Exception as exc:  # whatever stops a process starting: the thread parses
            # A process could not start (a process limit, no forkserver: OSError, or
            # EOFError when the forkserver died forking), or one died already.
            failure = exc
        for next_done in asyncio.as_completed(waiting):
            i, result = await next_done
            if isinstance(result, BaseException):
                # No process could start, or one died (a resource limit, a crash): the
                # chunks it had are parsed here.
                failure = failure or result
                continue
            done[i] = result
            if on_chunk is not None:
                await on_chunk(*result)
    finally:
        # Cancelled or failed: queued chunks are dropped and the running ones awaited,
        # so no process outlives the sync.
        for task in waiting:
            task.cancel()
        await uncancellable(asyncio.gather(
            *waiting, asyncio.to_thread(_shut_down, executor),
            return_exceptions=True))
    if failure is not None:
        log.warning("parsing process failed (%s: %s); parsing in this process",
                    type(failure).__name__, failure)
        missing = {i: chunks[i] for i, chunk in enumerate(done) if chunk is None}
        redone = await asyncio.to_thread(lambda: {i: parse_batch(c) for i, c in missing.items()})
        for i, chunk in redone.items():
            done[i] = chunk
            if on_chunk is not None:
                await on_chunk(*chunk)
    parsed: dict[str, ParsedFile] = {}
    hashes: dict[str, str] = {}
    for chunk in done:  # in chunk order: the serial path's order
        assert chunk is not None
        parsed.update(chunk[0])
        hashes.update(chunk[1])
    return parsed, hashes
