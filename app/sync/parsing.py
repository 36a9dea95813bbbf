"""Parsing many catalog files: in this process for a few, across CPU cores for a full load.

The validator (``app.catalog.parse``) costs several times a bare YAML load
(templates are compiled to be checked), so a 10,000-file load spreads it over
worker processes. Results come back without the YAML node marks they no longer need.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import multiprocessing
import os
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from app.catalog.parse import ParsedFile, parse_catalog_file
from app.sync.plan import content_hash

log = logging.getLogger(__name__)

# Below this many files a process pool costs more than it saves.
PARALLEL_THRESHOLD = 1000
MAX_PROCESSES = 8

Parsed = tuple[dict[str, ParsedFile], dict[str, str]]


def parse_batch(contents: Mapping[str, bytes]) -> Parsed:
    """Parse each path's bytes; also return each one's content hash."""
    parsed = {}
    for path, data in contents.items():
        p = parse_catalog_file(path, data)
        if getattr(p, "loaded", None) is not None:
            p = dataclasses.replace(p, loaded=None)  # marks are large and no longer needed
        parsed[path] = p
    return parsed, {path: content_hash(data) for path, data in contents.items()}


def _processes() -> int:
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cpus = os.cpu_count() or 1
    return max(1, min(MAX_PROCESSES, cpus))


async def parse_many(contents: Mapping[str, bytes]) -> Parsed:
    """Parse off the event loop: one thread for small batches, a process per core for large ones."""
    processes = _processes()
    if len(contents) < PARALLEL_THRESHOLD or processes == 1:
        return await asyncio.to_thread(parse_batch, contents)
    items = list(contents.items())
    chunks = [dict(items[i::processes]) for i in range(processes)]
    loop = asyncio.get_running_loop()
    # forkserver: children start from a clean process, not a copy of this one's threads.
    ctx = multiprocessing.get_context("forkserver")
    try:
        with ProcessPoolExecutor(max_workers=processes, mp_context=ctx) as pool:
            results = await asyncio.gather(*(loop.run_in_executor(pool, parse_batch, c) for c in chunks))
    except (BrokenProcessPool, OSError) as exc:
        # No processes to be had (limits, a sandbox): slower, but the sync still happens.
        log.warning("parsing in one process: the process pool failed (%s)", exc)
        return await asyncio.to_thread(parse_batch, contents)
    parsed: dict[str, ParsedFile] = {}
    hashes: dict[str, str] = {}
    for p, h in results:
        parsed.update(p)
        hashes.update(h)
    return parsed, hashes
