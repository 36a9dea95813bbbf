"""``installation`` and ``installation_repositories``: remember where the App is installed."""

from __future__ import annotations

from typing import Any

from gidgethub import routing
from gidgethub.sansio import Event

from app.intake import Intake, entries, optional, require

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


def _repositories(data: dict[str, Any], key: str) -> list[tuple[int, str]]:
    """``(id, full_name)`` of each entry of ``data[key]``; PayloadError naming a bad one."""
    return [(require(data, f"{key}[{i}].id", int), require(data, f"{key}[{i}].full_name", str))
            for i in entries(data, key)]


async def _add_repositories(intake: Intake, installation_id: int, data: dict[str, Any],
                            key: str) -> None:
    repos = _repositories(data, key)
    if repos:
        conn = await intake.connection()
        await conn.execute(
            ADD_REPOSITORIES,
            installation_id,
            [repo_id for repo_id, _ in repos],
            [name for _, name in repos],
        )


async def _upsert_installation(intake: Intake, data: dict[str, Any], suspended: bool) -> int:
    installation_id = require(data, "installation.id", int)
    require(data, "installation.account", dict)
    conn = await intake.connection()
    await conn.execute(
        UPSERT_INSTALLATION,
        installation_id,
        require(data, "installation.account.login", str),
        optional(data, "installation.account.type", str),
        suspended,
    )
    return installation_id


@router.register("installation", action="created")
@router.register("installation", action="new_permissions_accepted")
@router.register("installation", action="unsuspend")
@router.register("installation", action="suspend")
async def installation_created(event: Event, gh: Any, *args: Any, intake: Intake, **kwargs: Any) -> None:
    action = event.data["action"]  # a string: the router matched it
    suspended = action == "suspend" or bool(optional(event.data, "installation.suspended_at", str))
    installation_id = await _upsert_installation(intake, event.data, suspended)
    await _add_repositories(intake, installation_id, event.data, "repositories")
    intake.handled(f"installation {action}")


@router.register("installation", action="deleted")
async def installation_deleted(event: Event, gh: Any, *args: Any, intake: Intake, **kwargs: Any) -> None:
    installation_id = require(event.data, "installation.id", int)
    conn = await intake.connection()
    await conn.execute(
        "UPDATE installations SET deleted_at = now(), updated_at = now() WHERE id = $1",
        installation_id,
    )
    await conn.execute(
        "DELETE FROM installation_repositories WHERE installation_id = $1", installation_id
    )
    gh.forget(installation_id)
    intake.handled("installation deleted")


@router.register("installation_repositories")
async def repositories_changed(event: Event, gh: Any, *args: Any, intake: Intake, **kwargs: Any) -> None:
    installation_id = await _upsert_installation(intake, event.data, False)
    await _add_repositories(intake, installation_id, event.data, "repositories_added")
    removed = [require(event.data, f"repositories_removed[{i}].id", int)
               for i in entries(event.data, "repositories_removed")]
    if removed:
        conn = await intake.connection()
        await conn.execute(REMOVE_REPOSITORIES, installation_id, removed)
    intake.handled("installation repositories updated")
