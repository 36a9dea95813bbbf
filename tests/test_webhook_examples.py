"""GitHub's published example of every event and action PAO subscribes to (``app.yml``), as
GitHub signs and sends it, through intake and the handlers configured to care: each is
answered 2xx, none is rejected or fails, and the ones that ask for work queue it.

The acceptance probe ran every example of ``@octokit/webhooks-examples`` (github.com and
GHES 3.1-3.5, 726 deliveries) through a real ``pao serve``; this keeps one per action."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from app.mirror.config import MirrorSettings
from app.web import create_app
from tests.conftest import with_settings
from tests.support import webhook

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = json.loads((ROOT / "tests" / "fakes" / "webhook-examples.json").read_text())
URL = "/api/v1/webhooks/github"


async def test_every_published_example_of_a_subscribed_event_is_accepted(aiohttp_client, runtime, pool):
    # The examples' repository is the catalog, and mirroring is on: the handlers do their work.
    runtime.settings = with_settings(
        runtime.settings, repo_url="https://github.com/Codertocat/Hello-World.git", repo_branch="master",
        extra={**runtime.settings.extra,
               "mirror": MirrorSettings(onedev_url="https://onedev.example.com", onedev_token="t" * 20)})
    client = await aiohttp_client(create_app(runtime))
    subscribed = set(yaml.safe_load((ROOT / "app.yml").read_text())["default_events"])
    sent = 0
    for event, actions in EXAMPLES.items():
        if event not in subscribed | {"ping"}:
            continue
        for action, payload in actions.items():
            body, headers = webhook(event, payload)
            resp = await client.post(URL, data=body, headers=headers)
            assert resp.status in (200, 202), (event, action, resp.status, await resp.text())
            sent += 1
    assert sent >= 25
    rows = await pool.fetch("SELECT event, action, status, reason, error FROM webhook_events")
    assert len(rows) == sent
    bad = [dict(r) for r in rows if r["status"] in ("rejected", "failed")]
    assert bad == []
    queued = {(r["event"], r["action"]) for r in rows if r["status"] == "queued"}
    assert {("pull_request", "opened"), ("star", "created"), ("watch", "started")} <= queued
    tasks = {r["task"] for r in await pool.fetch("SELECT task FROM jobs")}
    assert {"catalog_check", "mirror.sync"} <= tasks
