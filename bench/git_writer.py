"""Benchmark: what taking a cache for writing costs (app.git.locks.writing).

Before every fetch or push into a cache PAO takes its writer flock, scans /proc
for git helpers a killed worker left running (app.git.orphans) and removes stale
lock files. Prints the /proc scan and the whole ``writing()`` per call, with the
number of processes on the machine (the scan reads each one's environment).

Usage: python bench/git_writer.py [--rounds N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.git.locks import writing  # noqa: E402
from app.git.orphans import find_orphans  # noqa: E402
from app.git.repo import BareRepository  # noqa: E402


async def main(rounds: int) -> None:
    processes = sum(1 for name in os.listdir("/proc") if name.isdigit())
    started = time.perf_counter()
    for _ in range(rounds):
        find_orphans()
    scan_ms = (time.perf_counter() - started) / rounds * 1000
    with tempfile.TemporaryDirectory() as tmp:
        repo = BareRepository(Path(tmp) / "cache.git")
        await repo.ensure()
        started = time.perf_counter()
        for _ in range(rounds):
            async with writing(repo.path):
                pass
        writing_ms = (time.perf_counter() - started) / rounds * 1000
    print(f"processes on this machine: {processes}")
    print(f"/proc scan for orphaned git helpers: {scan_ms:.2f} ms per call")
    print(f"writing() (flock + scan + lock files): {writing_ms:.2f} ms per call")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    asyncio.run(main(parser.parse_args().rounds))
