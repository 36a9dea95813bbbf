"""Pull request events on the catalog repository -> a ``catalog_check`` job per PR.

Handlers record the newest head wanted for the PR (``catalog_check_requests``)
and queue one job per PR (queueing lock), so a push while a check waits replaces
what it will check. ``check_run.rerequested`` is honoured for our own runs only
(by App id, or by name in token mode where there is no App id to compare).
"""

from __future__ import annotations

from typing import Any

from gidgethub import routing
from gidgethub.sansio import Event

from app.checks.output import CHECK_NAME
from app.checks.task import TASK, is_catalog_repository, queue_key
from app.intake import INTEGER_MAX, Intake, entries, optional, require

router = routing.Router()

UPSERT_REQUEST = """
INSERT INTO catalog_check_requests (repository, pr_number, installation_id, head_sha, head_ref,
                                    base_ref, rerun, requested_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, now())
ON CONFLICT (repository, pr_number) DO UPDATE SET
    installation_id = EXCLUDED.installation_id, head_sha = EXCLUDED.head_sha,
    head_ref = EXCLUDED.head_ref, base_ref = EXCLUDED.base_ref,
    rerun = EXCLUDED.rerun OR (catalog_check_requests.rerun
                               AND catalog_check_requests.head_sha = EXCLUDED.head_sha),
    requested_at = now()
"""


async def _request(intake: Intake, data: dict[str, Any], repository: str, pr: str,
                   head_sha: str, *, rerun: bool) -> None:
    """Record the check wanted for the pull request at path ``pr`` of the payload, and queue it."""
    number = require(data, f"{pr}.number", int, minimum=1, maximum=INTEGER_MAX)
    head_repo = optional(data, f"{pr}.head.repo.full_name", str)
    # The head branch is a fetch fallback only when it lives in this repository (not a fork).
    head_ref = optional(data, f"{pr}.head.ref", str) \
        if head_repo is None or head_repo.lower() == repository.lower() else None
    base_ref = require(data, f"{pr}.base.ref", str)
    conn = await intake.connection()
    await conn.execute(UPSERT_REQUEST, repository, number,
                       optional(data, "installation.id", int), head_sha, head_ref, base_ref, rerun)
    key = queue_key(repository, number)
    await intake.enqueue(TASK, {"repository": repository, "pr_number": number},
                         queueing_lock=key, lock=key)


def _catalog_repository(event: Event, intake: Intake) -> str | None:
    full_name = require(event.data, "repository.full_name", str)
    if not is_catalog_repository(intake.settings, full_name):
        intake.ignore(f"{full_name} is not the catalog repository")
        return None
    return full_name


@router.register("pull_request", action="opened")
@router.register("pull_request", action="synchronize")
@router.register("pull_request", action="reopened")
@router.register("pull_request", action="ready_for_review")
async def pull_request(event: Event, gh: Any, *args: Any, intake: Intake, **kwargs: Any) -> None:
    repository = _catalog_repository(event, intake)
    if repository is None:
        return
    require(event.data, "pull_request", dict)
    await _request(intake, event.data, repository, "pull_request",
                   require(event.data, "pull_request.head.sha", str), rerun=False)


@router.register("check_suite", action="requested")
@router.register("check_suite", action="rerequested")
async def check_suite(event: Event, gh: Any, *args: Any, intake: Intake, **kwargs: Any) -> None:
    repository = _catalog_repository(event, intake)
    if repository is None:
        return
    require(event.data, "check_suite", dict)
    prs = entries(event.data, "check_suite.pull_requests")
    if not prs:
        intake.ignore("check suite without a pull request (pull_request events cover forks)")
        return
    rerun = event.data["action"] == "rerequested"
    head_sha = require(event.data, "check_suite.head_sha", str)
    for i in prs:
        await _request(intake, event.data, repository, f"check_suite.pull_requests[{i}]",
                       head_sha, rerun=rerun)


@router.register("check_run", action="rerequested")
async def check_run(event: Event, gh: Any, *args: Any, intake: Intake, **kwargs: Any) -> None:
    repository = _catalog_repository(event, intake)
    if repository is None:
        return
    require(event.data, "check_run", dict)
    app_id = intake.settings.app_id
    run_app = optional(event.data, "check_run.app.id", int)
    run_name = optional(event.data, "check_run.name", str)
    if (str(run_app) != str(app_id)) if app_id else run_name != CHECK_NAME:
        intake.ignore("check run belongs to another app")
        return
    prs = entries(event.data, "check_run.pull_requests")
    head_sha = require(event.data, "check_run.head_sha", str)
    if prs:
        for i in prs:
            await _request(intake, event.data, repository, f"check_run.pull_requests[{i}]",
                           head_sha, rerun=True)
        return
    # GitHub leaves pull_requests empty for fork PRs: find the PR from our own record.
    conn = await intake.connection()
    number = await conn.fetchval(
        "SELECT pr_number FROM catalog_check_runs WHERE repository = $1 AND check_run_id = $2",
        repository, require(event.data, "check_run.id", int))
    if number is None:
        intake.ignore("rerequested check run is not one PAO created for a pull request")
        return
    updated = await conn.fetchval(
        "UPDATE catalog_check_requests SET head_sha = $3, rerun = true, requested_at = now(),"
        " installation_id = COALESCE($4, installation_id)"
        " WHERE repository = $1 AND pr_number = $2 RETURNING pr_number",
        repository, number, head_sha, optional(event.data, "installation.id", int))
    if updated is None:
        intake.ignore("no check request recorded for this pull request")
        return
    key = queue_key(repository, number)
    await intake.enqueue(TASK, {"repository": repository, "pr_number": number},
                         queueing_lock=key, lock=key)
