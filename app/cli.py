"""The ``pao`` / ``pao-cli`` command line.

Feature modules add their own subcommands: each module in ``COMMAND_MODULES``
has ``add_commands(subparsers)`` and sets ``func`` (a function taking the parsed
args, returning an exit code or an awaitable of one) on each parser it adds.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import json
import sys
from collections.abc import Sequence
from typing import Any

from app import __version__
from app.config import ConfigError, Settings, StartupError

# Modules that add subcommands; composed here.
COMMAND_MODULES: tuple[str, ...] = (
    "app.catalog.cli", "app.sync.commands", "app.mirror.cli", "app.requests.cli",
    "app.deliveries.cli", "app.doctor",
)

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2


def load_settings() -> Settings:
    """Settings from the environment, or exit 2 with every problem listed."""
    try:
        return Settings.from_env()
    except ConfigError as exc:
        print(f"pao: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE) from None


def run_service(coro: Any) -> None:
    """Run a long-lived service coroutine on uvloop (a faster event loop) when available."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(coro)
    else:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(coro)


def _setup_logging(settings: Settings) -> None:
    from app.log import setup_logging

    setup_logging(settings.log_level, settings.log_format)


# -- service commands ---------------------------------------------------------

def cmd_serve(args: argparse.Namespace) -> int:
    from app import service

    settings = load_settings()
    if args.port is not None:
        settings = _replace(settings, port=args.port)
    if args.host is not None:
        settings = _replace(settings, host=args.host)
    _setup_logging(settings)
    if args.child:
        # Started by `pao serve` with its settings: serve, nothing else.
        run_service(service.serve(settings, with_workers=False, child=True))
        return EXIT_OK
    from app.sync import demo  # with no PAO_REPO_URL, serve the example catalog

    service.ensure_data_dir(settings)  # before the example catalog is written into it
    settings, on_ready = demo.prepare(settings)
    run_service(service.serve(settings, with_workers=not args.no_workers, on_ready=on_ready))
    return EXIT_OK


def cmd_worker(args: argparse.Namespace) -> int:
    from app import service

    settings = load_settings()
    _setup_logging(settings)
    run_service(service.work(settings, args.concurrency, child=args.child))
    return EXIT_OK


async def cmd_migrate(args: argparse.Namespace) -> int:
    from app import db

    settings = load_settings()
    _setup_logging(settings)
    async with db.database_url(settings) as dsn, db.naming_the_database(settings):
        conn = await db.connect(dsn)
        try:
            applied = await db.migrate(conn)
        finally:
            await conn.close()
    if applied:
        for m in applied:
            print(f"applied {m.version:03d}_{m.name}")
    else:
        print("database is up to date")
    return EXIT_OK


# -- jobs ---------------------------------------------------------------------

async def cmd_jobs(args: argparse.Namespace) -> int:
    from app import service
    from app.jobs import queries

    settings = load_settings()
    async with service.runtime(settings) as rt:
        if args.jobs_command == "list":
            rows = await rt.pool.fetch(queries.LIST, args.status, args.task, args.limit)
            if args.json:
                print(json.dumps([dict(r) for r in rows], default=str, indent=2))
                return EXIT_OK
            counts = {r["status"]: r["n"] for r in await rt.pool.fetch(queries.COUNTS)}
            print("  ".join(f"{k}={v}" for k, v in sorted(counts.items())) or "no jobs")
            for r in rows:
                error = f"  {r['last_error'][:80]}" if r["last_error"] else ""
                print(f"{r['id']:>7}  {r['status']:<9} {r['task']:<22} "
                      f"{r['attempts']}/{r['max_attempts']}  {r['created_at']:%Y-%m-%d %H:%M:%S}"
                      f"{error}")
            return EXIT_OK
        if args.jobs_command == "show":
            job = await rt.pool.fetchrow(queries.GET, args.id)
            if job is None:
                print(f"pao: no job {args.id}", file=sys.stderr)
                return EXIT_FINDINGS
            attempts = await rt.pool.fetch(queries.ATTEMPTS, args.id)
            print(json.dumps({**dict(job), "attempt_log": [dict(a) for a in attempts]},
                             default=str, indent=2))
            return EXIT_OK
        if args.jobs_command == "retry":
            ids = args.ids or []
            if args.all_failed:
                ids = [r["id"] for r in await rt.pool.fetch(queries.FAILED_IDS)]
            if not ids:
                print("pao: name job ids or pass --all-failed", file=sys.stderr)
                return EXIT_USAGE
            return await _each(rt, ids, queries.RETRY_FAILED, "queued again",
                               "is not failed or cancelled")
        if args.jobs_command == "requeue":
            return await _each(rt, args.ids, queries.RUN_NOW, "due now", "is not waiting")
    return EXIT_USAGE


async def _each(rt: Any, ids: list[int], query: str, ok: str, not_ok: str) -> int:
    import asyncpg

    code = EXIT_OK
    for job_id in ids:
        try:
            done = await rt.pool.fetchval(query, job_id)
        except asyncpg.UniqueViolationError:
            print(f"job {job_id}: an identical job is already waiting", file=sys.stderr)
            code = EXIT_FINDINGS
            continue
        if done is None:
            print(f"job {job_id}: {not_ok}", file=sys.stderr)
            code = EXIT_FINDINGS
        else:
            print(f"job {job_id}: {ok}")
    return code


