"""``push`` to the catalog repository's branch: queue one catalog sync.

The sync reads the branch head itself, so the payload's commit and file lists
are not trusted or needed; pushes landing during a sync fold into one more.
"""

from __future__ import annotations

from typing import Any

from gidgethub import routing
from gidgethub.sansio import Event

from app.intake import Intake, require
from app.sync.source import catalog_source, push_matches
from app.sync.tasks import TASK, job_args

router = routing.Router()

ZERO_SHA = "0" * 40


@router.register("push")
async def catalog_push(event: Event, gh: Any, *args: Any, intake: Intake, **kwargs: Any) -> None:
    source = catalog_source(intake.settings)
    ref = require(event.data, "ref", str)
    repository = require(event.data, "repository", dict)
    name = repository.get("full_name") or repository.get("clone_url") or "repository"
    if source is None:
        intake.ignore("no catalog repository configured (PAO_REPO_URL)")
        return
    if not push_matches(source, repository):
        intake.ignore(f"{name} is not the catalog repository")
        return
    if ref != f"refs/heads/{source.branch}":
        intake.ignore(f"push to {ref}, the catalog syncs from refs/heads/{source.branch}")
        return
    if event.data.get("deleted") or event.data.get("after") == ZERO_SHA:
        intake.ignore(f"branch {source.branch} was deleted; the catalog keeps its last state")
        return
    installation = event.data.get("installation")
    installation_id = installation.get("id") if isinstance(installation, dict) else None
    args = job_args(source, triggered_by="webhook",
                    installation_id=installation_id if isinstance(installation_id, int) else None)
    await intake.enqueue(TASK, args, queueing_lock=source.lock, lock=source.lock)
    intake.handled(f"catalog sync queued for {name}@{source.branch}")
