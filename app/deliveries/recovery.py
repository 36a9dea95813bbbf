"""List a webhook's recent deliveries (the App's, or in token mode a repository's or organisation's),
and redeliver the ones PAO missed, each at most once."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import asyncpg
import gidgethub

from app import metrics
from app.deliveries.hooks import HookLog
from app.deliveries.select import Candidate, HookDelivery, candidates

log = logging.getLogger(__name__)

# GitHub keeps a webhook's delivery log (App, repository or organisation) for 3 days.
GITHUB_LOG_DAYS = 3
# The first periodic run looks back this far.
FIRST_LOOKBACK = timedelta(hours=1)
# Each run re-reads a little before the previous one's end: GitHub lists a delivery
# once its attempt ends, so one in flight at the last run shows up a moment later.
OVERLAP = timedelta(minutes=5)

RECORDED = """
SELECT DISTINCT delivery_id FROM webhook_events
 WHERE delivery_id = ANY($1::text[]) AND status <> 'failed'
"""
REQUESTED = "SELECT guid FROM delivery_redeliveries WHERE guid = ANY($1::text[])"
CLAIM = """
INSERT INTO delivery_redeliveries (guid, hook_delivery_id, event, action, reason, status_code,
                                   requested_by)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (guid) DO NOTHING
RETURNING guid
"""
CHECKED_UNTIL = "SELECT checked_until FROM delivery_recovery_state"
SET_CHECKED_UNTIL = """
INSERT INTO delivery_recovery_state (id, checked_until) VALUES (true, $1)
ON CONFLICT (id) DO UPDATE SET checked_until = GREATEST(delivery_recovery_state.checked_until,
                                                         EXCLUDED.checked_until),
                               updated_at = now()
"""


@dataclass
class RecoveryReport:
    """What one recovery run saw and did."""

    since: datetime
    scanned: int = 0  # attempts listed
    redelivered: list[Candidate] = field(default_factory=list)
    left_over: int = 0  # candidates beyond the per-run bound, for the next run
    errors: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Every candidate was handled: the next run may start where this one ended."""
        return not self.left_over and not self.errors

    def summary(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat(),
            "scanned": self.scanned,
            "redelivered": [{"guid": c.attempt.guid, "event": c.attempt.event, "reason": c.reason}
                            for c in self.redelivered],
            "left_over": self.left_over,
            "errors": self.errors,
        }


def window_start(checked_until: datetime | None, now: datetime, retention_days: int) -> datetime:
    """Where a periodic run starts listing: just before the last run's end, within GitHub's log.

    Never before PAO's own retention either: a purged delivery would look unrecorded.
    """
    since = now - FIRST_LOOKBACK if checked_until is None else checked_until - OVERLAP
    oldest = now - timedelta(days=min(GITHUB_LOG_DAYS, retention_days))
    return max(since, oldest)


async def list_deliveries(hook: HookLog, since: datetime) -> list[HookDelivery]:
    """The webhook's delivery attempts since ``since`` (GitHub lists newest first, in cursor pages)."""
    found = []
    async for item in hook.deliveries():
        attempt = HookDelivery.from_json(item)
        if attempt.delivered_at < since:
            break
        found.append(attempt)
    return found


async def recover(pool: asyncpg.Pool, hook: HookLog, *, since: datetime, limit: int,
                  requested_by: str, dry_run: bool = False) -> RecoveryReport:
    """Redeliver, oldest first and at most ``limit``, the deliveries since ``since`` PAO missed."""
    report = RecoveryReport(since=since)
    attempts = await list_deliveries(hook, since)
    report.scanned = len(attempts)
    guids = sorted({a.guid for a in attempts})
    recorded = {r["delivery_id"] for r in await pool.fetch(RECORDED, guids)}
    requested = {r["guid"] for r in await pool.fetch(REQUESTED, guids)}
    chosen = candidates(attempts, recorded, requested)
    report.left_over = max(0, len(chosen) - limit)
    for candidate in chosen[:limit]:
        if dry_run:
            report.redelivered.append(candidate)
            continue
        if await _redeliver(pool, hook, candidate, requested_by, report):
            report.redelivered.append(candidate)
    return report


async def _redeliver(pool: asyncpg.Pool, hook: HookLog, candidate: Candidate,
                     requested_by: str, report: RecoveryReport) -> bool:
    attempt = candidate.attempt
    try:
        # The claim row and the request go together: if GitHub refuses, the row is
        # rolled back and a later run may try again; while the row is being written,
        # a concurrent run waits on it and then skips this delivery.
        async with pool.acquire() as conn, conn.transaction():
            claimed = await conn.fetchval(CLAIM, attempt.guid, attempt.id, attempt.event,
                                          attempt.action, candidate.reason, attempt.status_code,
                                          requested_by)
            if claimed is None:
                return False
            await hook.redeliver(attempt.id)
    except (gidgethub.GitHubException, aiohttp.ClientError, TimeoutError) as exc:
        report.errors.append(f"delivery {attempt.guid} ({attempt.event}): "
                             f"{type(exc).__name__}: {exc}")
        log.warning("could not redeliver %s (%s): %s", attempt.guid, attempt.event, exc)
        return False
    metrics.REDELIVERIES.labels(candidate.reason).inc()
    log.info("asked GitHub to redeliver %s (%s, %s: last status %s)", attempt.guid,
             attempt.event, candidate.reason, attempt.status_code or attempt.status)
    return True


async def periodic_run(pool: asyncpg.Pool, hook: HookLog, *, limit: int,
                       retention_days: int, now: datetime | None = None) -> RecoveryReport:
    """One scheduled run: from just before the last run's end; moves the mark when complete."""
    now = now or datetime.now(UTC)
    since = window_start(await pool.fetchval(CHECKED_UNTIL), now, retention_days)
    report = await recover(pool, hook, since=since, limit=limit, requested_by="periodic")
    if report.complete:
        await pool.execute(SET_CHECKED_UNTIL, now)
    return report
