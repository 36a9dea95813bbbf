"""``installation`` and ``installation_repositories``: remember where the App is installed."""

from __future__ import annotations

from typing import Any

from gidgethub import routing
from gidgethub.sansio import Event

from app.intake import Intake, PayloadError, require

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


def _repositories(data: dict[str, Any], key: str) -> list[tuple[int, str | None]]:
    """``(id, full_name)`` of each entry of ``data[key]``; PayloadError naming a bad one."""
    entries = data.get(key) or []
    if not isinstance(entries, list):
        raise PayloadError(key, "has the wrong type")
    repos = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise PayloadError(f"{key}[{i}]", "has the wrong type")
        repo_id = entry.get("id")
        if not isinstance(repo_id, int) or isinstance(repo_id, bool):
            raise PayloadError(f"{key}[{i}].id", "is missing" if repo_id is None
                               else "has the wrong type")
        name = entry.get("full_name")
        repos.append((repo_id, name if isinstance(name, str) else None))
    return repos


async def _add_repositories(intake: Intake, installation_id: int, data: dict[str, Any],
                            key: str) -> None:
    repos = _repositories(data, key)
    for i, (_, name) in enumerate(repos):
        if name is None:
            raise PayloadError(f"{key}[{i}].full_name")
    if repos:
        await intake.conn.execute(
            ADD_REPOSITORIES,
            installation_id,
            [repo_id for repo_id, _ in repos],
            [name for _, name in repos],
        )


@router.register("installation", action="created")
@router.register("installation", action="new_permissions_accepted")
@router.register("installation", action="unsuspend")
@router.register("installation", action="suspend")
async def installation_created(event: Event, gh: Any, *args: Any, intake: Intake, **kwargs: Any) -> None:
    inst = require(event.data, "installation")
    account = require(event.data, "installation.account")
    installation_id = require(event.data, "installation.id", int)
    await intake.conn.execute(
        UPSERT_INSTALLATION,
        installation_id,
        str(require(event.data, "installation.account.login")),
        account.get("type"),
        event.data.get("action") == "suspend" or bool(inst.get("suspended_at")),
    )
    await _add_repositories(intake, installation_id, event.data, "repositories")
    intake.handled(f"installation {event.data.get('action')}")


@router.register("installation", action="deleted")
async def installation_deleted(event: Event, gh: Any, *args: Any, intake: Intake, **kwargs: Any) -> None:
    installation_id = require(event.data, "installation.id", int)
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
    installation_id = require(event.data, "installation.id", int)
    account_login = str(require(event.data, "installation.account.login"))
    await intake.conn.execute(
        UPSERT_INSTALLATION, installation_id, account_login,
        require(event.data, "installation.account", dict).get("type"), False,
    )
    await _add_repositories(intake, installation_id, event.data, "repositories_added")
    removed = [repo_id for repo_id, _ in _repositories(event.data, "repositories_removed")]
    if removed:
        await intake.conn.execute(REMOVE_REPOSITORIES, installation_id, removed)
    intake.handled("installation repositories updated")
