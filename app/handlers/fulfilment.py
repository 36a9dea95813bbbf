"""``workflow_run`` completed and ``pull_request`` closed: wake the request steps waiting on them.

``GitHubWorkflow`` and ``TerraformFile`` steps wait on a workflow run or a pull request
(``job_tracking``); these deliveries run the waiting step's check now instead of at its
next poll. The step's job reads the outcome from GitHub itself, so a forged or replayed
delivery can only make PAO look early.
"""

from __future__ import annotations

from typing import Any

from gidgethub import routing
from gidgethub.sansio import Event

from app.intake import Intake, require
from app.requests.executor import wake_step

router = routing.Router()

_WAITING = "status = 'running' AND step_type IN ('GitHubWorkflow', 'TerraformFile')"


async def _wake(intake: Intake, what: str, condition: str, *args: Any) -> int:
    """Wake the waiting steps whose ``job_tracking`` meets ``condition``; how many."""
    conn = await intake.connection()
    rows = await conn.fetch(f"SELECT id FROM request_steps WHERE {_WAITING} AND {condition}", *args)
    for row in rows:
        job_id = await wake_step(conn, row["id"], intake.delivery_id)
        if job_id not in intake.job_ids:
            intake.job_ids.append(job_id)
    if rows:
        intake.handled(f"{what}: woke {len(rows)} request step(s)")
    return len(rows)


@router.register("workflow_run", action="completed")
async def workflow_run_completed(event: Event, gh: Any, *args: Any, intake: Intake, **kwargs: Any) -> None:
    run_id = require(event.data, "workflow_run.id", int)
    head_sha = require(event.data, "workflow_run.head_sha", str)
    repository = require(event.data, "repository.full_name", str)
    woken = await _wake(
        intake, f"workflow run {run_id}",
        """(job_tracking->>'run_id' = $1
            OR (job_tracking->>'applied_sha' = $2
                AND lower(job_tracking->>'apply_repository') = lower($3)))""",
        str(run_id), head_sha, repository)
    if not woken:
        intake.ignore(f"no request step waits on workflow run {run_id}")


@router.register("pull_request", action="closed")
async def pull_request_closed(event: Event, gh: Any, *args: Any, intake: Intake, **kwargs: Any) -> None:
    number = require(event.data, "pull_request.number", int)
    repository = require(event.data, "repository.full_name", str)
    await _wake(
        intake, f"pull request {repository}#{number}",
        """job_tracking->>'pull_number' = $1
           AND lower(job_tracking->>'pull_repository') = lower($2)""",
        str(number), repository)
