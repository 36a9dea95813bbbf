"""Start-up catch-up: if the catalog branch moved while PAO was down, queue a sync.

One ``git ls-remote`` (no fetch) compares the remote head with the last
processed SHA; webhooks missed during the outage cost one sync, not a full load.
"""

from __future__ import annotations

import logging
from typing import Any

from app.git.catalog import ls_remote_head
from app.sync import store
from app.sync.source import catalog_source
from app.sync.tasks import git_token, queue_sync

log = logging.getLogger(__name__)


async def catch_up(rt: Any) -> int | None:
    """Queue a sync when the branch head differs from the last processed SHA; return the job id."""
    source = catalog_source(rt.settings)
    if source is None:
        return None
    token = await git_token(rt.github, rt.pool, source, None)
    head = await ls_remote_head(source, token)
    if head is None:
        log.warning("catalog branch %s not found in %s; nothing to sync", source.branch, source.key)
        return None
    state = await store.get_state(rt.pool, source.key, source.branch)
    if state.last_processed_sha == head:
        log.info("catalog is current at %s", head[:12])
        return None
    job_id = await queue_sync(rt.pool, source, triggered_by="startup")
    log.info("catalog head %s differs from last processed %s: catch-up sync queued (job %s)",
             head[:12], (state.last_processed_sha or "none")[:12], job_id)
    return job_id


async def on_startup(rt: Any) -> None:
    await catch_up(rt)
