"""``pao requests list | show ID | cancel ID | retry ID STEP | complete ID STEP [--output K=V]``.

Operator commands on the database, acting as the ``cli`` user with an admin's rights.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

ACTOR = "cli"


def _outputs(pairs: list[str], raw: str | None) -> dict[str, Any]:
    outputs: dict[str, Any] = json.loads(raw) if raw else {}
    if not isinstance(outputs, dict):
        raise ValueError("--outputs-json must be a JSON object")
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--output takes NAME=VALUE, got {pair!r}")
        outputs[key] = value
    return outputs


async def _cmd(args: argparse.Namespace) -> int:
    from app import service
    from app.cli import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE, load_settings
    from app.requests import executor, store, views

    settings = load_settings()
    async with service.runtime(settings) as rt:
        if args.requests_command == "list":
            rows = await store.list_requests(rt.pool, filters={
                "status": args.status, "item": args.item, "bundle": args.bundle,
                "requester": args.requester, "team": args.team}, visible_to=None, before=None,
                limit=args.limit)
            if args.json:
                print(json.dumps([views.summary(r) for r in rows], indent=2, default=str))
                return EXIT_OK
            for r in rows:
                target = r["catalog_bundle"] or r["catalog_item"]
                print(f"{r['request_id']:<22} {r['status']:<15} {target:<28} "
                      f"{r['requester_user_id']:<16} {r['created_at']:%Y-%m-%d %H:%M}")
            return EXIT_OK
        row = await store.get_request(rt.pool, args.id)
        if row is None:
            print(f"pao: no request {args.id!r}", file=sys.stderr)
            return EXIT_FINDINGS
        try:
            if args.requests_command == "cancel":
                await executor.cancel_request(rt.pool, row["id"], ACTOR, settings=rt.settings)
            elif args.requests_command == "retry":
                await executor.retry_step(rt.pool, row["id"], args.step, ACTOR, settings=rt.settings)
            elif args.requests_command == "complete":
                try:
                    outputs = _outputs(args.output, args.outputs_json)
                except ValueError as exc:
                    print(f"pao: {exc}", file=sys.stderr)
                    return EXIT_USAGE
                await executor.complete_step(rt.pool, row["id"], args.step, outputs, ACTOR,
                                            settings=rt.settings)
        except LookupError:
            print(f"pao: request {args.id} has no step {args.step!r}", file=sys.stderr)
            return EXIT_FINDINGS
        except (executor.TransitionError, ValueError) as exc:
            print(f"pao: {exc}", file=sys.stderr)
            return EXIT_FINDINGS
        row = await store.get_request(rt.pool, args.id)
        detail = views.detail(row, await store.get_steps(rt.pool, row["id"]))
        if args.requests_command == "show" and args.json:
            print(json.dumps(detail, indent=2, default=str))
            return EXIT_OK
        print(f"{detail['request_id']}  {detail['status']}  "
              f"{row['catalog_bundle'] or row['catalog_item']} {detail['version']}  "
              f"for {detail['requester']['user_id']}")
        for s in detail["fulfillment"]["steps"]:
            extra = s["error"]["message"] if s["error"] and s["status"] == "failed" else (
                (s["job_tracking"] or {}).get("tracking_url") or "")
            print(f"  {s['step_id']:<48} {s['type']:<15} {s['status']:<15} {extra}")
        if detail["outputs"]:
            print(json.dumps(detail["outputs"], indent=2))
        return EXIT_OK


def add_commands(sub: Any) -> None:
    from app.cli import whole_number

    p = sub.add_parser("requests", help="service requests: list, show, cancel, retry, complete")
    rsub = p.add_subparsers(dest="requests_command", metavar="ACTION", required=True)
    q = rsub.add_parser("list", help="recent requests, newest first")
    for name in ("status", "item", "bundle", "requester", "team"):
        q.add_argument(f"--{name}")
    q.add_argument("--limit", type=whole_number(1, 10_000), default=50)
    q.add_argument("--json", action="store_true")
    q = rsub.add_parser("show", help="one request with its steps")
    q.add_argument("id")
    q.add_argument("--json", action="store_true")
    q = rsub.add_parser("cancel", help="cancel a request that has not ended")
    q.add_argument("id")
    q = rsub.add_parser("retry", help="run a failed step again")
    q.add_argument("id")
    q.add_argument("step")
    q = rsub.add_parser("complete", help="mark a step done by hand, with its outputs")
    q.add_argument("id")
    q.add_argument("step")
    q.add_argument("--output", action="append", default=[], metavar="NAME=VALUE")
    q.add_argument("--outputs-json", metavar="JSON", help="all outputs as one JSON object")
    p.set_defaults(func=_cmd)
