"""``GitHubWorkflow``: dispatch a workflow through the App's installation and wait for its run.

The dispatch asks for ``return_run_details`` (GitHub answers 200 with the run id). Every
dispatch also carries the input ``pao_step_id`` (``<request>/<step>``); the workflow names
its run after it (``run-name``), so a server that answers 204 (older GitHub Enterprise
Server), or a retry whose answer was lost, finds the run among the workflow's dispatched
runs instead of starting another. The step waits (``StepWaiting``) until the run completes:
the ``workflow_run`` webhook wakes it, polling is the fallback. ``success``: outputs from
the run's ``pao-outputs`` artifact; any other conclusion fails the step with the run's URL.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from app.requests.github_runs import RepoClient, guarded, repo_client, run_failed, run_outputs, run_tracking
from app.requests.steps.base import StepContext, StepFailed, StepResult, StepWaiting

CORRELATION_INPUT = "pao_step_id"
MAX_INPUTS = 25  # GitHub's limit, the correlation input included
PERMISSIONS = "actions: write (and metadata: read)"
FIND_RUN_FOR = 600.0  # a dispatched run that does not show up within this long fails the step
FIND_RUN_DELAY = 5.0  # GitHub creates a dispatched run within seconds


def dispatch_inputs(ctx: StepContext) -> dict[str, str]:
    """The workflow inputs as strings, with the correlation input; at most 25."""
    given = ctx.config.get("inputs") or {}
    if not isinstance(given, dict):
        raise StepFailed("bad_config", "GitHubWorkflow inputs must be a mapping of names to values")
    inputs = {str(k): v if isinstance(v, str) else _as_text(v) for k, v in given.items()}
    inputs[CORRELATION_INPUT] = ctx.idempotency_key
    if len(inputs) > MAX_INPUTS:
        raise StepFailed("bad_config", f"a workflow takes at most {MAX_INPUTS} inputs and PAO adds "
                         f"{CORRELATION_INPUT}; this step gives {len(given)}")
    return inputs


def _as_text(value: Any) -> str:
    """GitHub takes string inputs: booleans as true/false, lists and mappings as JSON."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    return json.dumps(value) if isinstance(value, dict | list) else str(value)


async def run(ctx: StepContext) -> StepResult:
    cfg = ctx.config
    repository, workflow = str(cfg["repository"]), str(cfg["workflow"])
    client = await repo_client(ctx.github, repository, "GitHubWorkflow", PERMISSIONS)
    tracking = dict(ctx.tracking or {})
    run_id = tracking.get("run_id")
    if run_id is None and tracking.get("dispatched_at") is None:
        tracking["dispatched_at"] = time.time()
        run_id = await dispatch(ctx, client, workflow, tracking["dispatched_at"])
    if run_id is None:  # a 204, or an earlier attempt's answer was lost: the run is named after the step
        run_id = await started_run(ctx, client, workflow, float(tracking["dispatched_at"]))
    run = await guarded(client.api.getitem(f"/repos/{repository}/actions/runs/{run_id}"),
                        f"read workflow run {run_id}", PERMISSIONS)
    return StepResult(await finished_run_outputs(ctx, client, run))


async def finished_run_outputs(ctx: StepContext, client: RepoClient, run: dict[str, Any]) -> dict[str, Any]:
    """Outputs of a completed successful run; waits while it runs, fails on any other conclusion."""
    if run.get("status") != "completed":
        raise StepWaiting(f"workflow run {run.get('id')} is {run.get('status')}")
    if run.get("conclusion") != "success":
        raise run_failed(run)
    return await run_outputs(ctx, client, run)


async def started_run(ctx: StepContext, client: RepoClient, workflow: str, dispatched_at: float) -> int:
    """The id of the run this step dispatched, found by its name; waits a while for it to show up."""
    found = await find_run(client, workflow, ctx.idempotency_key, dispatched_at)
    if found is None:
        if time.time() - dispatched_at > FIND_RUN_FOR:
            raise StepFailed("run_not_found", f"workflow {workflow} in {client.repository} was dispatched "
                             f"but no run named {ctx.idempotency_key} appeared; does the workflow set "
                             f"run-name from inputs.{CORRELATION_INPUT}?")
        raise StepWaiting("looking for the dispatched run", FIND_RUN_DELAY)
    await ctx.save_tracking(run_tracking(found))
    return int(found["id"])


async def dispatch(ctx: StepContext, client: RepoClient, workflow: str, dispatched_at: float) -> int | None:
    """Dispatch the workflow; the run id when GitHub gives it (200), else None (204)."""
    repository = client.repository
    ref = ctx.config.get("ref")
    if not ref:
        repo = await guarded(client.api.getitem(f"/repos/{repository}"), f"read {repository}", PERMISSIONS)
        ref = repo["default_branch"]
    inputs = dispatch_inputs(ctx)
    # Saved first: if the answer is lost, the next attempt looks for the run instead of dispatching again.
    await ctx.save_tracking({"dispatched_at": dispatched_at, "run_repository": repository})
    answer = await guarded(client.api.post(
        f"/repos/{repository}/actions/workflows/{quote(workflow, safe='')}/dispatches",
        data={"ref": str(ref), "inputs": inputs, "return_run_details": True}),
        f"dispatch workflow {workflow} in {repository}", PERMISSIONS)
    if isinstance(answer, dict) and answer.get("workflow_run_id"):
        run_id = int(answer["workflow_run_id"])
        await ctx.save_tracking({"run_id": run_id, "external_id": str(run_id),
                                 "tracking_url": answer.get("html_url")})
        return run_id
    return None


async def find_run(client: RepoClient, workflow: str, correlation: str,
                   since: float) -> dict[str, Any] | None:
    """The workflow's dispatched run named ``correlation`` created since ``since`` (a minute's slack)."""
    created = datetime.fromtimestamp(since - 60, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    url = (f"/repos/{client.repository}/actions/workflows/{quote(workflow, safe='')}/runs"
           f"?event=workflow_dispatch&created=%3E%3D{created}")

    async def first() -> dict[str, Any] | None:
        async for found in client.api.getiter(url, iterable_key="workflow_runs"):
            if found.get("display_title") == correlation or found.get("name") == correlation:
                return found
        return None

    return await guarded(first(), f"list the runs of workflow {workflow}", PERMISSIONS)