# -- tokens -------------------------------------------------------------------

async def cmd_token(args: argparse.Namespace) -> int:
    from app import service
    from app.api.auth import create_token, revoke_token

    settings = load_settings()
    async with service.runtime(settings) as rt:
        if args.token_command == "create":
            token_id, token = await create_token(
                rt.pool, user_id=args.user, team=args.team, is_admin=args.admin,
                description=args.description, email=args.email,
            )
            print(f"token {token_id} for {args.user}{' (admin)' if args.admin else ''}:",
                  file=sys.stderr)
            print(token)
            return EXIT_OK
        if args.token_command == "revoke":
            if await revoke_token(rt.pool, args.id):
                print(f"token {args.id} revoked")
                return EXIT_OK
            print(f"pao: no active token {args.id}", file=sys.stderr)
            return EXIT_FINDINGS
        if args.token_command == "list":
            rows = await rt.pool.fetch(
                "SELECT id, prefix, user_id, team, is_admin, created_at, last_used_at, revoked_at"
                " FROM api_tokens ORDER BY id")
            for r in rows:
                state = "revoked" if r["revoked_at"] else "active"
                print(f"{r['id']:>5}  {r['prefix']}…  {r['user_id']:<16} {r['team'] or '-':<16}"
                      f" {'admin' if r['is_admin'] else 'user ':<5}  {state}")
            return EXIT_OK
    return EXIT_USAGE


# -- parser -------------------------------------------------------------------

def _replace(settings: Settings, **changes: Any) -> Settings:
    import dataclasses

    return dataclasses.replace(settings, **changes)


# PostgreSQL's bigint: a larger id names no row, and asyncpg refuses it with a traceback.
MAX_ID = 2**63 - 1


def whole_number(minimum: int, maximum: int) -> Any:
    """An argparse type: a whole number from ``minimum`` to ``maximum``, else a usage error."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if not minimum <= value <= maximum:
            raise argparse.ArgumentTypeError(f"must be from {minimum} to {maximum}, got {value}")
        return value
    return parse


_row_id = whole_number(1, MAX_ID)
_limit = whole_number(1, 10_000)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pao", description="PAO: the platform catalog GitHub App.",
    )
    parser.add_argument("--version", action="version", version=f"pao {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("serve", help="run the web server (PAO_WEB_PROCESSES processes) "
                                     "and workers")
    p.add_argument("--host", help="listen address (default PAO_HOST or 127.0.0.1)")
    p.add_argument("--port", type=whole_number(0, 65535), help="listen port (default PAO_PORT or 8000)")
    p.add_argument("--no-workers", action="store_true", help="web server only")
    # Internal: a process started by `pao serve` itself (app/supervisor.py).
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("worker", help="run job workers only")
    p.add_argument("--concurrency", type=whole_number(1, 256),
                   help="jobs at a time (default PAO_WORKERS)")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("migrate", help="apply database migrations")
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser("jobs", help="inspect and retry queued jobs")
    jobs_sub = p.add_subparsers(dest="jobs_command", metavar="ACTION", required=True)
    q = jobs_sub.add_parser("list", help="recent jobs")
    q.add_argument("--status", choices=["todo", "doing", "succeeded", "failed", "cancelled"])
    q.add_argument("--task")
    q.add_argument("--limit", type=_limit, default=50)
    q.add_argument("--json", action="store_true")
    q = jobs_sub.add_parser("show", help="one job with its attempts")
    q.add_argument("id", type=_row_id)
    q = jobs_sub.add_parser("retry", help="queue failed jobs again")
    q.add_argument("ids", type=_row_id, nargs="*")
    q.add_argument("--all-failed", action="store_true")
    q = jobs_sub.add_parser("requeue", help="run waiting jobs now, skipping their backoff")
    q.add_argument("ids", type=_row_id, nargs="+")
    p.set_defaults(func=cmd_jobs)

    p = sub.add_parser("token", help="manage REST API tokens")
    tok_sub = p.add_subparsers(dest="token_command", metavar="ACTION", required=True)
    q = tok_sub.add_parser("create", help="create a token (printed once)")
    q.add_argument("--user", required=True)
    q.add_argument("--team")
    q.add_argument("--email", help="the user's address (service requests notify it)")
    q.add_argument("--admin", action="store_true")
    q.add_argument("--description")
    q = tok_sub.add_parser("revoke", help="revoke a token by id")
    q.add_argument("id", type=_row_id)
    tok_sub.add_parser("list", help="list tokens (never their values)")
    p.set_defaults(func=cmd_token)

    for name in COMMAND_MODULES:
        importlib.import_module(name).add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        result = args.func(args)
        if inspect.isawaitable(result):
            result = asyncio.run(result)
    except KeyboardInterrupt:
        return 130
    except ConfigError as exc:  # found at start, after the environment (the data dir's key file)
        print(f"pao: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except StartupError as exc:
        print(f"pao: {exc}", file=sys.stderr)
        return EXIT_FINDINGS
    return int(result or 0)


if __name__ == "__main__":
    raise SystemExit(main())
