"""``pao mirror add OWNER/REPO | sync-stars | list``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from app.mirror.config import OFF_REASON


async def _cmd(args: argparse.Namespace) -> int:
    from app import service
    from app.cli import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE, load_settings
    from app.mirror import manual, stars, store
    from app.mirror.config import mirror_settings

    settings = load_settings()
    ms = mirror_settings(settings)
    if args.mirror_command in ("add", "sync-stars") and not ms.enabled:
        print(f"pao: {OFF_REASON}", file=sys.stderr)
        return EXIT_USAGE
    async with service.runtime(settings) as rt:
        if args.mirror_command == "add":
            try:
                decision, row = await manual.add(rt.pool, rt.github, args.repository)
            except manual.AddError as exc:
                print(f"pao: {exc}", file=sys.stderr)
                return EXIT_FINDINGS
            print(f"{row['github_full_name']}: {decision.message}"
                  + (f" (job {decision.job_id})" if decision.job_id else ""))
            return EXIT_OK
        if args.mirror_command == "sync-stars":
            if not ms.users:
                print("pao: PAO_MIRROR_USERS is empty: name the GitHub users whose stars to mirror",
                      file=sys.stderr)
                return EXIT_USAGE
            for result in await stars.poll_all(rt.pool, rt.github, ms):
                print(f"{result.user}: {result.stars} stars, {len(result.queued)} queued"
                      f"{': ' + ', '.join(result.queued) if result.queued else ''}, "
                      f"{len(result.unstarred)} unstarred")
            return EXIT_OK
        rows: list[Any] = []
        after = 0
        while True:
            batch = await store.page(rt.pool, status=args.status, after_id=after, limit=500)
            rows.extend(batch)
            if len(batch) < 500:
                break
            after = batch[-1]["id"]
        if args.json:
            print(json.dumps([store.public_view(r) for r in rows], default=str, indent=2))
            return EXIT_OK
        for r in rows:
            synced = f"{r['last_synced_at']:%Y-%m-%d %H:%M}" if r["last_synced_at"] else "never"
            error = f"  {r['error_message'][:80]}" if r["error_message"] else ""
            print(f"{r['github_full_name']:<40} {r['sync_status']:<11} {synced:<16} "
                  f"{r['onedev_project_path'] or '-'}{error}")
        return EXIT_OK


def add_commands(sub: Any) -> None:
    p = sub.add_parser("mirror", help="mirror starred GitHub repositories into OneDev")
    msub = p.add_subparsers(dest="mirror_command", metavar="ACTION", required=True)
    q = msub.add_parser("add", help="mirror one repository now")
    q.add_argument("repository", metavar="OWNER/REPO")
    msub.add_parser("sync-stars", help="poll PAO_MIRROR_USERS' stars once and mirror new ones")
    q = msub.add_parser("list", help="mirrors and their status")
    q.add_argument("--status", choices=["pending", "in_progress", "completed", "failed"])
    q.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd)
