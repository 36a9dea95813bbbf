"""``pao deliveries recover [--since 2h] [--max N] [--dry-run]``."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta
from typing import Any


def _duration(text: str) -> float:
    from app.config import EnvReader

    reader = EnvReader({"--since": text})
    seconds = reader.duration("--since", 0.0)
    if reader.problems:
        raise argparse.ArgumentTypeError(reader.problems[0].removeprefix("--since: "))
    return seconds


async def _cmd(args: argparse.Namespace) -> int:
    from app import service
    from app.cli import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE, load_settings
    from app.deliveries.config import recovery_settings
    from app.deliveries.hooks import HookNotFound, resolve
    from app.deliveries.recovery import GITHUB_LOG_DAYS, recover

    settings = load_settings()
    limit = args.max or recovery_settings(settings).max_per_run
    since = datetime.now(UTC) - timedelta(seconds=min(args.since, GITHUB_LOG_DAYS * 86400))
    async with service.runtime(settings) as rt:
        try:
            hook = await resolve(rt.settings, rt.github)
        except HookNotFound as exc:
            print(f"pao: {exc}", file=sys.stderr)
            return EXIT_USAGE
        if hook is None:
            print("pao: no webhook log to read: set PAO_APP_ID and PAO_PRIVATE_KEY (App mode, or "
                  "register the App at /setup), or PAO_REPO_TOKEN with a GitHub PAO_REPO_URL or "
                  "PAO_DELIVERY_HOOK (token mode)", file=sys.stderr)
            return EXIT_USAGE
        report = await recover(rt.pool, hook, since=since, limit=limit, requested_by="cli",
                               dry_run=args.dry_run)
    print(f"webhook: {hook.name}")
    verb = "would redeliver" if args.dry_run else "redelivered"
    for c in report.redelivered:
        print(f"{verb} {c.attempt.guid}  {c.attempt.event:<20} {c.reason} "
              f"(last status {c.attempt.status_code or c.attempt.status})")
    print(f"{report.scanned} attempts since {since:%Y-%m-%d %H:%M:%S} UTC; "
          f"{len(report.redelivered)} {verb}"
          + (f"; {report.left_over} more over --max {limit}" if report.left_over else ""))
    for problem in report.errors:
        print(f"pao: {problem}", file=sys.stderr)
    return EXIT_FINDINGS if report.errors else EXIT_OK


def add_commands(sub: Any) -> None:
    from app.cli import MAX_ID, whole_number

    p = sub.add_parser("deliveries", help="GitHub webhook deliveries PAO missed")
    dsub = p.add_subparsers(dest="deliveries_command", metavar="ACTION", required=True)
    q = dsub.add_parser("recover", help="ask GitHub to redeliver failed or unrecorded deliveries")
    q.add_argument("--since", type=_duration, default=7200.0,
                   help="how far back to look: 90m, 2h, 1d (default 2h; GitHub keeps 3 days)")
    q.add_argument("--max", type=whole_number(1, MAX_ID),
                   help="redeliveries at most (default PAO_DELIVERY_RECOVERY_MAX)")
    q.add_argument("--dry-run", action="store_true", help="list what would be redelivered")
    p.set_defaults(func=_cmd)
