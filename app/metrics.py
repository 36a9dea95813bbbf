"""Prometheus metrics: the families and the one-line hooks the rest of PAO calls.

Counters and histograms live in each process (``pao serve``, every ``pao worker``);
queue gauges are read from the database at scrape time, so any process reports the
whole queue. This module imports nothing of PAO's, so any module may call its hooks;
``app.metrics_endpoint`` serves them.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

_FAST = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_SLOW = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0, 1800.0, 3600.0)

DELIVERIES = Counter("pao_webhook_deliveries_total",
                     "Webhook deliveries answered, by event and stored status", ["event", "status"])
ACK_SECONDS = Histogram("pao_webhook_ack_seconds",
                        "Time from a delivery's arrival to its answer (stored and committed)",
                        buckets=_FAST)
QUEUE_WAITING = Gauge("pao_jobs_waiting", "Jobs waiting (due or scheduled), by task", ["task"])
QUEUE_DUE = Gauge("pao_jobs_due", "Jobs due now and not yet claimed, by task", ["task"])
QUEUE_OLDEST = Gauge("pao_jobs_oldest_due_seconds",
                     "Age of the oldest job that is due and not claimed, by task", ["task"])
QUEUE_RUNNING = Gauge("pao_jobs_running", "Jobs running, by task", ["task"])
JOB_SECONDS = Histogram("pao_job_duration_seconds",
                        "Job attempts by task and outcome (succeeded, retry, failed, superseded)",
                        ["task", "outcome"], buckets=_SLOW)
SYNC_SECONDS = Histogram("pao_catalog_sync_duration_seconds", "Catalog syncs by outcome",
                         ["outcome"], buckets=_SLOW)
SYNC_FILES = Counter("pao_catalog_sync_files_total", "Catalog files a sync read", ["mode"])
SYNC_ERRORS = Counter("pao_catalog_sync_file_errors_total", "Catalog files a sync refused")
MIRROR_SECONDS = Histogram("pao_mirror_sync_duration_seconds", "Mirror syncs by outcome",
                           ["outcome"], buckets=_SLOW)
REQUEST_SECONDS = Histogram("pao_service_request_duration_seconds",
                            "Service requests from creation to their final status, by outcome",
                            ["outcome"], buckets=_SLOW)
REQUESTS_SUBMITTED = Counter("pao_service_requests_submitted_total", "Service requests submitted")
REQUEST_STEP_SECONDS = Histogram("pao_service_request_step_duration_seconds",
                                 "Service request fulfillment steps, by step and outcome",
                                 ["step", "outcome"], buckets=_SLOW)
WEBHOOK_ANSWERS = Counter("pao_webhook_answers_total",
                          "Every answer the webhook endpoint gave, by HTTP status code", ["code"])
# The codes intake answers with (docs/ARCHITECTURE.md), each its own series from the start so
# rate() sees the first one; anything else is "other", so the label set stays bounded.
_ANSWER_CODES = (200, 202, 400, 401, 408, 413, 415, 500)
_ANSWERS = {code: WEBHOOK_ANSWERS.labels(str(code)) for code in _ANSWER_CODES}
_OTHER_ANSWER = WEBHOOK_ANSWERS.labels("other")
REDELIVERIES = Counter("pao_webhook_redeliveries_total",
                       "Redeliveries PAO asked GitHub for, by reason", ["reason"])
NOTIFICATIONS = Counter("pao_notifications_total",
                        "Notification sends by channel kind and outcome", ["kind", "outcome"])

# -- hooks (one call each at the place the thing happens) ----------------------


def observe_delivery(event: str, status: str, started: float) -> None:
    """A delivery was answered; ``started`` is its ``time.perf_counter()`` at arrival."""
    DELIVERIES.labels(event, status).inc()
    ACK_SECONDS.observe(time.perf_counter() - started)


def count_webhook_answer(status: int) -> None:
    """The webhook endpoint answered ``status`` (every answer, stored or not)."""
    _ANSWERS.get(status, _OTHER_ANSWER).inc()


def observe_job(task: str, outcome: str, started: datetime) -> None:
    """A job attempt ended with ``outcome``; ``started`` is the attempt's aware start time."""
    elapsed = (datetime.now(started.tzinfo) - started).total_seconds()
    JOB_SECONDS.labels(task, outcome).observe(max(elapsed, 0.0))


def observe_sync(outcome: str, seconds: float, files: int = 0, mode: str = "", errors: int = 0) -> None:
    SYNC_SECONDS.labels(outcome).observe(seconds)
    if files:
        SYNC_FILES.labels(mode or "unknown").inc(files)
    if errors:
        SYNC_ERRORS.inc(errors)


def observe_mirror(outcome: str, seconds: float) -> None:
    MIRROR_SECONDS.labels(outcome).observe(seconds)


def observe_request_submitted() -> None:
    """A service request was stored (after its transaction committed)."""
    REQUESTS_SUBMITTED.inc()


def observe_request(outcome: str, seconds: float) -> None:
    """A request reached ``completed``, ``failed`` or ``cancelled``; ``seconds`` since it was created."""
    REQUEST_SECONDS.labels(outcome).observe(seconds)


def observe_request_step(step: str, outcome: str, seconds: float) -> None:
    """A fulfillment step ended (``step``: its type, never a name; ``outcome``: its final status)."""
    REQUEST_STEP_SECONDS.labels(step, outcome).observe(seconds)


# -- queue gauges, read at scrape time -----------------------------------------

QUEUE_STATS = """
SELECT task,
       count(*) FILTER (WHERE status = 'todo') AS waiting,
       count(*) FILTER (WHERE status = 'todo' AND scheduled_at <= now()) AS due,
       count(*) FILTER (WHERE status = 'doing') AS running,
       coalesce(extract(epoch FROM now() - min(scheduled_at)
                FILTER (WHERE status = 'todo' AND scheduled_at <= now())), 0)::float8 AS oldest
  FROM jobs WHERE status IN ('todo', 'doing')
 GROUP BY task
"""


async def refresh_queue_gauges(pool: Any, task_names: Iterable[str]) -> None:
    """Set the queue gauges from the jobs table; every task named reports, idle ones as 0."""
    rows = {r["task"]: r for r in await pool.fetch(QUEUE_STATS)}
    for name in sorted(set(task_names) | set(rows)):
        row = rows.get(name)
        QUEUE_WAITING.labels(name).set(row["waiting"] if row else 0)
        QUEUE_DUE.labels(name).set(row["due"] if row else 0)
        QUEUE_RUNNING.labels(name).set(row["running"] if row else 0)
        QUEUE_OLDEST.labels(name).set(row["oldest"] if row else 0)
