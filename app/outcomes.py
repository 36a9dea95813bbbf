"""What PAO does when a catalog sync or a mirror sync ends: record metrics, and notify.

Notified: a sync that completed with errors, a sync that failed for good (no attempt
follows), a mirror that failed for good. Retried attempts are only counted.

The two job functions are wrapped (``@watch_sync``, ``@watch_mirror``, one line at each
task) so the sync and mirror code stays as it is. Nothing here can fail the job it
watches: its own errors are logged and dropped.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from app import metrics
from app.jobs import JobContext, PermanentJobError
from app.log import scrub
from app.notify import Notification, enabled, notify

log = logging.getLogger(__name__)

TaskFn = Callable[..., Awaitable[Any]]


def final_failure(ctx: JobContext, exc: BaseException) -> bool:
    """No attempt will follow this one."""
    return isinstance(exc, PermanentJobError) or ctx.last_attempt


def _catalog(ctx: JobContext) -> str:
    return ctx.settings.repo_url or "the example catalog"


async def sync_ended(ctx: JobContext, summary: dict[str, Any], seconds: float) -> None:
    status = str(summary.get("status", "completed"))
    errors = int(summary.get("errors") or 0)
    metrics.observe_sync(status, seconds, files=int(summary.get("files_changed") or 0),
                         mode=str(summary.get("mode", "")), errors=errors)
    if status == "completed_with_errors" and enabled(ctx.settings):
        await notify(ctx.pool, ctx.settings, Notification(
            "sync.completed_with_errors", "Catalog sync completed with errors",
            f"{errors} catalog file(s) failed validation and kept their previous version.",
            {"repository": _catalog(ctx), "branch": ctx.settings.repo_branch,
             "commit": str(summary.get("to_sha") or "")[:12], "run": str(summary.get("run_id")),
             "see": f"GET /api/v1/sync/runs/{summary.get('run_id')}"}))


async def sync_failed(ctx: JobContext, exc: Exception, seconds: float, args: dict[str, Any]) -> None:
    final = final_failure(ctx, exc)
    metrics.observe_sync("failed" if final else "retry", seconds)
    if final and enabled(ctx.settings):
        await notify(ctx.pool, ctx.settings, Notification(
            "sync.failed", "Catalog sync failed", scrub(str(exc))[:1000],
            {"repository": _catalog(ctx), "branch": ctx.settings.repo_branch,
             "job": str(ctx.job_id), "attempts": f"{ctx.attempt}/{ctx.max_attempts}",
             "retry": f"pao jobs retry {ctx.job_id}"}))


async def mirror_ended(ctx: JobContext, result: dict[str, Any], seconds: float) -> None:
    metrics.observe_mirror("skipped" if "skipped" in result else "succeeded", seconds)


async def mirror_failed(ctx: JobContext, exc: Exception, seconds: float, args: dict[str, Any]) -> None:
    final = final_failure(ctx, exc)
    metrics.observe_mirror("failed" if final else "retry", seconds)
    if final and enabled(ctx.settings):
        from app.mirror import store

        row = await store.get(ctx.pool, int(args.get("repository_id") or 0))
        name = row["github_full_name"] if row is not None else None
        await notify(ctx.pool, ctx.settings, Notification(
            "mirror.failed", f"Mirror of {name or 'a repository'} failed", scrub(str(exc))[:1000],
            {"repository": str(name), "job": str(ctx.job_id),
             "attempts": f"{ctx.attempt}/{ctx.max_attempts}",
             "retry": f"POST /api/v1/mirrors/{name}/sync" if name else f"pao jobs retry {ctx.job_id}"}))


def _watch(ended: Callable[..., Awaitable[None]], failed: Callable[..., Awaitable[None]]
           ) -> Callable[[TaskFn], TaskFn]:
    def decorate(fn: TaskFn) -> TaskFn:
        @functools.wraps(fn)
        async def watched(ctx: JobContext, *args: Any, **kwargs: Any) -> Any:
            started = time.monotonic()
            try:
                result = await fn(ctx, *args, **kwargs)
            except Exception as exc:
                await _safely(failed, ctx, exc, time.monotonic() - started, kwargs)
                raise
            await _safely(ended, ctx, result if isinstance(result, dict) else {},
                          time.monotonic() - started)
            return result

        return watched

    return decorate


async def _safely(hook: Callable[..., Awaitable[None]], *args: Any) -> None:
    try:
        await hook(*args)
    except Exception:
        log.warning("outcome hook %s failed", hook.__name__, exc_info=True)


watch_sync = _watch(sync_ended, sync_failed)
watch_mirror = _watch(mirror_ended, mirror_failed)
