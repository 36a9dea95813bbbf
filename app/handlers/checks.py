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
from app.intake import Intake, require

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


def _installation_id(data: dict[str, Any]) -> int | None:
    inst = data.get("installation")
    return int(inst["id"]) if isinstance(inst, dict) and isinstance(inst.get("id"), int) else None


async def _request(intake: Intake, data: dict[str, Any], repository: str, pr: dict[str, Any],
                   head_sha: str, *, rerun: bool) -> None:
    number = int(require(pr, "number"))
    head = pr.get("head") if isinstance(pr.get("head"), dict) else {}
    head_repo = (head.get("repo") or {}).get("full_name") if isinstance(head.get("repo"), dict) else None
    # The head branch is a fetch fallback only when it lives in this repository (not a fork).
    head_ref = head.get("ref") if head_repo is None or head_repo.lower() == repository.lower() else None
    base_ref = str(require(pr, "base.ref"))
    await intake.conn.execute(UPSERT_REQUEST, repository, number, _installation_id(data), head_sha,
                              head_ref, base_ref, rerun)
    key = queue_key(repository, number)
    await intake.enqueue(TASK, {"repository": repository, "pr_number": number},
                         queueing_lock=key, lock=key)


def _catalog_repository(event: Event, intake: Intake) -> str | None:
    full_name = str(require(event.data, "repository.full_name"))
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
    pr = require(event.data, "pull_request", dict)
    await _request(intake, event.data, repository, pr, str(require(pr, "head.sha")), rerun=False)


@router.register("check_suite", action="requested")
@router.register("check_suite", action="rerequested")
async def check_suite(event: Event, gh: Any, *args: Any, intake: Intake, **kwargs: Any) -> None:
    repository = _catalog_repository(event, intake)
    if repository is None:
        return
    suite = require(event.data, "check_suite", dict)
    prs = suite.get("pull_requests") or []
    if not prs:
        intake.ignore("check suite without a pull request (pull_request events cover forks)")
        return
    rerun = event.data.get("action") == "rerequested"
    for pr in prs:
        await _request(intake, event.data, repository, pr, str(require(suite, "head_sha")), rerun=rerun)


@router.register("check_run", action="rerequested")
async def check_run(event: Event, gh: Any, *args: Any, intake: Intake, **kwargs: Any) -> None:
    repository = _catalog_repository(event, intake)
    if repository is None:
        return
    run = require(event.data, "check_run", dict)
    app_id = intake.settings.app_id
    run_app = (run.get("app") or {}).get("id")
    if (str(run_app) != str(app_id)) if app_id else run.get("name") != CHECK_NAME:
        intake.ignore("check run belongs to another app")
        return
    prs = run.get("pull_requests") or []
    head_sha = str(require(run, "head_sha"))
    if prs:
        for pr in prs:
            await _request(intake, event.data, repository, pr, head_sha, rerun=True)
        return
    # GitHub leaves pull_requests empty for fork PRs: find the PR from our own record.
    number = await intake.conn.fetchval(
        "SELECT pr_number FROM catalog_check_runs WHERE repository = $1 AND check_run_id = $2",
        repository, int(require(run, "id")))
    if number is None:
        intake.ignore("rerequested check run is not one PAO created for a pull request")
        return
    updated = await intake.conn.fetchval(
        "UPDATE catalog_check_requests SET head_sha = $3, rerun = true, requested_at = now(),"
        " installation_id = COALESCE($4, installation_id)"
        " WHERE repository = $1 AND pr_number = $2 RETURNING pr_number",
        repository, number, head_sha, _installation_id(event.data))
    if updated is None:
        intake.ignore("no check request recorded for this pull request")
        return
    key = queue_key(repository, number)
    await intake.enqueue(TASK, {"repository": repository, "pr_number": number},
                         queueing_lock=key, lock=key)
