"""``pao sync``: force a full reconcile of the catalog and (by default) wait for it."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2


async def cmd_sync(args: argparse.Namespace) -> int:
    from app import service
    from app.cli import _setup_logging, load_settings
    from app.jobs import TASKS
    from app.jobs.worker import Worker
    from app.sync.source import catalog_source
    from app.sync.tasks import TASK, queue_sync

    settings = load_settings()
    _setup_logging(settings)
    source = catalog_source(settings)
    if source is None:
        print("pao: PAO_REPO_URL is not set; there is no catalog repository to sync", file=sys.stderr)
        return EXIT_USAGE
    async with service.runtime(settings) as rt:
        job_id = await queue_sync(rt.pool, source, triggered_by="manual", full=True)
        print(f"catalog sync queued (job {job_id})", file=sys.stderr)
        if args.no_wait:
            return EXIT_OK
        # Run it here unless a running `pao serve`/`pao worker` takes it first.
        worker = Worker(rt.pool, rt.dsn, settings, rt.github, rt.http, concurrency=1,
                        tasks={TASK: TASKS[TASK]})
        deadline = time.monotonic() + args.timeout
        while True:
            job = await rt.pool.fetchrow("SELECT status, result, last_error FROM jobs WHERE id = $1", job_id)
            if job["status"] in ("succeeded", "failed", "cancelled"):
                break
            if time.monotonic() > deadline:
                print(f"pao: job {job_id} still {job['status']} after {args.timeout:.0f}s", file=sys.stderr)
                return EXIT_FINDINGS
            if job["status"] != "todo" or not await worker.run_one():
                await asyncio.sleep(0.5)
        return _report(job)


def _report(job: Any) -> int:
    if job["status"] != "succeeded":
        print(f"pao: sync {job['status']}: {job['last_error']}", file=sys.stderr)
        return EXIT_FINDINGS
    result = job["result"] or {}
    print(json.dumps(result, indent=2))
    return EXIT_FINDINGS if result.get("status") == "completed_with_errors" else EXIT_OK


def add_commands(sub: Any) -> None:
    p = sub.add_parser("sync", help="force a full reconcile of the catalog from git")
    p.add_argument("--no-wait", action="store_true", help="queue the sync and return")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds to wait (default 600)")
    p.set_defaults(func=cmd_sync)
