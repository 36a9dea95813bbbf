"""Parsing the files a sync read, off the event loop.

The validator (``app.catalog.parse``) is the same one the CLI and check runs
use, so the API serves only what passes it. It costs about 1.3 times a bare
YAML load, which makes it the largest part of a full load.
(A process pool was measured for 10,000-file loads and did not pay on a
loaded 2-core host, so parsing stays in one thread.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from app.catalog.parse import ParsedFile, parse_catalog_file
from app.sync.plan import content_hash

Parsed = tuple[dict[str, ParsedFile], dict[str, str]]


def parse_batch(contents: Mapping[str, bytes]) -> Parsed:
    """Parse each path's bytes; also return each one's content hash."""
    parsed = {path: parse_catalog_file(path, data, keep_marks=False)
              for path, data in contents.items()}
    return parsed, {path: content_hash(data) for path, data in contents.items()}


async def parse_many(contents: Mapping[str, bytes]) -> Parsed:
    """``parse_batch`` in a worker thread, so the web app keeps answering during a big load."""
    return await asyncio.to_thread(parse_batch, contents)
