"""``pao requests``: a real ``python -m app`` process against the test database."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from tests.requests_support import BODY, SECRET_KEY, status_of

ROOT = Path(__file__).resolve().parent.parent


async def pao(db_dsn: str, tmp_path: Path, *args: str) -> tuple[int, str, str]:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PAO_")},
           "PAO_DB_URL": db_dsn, "PAO_DATA_DIR": str(tmp_path / "cli-data"), "PAO_SECRET_KEY": SECRET_KEY}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "app", "requests", *args, cwd=ROOT,
                                                env=env, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    return proc.returncode or 0, out.decode(), err.decode()


async def test_list_show_complete_retry_and_cancel_from_the_command_line(
        hooks, endpoint, worker, db_dsn, tmp_path):
    endpoint.answer("/create", (500, {"error": "down"}))
    endpoint.answer("/audit", (200, {}))
    endpoint.answer("/notify", (200, {}))
    _, created = await hooks.call("POST", "/api/v1/requests", BODY)
    rid = created["request_id"]
    worker.stop()  # keep the request where it is: the CLI acts on it
    code, out, _ = await pao(db_dsn, tmp_path, "list", "--item", "hook-app")
    assert code == 0 and rid in out and "hook-app" in out
    code, out, _ = await pao(db_dsn, tmp_path, "show", rid, "--json")
    assert code == 0 and json.loads(out)["request_id"] == rid
    code, _, err = await pao(db_dsn, tmp_path, "retry", rid, "hook-app.create")
    assert code == 1 and "only a failed step" in err
    code, _, err = await pao(db_dsn, tmp_path, "complete", rid, "hook-app.create")
    assert code == 1 and "endpoint" in err  # the declared output is required
    code, out, _ = await pao(db_dsn, tmp_path, "complete", rid, "hook-app.create",
                             "--output", "endpoint=https://by-cli")
    assert code == 0 and "hook-app.create" in out and "completed" in out
    _, detail = await hooks.call("GET", created["href"])
    steps = {s["step_id"]: s for s in detail["fulfillment"]["steps"]}
    assert steps["hook-app.create"]["outputs"] == {"endpoint": "https://by-cli"}
    assert steps["hook-app.notify"]["status"] == "queued"  # its dependency is done
    code, out, _ = await pao(db_dsn, tmp_path, "cancel", rid)
    assert code == 0 and "cancelled" in out
    await status_of(hooks, created["href"], "cancelled")
    code, _, err = await pao(db_dsn, tmp_path, "show", "req-19990101-nope")
    assert code == 1 and "no request" in err
