"""REST (/api/v1/mirrors...) and CLI (pao mirror ...) for mirrors."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path
from typing import Any

import jsonschema

from app.api.auth import create_token
from app.api.openapi import DOCUMENT
from tests.mirror_support import ONEDEV_TOKEN

ROOT = Path(__file__).resolve().parent.parent


def check(method: str, path: str, status: int, body: Any) -> Any:
    """The body, after validating it against the schema the OpenAPI document gives it."""
    for template, ops in DOCUMENT["paths"].items():
        if re.match("^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$", path) \
                and method.lower() in ops:
            schema = ops[method.lower()]["responses"][str(status)]["content"][
                "application/json"]["schema"]
            jsonschema.validate(body, {**schema, "components": DOCUMENT["components"]})
            return body
    raise AssertionError(f"{method} {path} is not in the OpenAPI document")


class Api:
    def __init__(self, client):
        self.client = client

    async def __call__(self, method: str, path: str, headers=None, **kw) -> tuple[int, Any]:
        resp = await self.client.request(method, path, headers=headers, **kw)
        body = await resp.json()
        return resp.status, check(method, path, resp.status, body)


async def tokens(pool):
    _, admin = await create_token(pool, user_id="root", is_admin=True)
    _, user = await create_token(pool, user_id="dev")
    return {"Authorization": f"Bearer {admin}"}, {"Authorization": f"Bearer {user}"}


async def test_add_list_show_and_sync_over_rest(make_env):
    env = await make_env(mode="token", worker=False)
    admin, user = await tokens(env.pool)
    for name in ("octo/a", "octo/b", "octo/c"):
        env.gh.create_repo(name, files={"f": name})
    api = Api(env.client)

    status, _ = await api("POST", "/api/v1/mirrors", json={"repository": "octo/a"})
    assert status == 401
    status, _ = await api("POST", "/api/v1/mirrors", json={"repository": "octo/a"}, headers=user)
    assert status == 403
    status, body = await api("POST", "/api/v1/mirrors", json={"repo": "octo/a"}, headers=admin)
    assert status == 400 and "repository" in body["detail"]
    status, _ = await api("POST", "/api/v1/mirrors", json={"repository": "not a name"},
                          headers=admin)
    assert status == 400
    status, body = await api("POST", "/api/v1/mirrors", json={"repository": "octo/missing"},
                             headers=admin)
    assert status == 404 and "octo/missing" in body["detail"]

    job_ids = set()
    for name in ("octo/a", "octo/b", "octo/c"):
        status, body = await api("POST", "/api/v1/mirrors", json={"repository": name},
                                 headers=admin)
        assert status == 202
        assert body["outcome"] == "queued" and body["mirror"]["sync_status"] == "pending"
        job_ids.add(body["job_id"])
    assert len(job_ids) == 3

    _, page1 = await api("GET", "/api/v1/mirrors", params={"limit": "2"}, headers=user)
    assert [m["github"]["full_name"] for m in page1["mirrors"]] == ["octo/a", "octo/b"]
    assert page1["pagination"]["has_more"]
    _, page2 = await api("GET", "/api/v1/mirrors", headers=user,
                         params={"limit": "2", "cursor": page1["pagination"]["next_cursor"]})
    assert [m["github"]["full_name"] for m in page2["mirrors"]] == ["octo/c"]
    assert page2["pagination"] == {"next_cursor": None, "has_more": False}
    _, done = await api("GET", "/api/v1/mirrors", params={"status": "completed"}, headers=user)
    assert done["mirrors"] == []
    for bad, name in (({"status": "done"}, "status"), ({"cursor": "%%%"}, "cursor"),
                      ({"limit": "0"}, "limit"), ({"sort": "x"}, "sort"),
                      ({"status": "failed", "cursor": page1["pagination"]["next_cursor"]},
                       "cursor")):
        status, body = await api("GET", "/api/v1/mirrors", params=bad, headers=user)
        assert status == 400 and body["parameter"] == name, bad

    status, _ = await api("POST", "/api/v1/mirrors/octo/nope/sync", headers=user)
    assert status == 404
    env.start_worker()
    await env.wait_status("octo/a", "completed")
    status, body = await api("POST", "/api/v1/mirrors/octo/a/sync", headers=user)
    assert status == 202 and body["job_id"]
    await env.wait_status("octo/a", "completed", successes=2)

    status, shown = await api("GET", "/api/v1/mirrors/octo/a", headers=user)
    assert shown["onedev"]["path"] == "octo-a" and shown["sync_status"] == "completed"
    assert [entry["event_type"] for entry in shown["sync_logs"]] == ["manual", "manual"]
    assert shown["sync_logs"][0]["refs_pushed"] == 0  # nothing changed: nothing pushed
    _, done = await api("GET", "/api/v1/mirrors", params={"status": "completed"}, headers=user)
    assert "octo/a" in [m["github"]["full_name"] for m in done["mirrors"]]
    status, _ = await api("GET", "/api/v1/mirrors/octo/zzz", headers=user)
    assert status == 404


async def run_cli(*args: str, env_vars: dict[str, str]) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app", *args, cwd=ROOT, env=env_vars,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    return proc.returncode or 0, out.decode(), err.decode()


async def test_cli_add_sync_stars_and_list(make_env, db_dsn, tmp_path):
    env = await make_env(mode="token", worker=False)
    env.gh.create_repo("octo/cli", files={"f": "x"})
    env.gh.create_repo("octo/starred", files={"f": "y"})
    env.gh.star("alice", "octo/starred")
    base = {k: v for k, v in os.environ.items() if not k.startswith("PAO_")}
    env_vars = {**base, "PAO_DB_URL": db_dsn, "PAO_DATA_DIR": str(tmp_path / "cli"),
                "PAO_GITHUB_API_URL": env.gh.url, "PAO_REPO_TOKEN": env.gh.personal_token,
                "PAO_ONEDEV_URL": env.onedev.url, "PAO_ONEDEV_TOKEN": ONEDEV_TOKEN,
                "PAO_MIRROR_USERS": "alice"}
    code, out, err = await run_cli("mirror", "add", "octo/cli", env_vars=env_vars)
    assert code == 0, err
    assert "octo/cli: sync queued" in out
    code, out, _ = await run_cli("mirror", "add", "octo/none", env_vars=env_vars)
    assert code == 1
    code, out, err = await run_cli("mirror", "sync-stars", env_vars=env_vars)
    assert code == 0, err
    assert "alice: 1 stars, 1 queued: octo/starred" in out
    code, out, _ = await run_cli("mirror", "list", env_vars=env_vars)
    assert code == 0 and "octo/cli" in out and "octo/starred" in out and "pending" in out
    no_onedev = {k: v for k, v in env_vars.items() if k != "PAO_ONEDEV_URL"}
    code, _, err = await run_cli("mirror", "add", "octo/cli", env_vars=no_onedev)
    assert code == 2 and "PAO_ONEDEV_URL" in err
