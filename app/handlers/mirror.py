"""Stars and pushes: queue mirror syncs into OneDev (issue 5).

GitHub announces a star twice: ``star`` (``created``) and ``watch`` (``started``, the older
event, kept for Apps whose subscription predates ``star``); both ask for the same mirror,
and the queueing lock makes them one job. An unstar comes only as ``star`` ``deleted``:
``watch`` has no other action. Every payload carries the repository's current name and
clone URL, so renames and transfers on GitHub are followed (the mirror is keyed by
GitHub's repository id).
"""

from __future__ import annotations

from typing import Any

from gidgethub import routing
from gidgethub.sansio import Event

from app.intake import Intake, optional, require
from app.mirror import requests, store
from app.mirror.config import OFF_REASON, mirror_settings
from app.mirror.store import GitHubRepo

router = routing.Router()


@router.register("star", action="created")
@router.register("watch", action="started")
async def starred(event: Event, gh: Any, *args: Any, intake: Intake, **kwargs: Any) -> None:
    if not mirror_settings(intake.settings).enabled:
        intake.ignore(OFF_REASON)
        return
    repo = GitHubRepo.from_payload(event.data, "repository.")
    conn = await intake.connection()
    decision = await requests.request_mirror(
        conn, intake.enqueue, repo, installation_id=optional(event.data, "installation.id", int),
        source="star", starred_by=optional(event.data, "sender.login", str))
    if decision.outcome == "queued":
        intake.handled(f"mirror of {repo.full_name}: {decision.message}")
    else:
        intake.ignore(f"mirror of {repo.full_name}: {decision.message}")


@router.register("star", action="deleted")
async def unstarred(event: Event, gh: Any, *args: Any, intake: Intake, **kwargs: Any) -> None:
    ms = mirror_settings(intake.settings)
    if not ms.enabled:
        intake.ignore(OFF_REASON)
        return
    repo_id = require(event.data, "repository.id", int)
    full_name = require(event.data, "repository.full_name", str)
    if await requests.request_unstar(await intake.connection(), intake.enqueue, repo_id, policy=ms.on_unstar,
                                     event="unstar") is None:
        intake.ignore(f"{full_name} is not mirrored")
        return
    intake.handled(f"unstar of {full_name} recorded (PAO_MIRROR_ON_UNSTAR={ms.on_unstar})")


@router.register("push")
async def pushed(event: Event, gh: Any, *args: Any, intake: Intake, **kwargs: Any) -> None:
    """A push to a mirrored repository queues an update; any other push is not ours to judge
    (the catalog has its own push handler), so say nothing."""
    if not mirror_settings(intake.settings).enabled:
        return
    repo_id = optional(event.data, "repository.id", int)
    if repo_id is None:
        return
    conn = await intake.connection()
    row = await store.by_github_id(conn, repo_id)
    if row is None or row["deleted_at"] is not None:
        return
    repo = GitHubRepo.from_payload(event.data, "repository.")
    await store.refresh_identity(conn, row["id"], repo)
    await requests.queue_sync(intake.enqueue, row["id"], repo_id, "push")
    intake.handled(f"mirror update of {repo.full_name} queued")
