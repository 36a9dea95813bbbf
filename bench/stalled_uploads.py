"""Stalled uploads against a real PAO: how long a large signed delivery waits for them.

Starts ``python -m app serve`` on the embedded PostgreSQL (a fresh data dir), opens
``--stalled`` connections that send a webhook's headers and a few bytes of a large body
and then nothing (half with a Content-Length, half chunked), and while they hang sends
``--deliveries`` signed deliveries of ``--megabytes`` MB one after another. Prints each
acknowledgement time (GitHub gives up after 10 s) and what the stalled connections got.

    python bench/stalled_uploads.py --stalled 64 --megabytes 2
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.webhook_ingest import REPO, SECRET, free_port, wait_ready  # noqa: E402

URL_PATH = "/api/v1/webhooks/github"


async def stall(port: int, chunked: bool) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    length = b"Transfer-Encoding: chunked" if chunked else b"Content-Length: 2000000"
    writer.write(b"POST " + URL_PATH.encode() + b" HTTP/1.1\r\nHost: pao\r\n"
                 b"X-GitHub-Event: ping\r\nX-GitHub-Delivery: stalled\r\n"
                 b"X-Hub-Signature-256: sha256=00\r\nContent-Type: application/json\r\n"
                 + length + b"\r\n\r\n" + (b"5\r\n{\"a\":\r\n" if chunked else b'{"a":'))
    await writer.drain()
    return reader, writer


async def deliver(session: aiohttp.ClientSession, url: str, megabytes: float) -> tuple[int, float]:
    body = json.dumps({"zen": "x" * int(megabytes * 1024 * 1024), "hook_id": 1}).encode()
    headers = {"X-GitHub-Event": "ping", "X-GitHub-Delivery": str(uuid.uuid4()),
               "Content-Type": "application/json",
               "X-Hub-Signature-256": "sha256=" + hmac.new(SECRET.encode(), body,
                                                           hashlib.sha256).hexdigest()}
    started = time.perf_counter()
    async with session.post(url + URL_PATH, data=body, headers=headers) as resp:
        await resp.read()
        return resp.status, time.perf_counter() - started


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stalled", type=int, default=64)
    parser.add_argument("--deliveries", type=int, default=5)
    parser.add_argument("--megabytes", type=float, default=2.0)
    args = parser.parse_args()

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PAO_DATA_DIR": tempfile.mkdtemp(prefix="pao-bench-"),
           "PAO_PORT": str(port), "PAO_WEBHOOK_SECRET": SECRET, "PAO_WORKERS": "0",
           "PAO_REPO_URL": f"https://github.com/{REPO}.git",
           "PAO_LOG_LEVEL": "ERROR"}
    env.pop("PAO_DB_URL", None)
    proc = subprocess.Popen([sys.executable, "-m", "app", "serve"], cwd=ROOT, env=env)
    try:
        await wait_ready(url, proc)
        stalled = [await stall(port, chunked=i % 2 == 1) for i in range(args.stalled)]
        print(f"{args.stalled} stalled uploads open; sending {args.deliveries} signed "
              f"{args.megabytes:g} MB deliveries")
        async with aiohttp.ClientSession() as session:
            for _ in range(args.deliveries):
                status, seconds = await deliver(session, url, args.megabytes)
                print(f"  answered {status} in {seconds * 1000:7.1f} ms")
        answered = 0
        for reader, writer in stalled:
            try:
                line = await asyncio.wait_for(reader.readline(), 15)
            except TimeoutError:
                line = b""
            answered += line.startswith(b"HTTP/1.1 408")
            writer.close()
        print(f"stalled uploads answered 408 (body timeout): {answered}/{args.stalled}")
    finally:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()


if __name__ == "__main__":
    asyncio.run(main())
