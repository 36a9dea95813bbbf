"""Every payload value a handler reads is typed: a wrong type is a 400 naming the field.

Each case takes a payload every handler accepts, breaks one field, and checks the
delivery is refused with that field's name, stored as ``rejected``, and wrote nothing.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from app.mirror.config import MirrorSettings
from app.web import create_app
from tests.conftest import with_settings
from tests.support import webhook

URL = "/api/v1/webhooks/github"
CATALOG = "acme/catalog"
SHA = "a" * 40

REPOSITORY = {"id": 101, "full_name": CATALOG, "name": "catalog", "private": False, "size": 120,
              "html_url": f"https://github.com/{CATALOG}", "default_branch": "main",
              "clone_url": f"https://github.com/{CATALOG}.git"}
INSTALLATION = {"id": 42, "account": {"login": "acme", "type": "Organization"}}
PR = {"number": 7, "head": {"sha": SHA, "ref": "feature", "repo": {"full_name": CATALOG}},
      "base": {"ref": "main", "sha": "b" * 40}}

VALID: dict[str, dict[str, Any]] = {
    "pull_request": {"action": "opened", "number": 7, "pull_request": PR,
                     "repository": REPOSITORY, "installation": {"id": 42}},
    "check_suite": {"action": "requested", "repository": REPOSITORY, "installation": {"id": 42},
                    "check_suite": {"head_sha": SHA, "pull_requests": [PR]}},
    "check_run": {"action": "rerequested", "repository": REPOSITORY,
                  "check_run": {"id": 9, "name": "PAO catalog", "head_sha": SHA,
                                "app": {"id": 1}, "pull_requests": [PR]}},
    "push": {"ref": "refs/heads/main", "before": "b" * 40, "after": SHA, "deleted": False,
             "repository": REPOSITORY, "installation": {"id": 42}},
    "watch": {"action": "started", "repository": REPOSITORY, "sender": {"login": "octocat"},
              "installation": {"id": 42}},
    "installation": {"action": "created", "installation": INSTALLATION,
                     "repositories": [{"id": 101, "full_name": CATALOG}]},
    "installation_repositories": {"action": "added", "installation": INSTALLATION,
                                  "repositories_added": [{"id": 101, "full_name": CATALOG}],
                                  "repositories_removed": []},
}


def broken(event: str, path: str, value: Any) -> dict[str, Any]:
    payload = copy.deepcopy(VALID[event])
    node: Any = payload
    steps = path.replace("[", ".").replace("]", "").split(".")
    for step in steps[:-1]:
        node = node[int(step)] if step.isdigit() else node[step]
    node[int(steps[-1]) if steps[-1].isdigit() else steps[-1]] = value
    return payload


@pytest.fixture
async def client(aiohttp_client, runtime):
    runtime.settings = with_settings(
        runtime.settings, repo_url=f"https://github.com/{CATALOG}.git",
        extra={**runtime.settings.extra,
               "mirror": MirrorSettings(onedev_url="http://127.0.0.1:9", onedev_token="t")})
    return await aiohttp_client(create_app(runtime))


async def written(pool) -> int:
    return await pool.fetchval(
        "SELECT (SELECT count(*) FROM jobs) + (SELECT count(*) FROM installations)"
        " + (SELECT count(*) FROM catalog_check_requests) + (SELECT count(*) FROM repositories)")


@pytest.mark.parametrize("event", sorted(VALID))
async def test_the_valid_payloads_are_accepted(client, pool, event):
    body, headers = webhook(event, VALID[event])
    resp = await client.post(URL, data=body, headers=headers)
    assert resp.status in (200, 202), await resp.text()
    assert (await resp.json())["status"] in ("accepted", "processed")
    assert await written(pool) > 0


@pytest.mark.parametrize("event,path,value", [
    ("pull_request", "pull_request.number", "7"),
    ("pull_request", "pull_request.number", 2**40),  # PR numbers are stored as integer
    ("pull_request", "pull_request.number", True),
    ("pull_request", "pull_request.head.sha", 5),
    ("pull_request", "pull_request.head.ref", ["feature"]),
    ("pull_request", "pull_request.base.ref", {"x": 1}),
    ("pull_request", "pull_request.head", "feature"),
    ("pull_request", "installation.id", "42"),
    ("pull_request", "repository.full_name", 101),
    ("check_suite", "check_suite.pull_requests", {"0": PR}),
    ("check_suite", "check_suite.pull_requests[0].number", "7"),
    ("check_suite", "check_suite.head_sha", 1),
    ("check_run", "check_run.name", 1),
    ("check_run", "check_run.pull_requests[0]", "7"),
    ("check_run", "check_run.head_sha", 1.5),
    ("push", "repository.clone_url", 5),
    ("push", "repository.html_url", False),
    ("push", "deleted", "no"),
    ("push", "after", 0),
    ("push", "installation.id", 4.2),
    ("push", "repository.id", "101"),
    ("watch", "repository.size", "120"),
    ("watch", "repository.size", -1),
    ("watch", "repository.id", 2**63),
    ("watch", "repository.private", "false"),
    ("watch", "repository.default_branch", 1),
    ("watch", "sender.login", 7),
    ("installation", "installation.id", True),
    ("installation", "installation.id", 2**63),
    ("installation", "installation.account.login", 5),
    ("installation", "installation.account.type", 5),
    ("installation", "repositories[0].id", "101"),
    ("installation", "repositories[0].full_name", None),
    ("installation", "repositories", {"id": 1}),
    ("installation_repositories", "repositories_added[0].id", 1.0),
    ("installation_repositories", "repositories_removed", [{"id": "101"}]),
])
async def test_a_field_of_the_wrong_type_is_a_400_naming_it(client, pool, event, path, value):
    body, headers = webhook(event, broken(event, path, value), delivery_id=f"bad-{event}")
    resp = await client.post(URL, data=body, headers=headers)
    assert resp.status == 400, await resp.text()
    data = await resp.json()
    named = path if not path.endswith("removed") else path + "[0].id"
    assert data["error"] == "invalid payload" and f"'{named}'" in data["detail"]
    assert await written(pool) == 0
    row = await pool.fetchrow("SELECT status, reason FROM webhook_events WHERE delivery_id = $1",
                              f"bad-{event}")
    assert row["status"] == "rejected" and named in row["reason"]
