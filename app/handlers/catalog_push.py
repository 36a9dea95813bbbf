"""``push`` to the catalog repository's branch: queue one catalog sync.

The sync reads the branch head itself, so the payload's commit and file lists
are not trusted or needed; pushes landing during a sync fold into one more.
"""

from __future__ import annotations

from typing import Any

from gidgethub import routing
from gidgethub.sansio import Event

from app.intake import Intake, optional, require
from app.sync.source import PUSH_URL_FIELDS, catalog_source, push_matches
from app.sync.tasks import TASK, job_args

router = routing.Router()

ZERO_SHA = "0" * 40


@router.register("push")
async def catalog_push(event: Event, gh: Any, *args: Any, intake: Intake, **kwargs: Any) -> None:
    source = catalog_source(intake.settings)
    ref = require(event.data, "ref", str)
    require(event.data, "repository", dict)
    # Only typed values reach push_matches: a URL that is not a string is a 400, not a miss.
    repository = {name: optional(event.data, f"repository.{name}", str)
                  for name in ("full_name", *PUSH_URL_FIELDS)}
    name = repository["full_name"] or repository["clone_url"] or "repository"
    if source is None:
        intake.ignore("no catalog repository configured (PAO_REPO_URL)")
        return
    if not push_matches(source, repository):
        intake.ignore(f"{name} is not the catalog repository")
        return
    if ref != f"refs/heads/{source.branch}":
        intake.ignore(f"push to {ref}, the catalog syncs from refs/heads/{source.branch}")
        return
    if optional(event.data, "deleted", bool, False) or optional(event.data, "after", str) == ZERO_SHA:
        intake.ignore(f"branch {source.branch} was deleted; the catalog keeps its last state")
        return
    args = job_args(source, triggered_by="webhook",
                    installation_id=optional(event.data, "installation.id", int))
    await intake.enqueue(TASK, args, queueing_lock=source.lock, lock=source.lock)
    intake.handled(f"catalog sync queued for {name}@{source.branch}")
