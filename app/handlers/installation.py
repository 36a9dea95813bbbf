"""``installation`` and ``installation_repositories``: remember where the App is installed."""

from __future__ import annotations

from typing import Any

from gidgethub import routing
from gidgethub.sansio import Event

from app.webhooks import Intake, require

router = routing.Router()

UPSERT_INSTALLATION = """
INSERT INTO installations (id, account_login, account_type, suspended)
VALUES ($1, $2, $3, $4)
ON CONFLICT (id) DO UPDATE SET account_login = EXCLUDED.account_login,
    account_type = EXCLUDED.account_type, suspended = EXCLUDED.suspended,
    deleted_at = NULL, updated_at = now()
"""

ADD_REPOSITORIES = """
INSERT INTO installation_repositories (installation_id, repository_id, full_name)
SELECT $1, r.id, r.full_name FROM unnest($2::bigint[], $3::text[]) AS r(id, full_name)
ON CONFLICT (installation_id, repository_id) DO UPDATE SET full_name = EXCLUDED.full_name
"""

REMOVE_REPOSITORIES = """
DELETE FROM installation_repositories WHERE installation_id = $1 AND repository_id = ANY($2::bigint[])
"""


async def _add_repositories(intake: Intake, installation_id: int, repos: list[dict[str, Any]]) -> None:
    if repos:
        await intake.conn.execute(
            ADD_REPOSITORIES,
            installation_id,
            [int(r["id"]) for r in repos],
            [str(r["full_name"]) for r in repos],
        )


@router.register("installation", action="created")
@router.register("installation", action="new_permissions_accepted")
@router.register("installation", action="unsuspend")
@router.register("installation", action="suspend")
async def installation_created(event: Event, gh: Any, *args: Any, intake: Intake, **kwargs: Any) -> None:
    inst = require(event.data, "installation")
    account = require(event.data, "installation.account")
    await intake.conn.execute(
        UPSERT_INSTALLATION,
        int(require(event.data, "installation.id")),
        str(require(event.data, "installation.account.login")),
        account.get("type"),
        event.data.get("action") == "suspend" or bool(inst.get("suspended_at")),
    )
    await _add_repositories(intake, int(inst["id"]), event.data.get("repositories") or [])
    intake.handled(f"installation {event.data.get('action')}")


@router.register("installation", action="deleted")
async def installation_deleted(event: Event, gh: Any, *args: Any, intake: Intake, **kwargs: Any) -> None:
    installation_id = int(require(event.data, "installation.id"))
    await intake.conn.execute(
        "UPDATE installations SET deleted_at = now(), updated_at = now() WHERE id = $1",
        installation_id,
    )
    await intake.conn.execute(
        "DELETE FROM installation_repositories WHERE installation_id = $1", installation_id
    )
    gh.forget(installation_id)
    intake.handled("installation deleted")


@router.register("installation_repositories")
async def repositories_changed(event: Event, gh: Any, *args: Any, intake: Intake, **kwargs: Any) -> None:
    installation_id = int(require(event.data, "installation.id"))
    account_login = str(require(event.data, "installation.account.login"))
    await intake.conn.execute(
        UPSERT_INSTALLATION, installation_id, account_login,
        event.data["installation"]["account"].get("type"), False,
    )
    await _add_repositories(intake, installation_id, event.data.get("repositories_added") or [])
    removed = [int(r["id"]) for r in event.data.get("repositories_removed") or []]
    if removed:
        await intake.conn.execute(REMOVE_REPOSITORIES, installation_id, removed)
    intake.handled("installation repositories updated")
