"""What PAO does when a catalog sync or a mirror sync ends: record metrics (and notify).

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

log = logging.getLogger(__name__)

TaskFn = Callable[..., Awaitable[Any]]


def final_failure(ctx: JobContext, exc: BaseException) -> bool:
    """No attempt will follow this one."""
    return isinstance(exc, PermanentJobError) or ctx.last_attempt


async def sync_ended(ctx: JobContext, summary: dict[str, Any], seconds: float) -> None:
    metrics.observe_sync(str(summary.get("status", "completed")), seconds,
                         files=int(summary.get("files_changed") or 0), mode=str(summary.get("mode", "")),
                         errors=int(summary.get("errors") or 0))


async def sync_failed(ctx: JobContext, exc: Exception, seconds: float) -> None:
    metrics.observe_sync("failed" if final_failure(ctx, exc) else "retry", seconds)


async def mirror_ended(ctx: JobContext, result: dict[str, Any], seconds: float) -> None:
    metrics.observe_mirror("skipped" if "skipped" in result else "succeeded", seconds)


async def mirror_failed(ctx: JobContext, exc: Exception, seconds: float, args: dict[str, Any]) -> None:
    metrics.observe_mirror("failed" if final_failure(ctx, exc) else "retry", seconds)


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


async def _sync_failed(ctx: JobContext, exc: Exception, seconds: float, kwargs: dict[str, Any]) -> None:
    await sync_failed(ctx, exc, seconds)


watch_sync = _watch(sync_ended, _sync_failed)
watch_mirror = _watch(mirror_ended, mirror_failed)
