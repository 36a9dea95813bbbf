"""``TerraformFile``: commit a rendered file through the App, follow the pull request, then the apply.

``mode: pull_request`` (default): the file goes on the branch ``pao/<request>-<step>`` from
the target branch (``branch``, default: the repository's default branch) and a pull request
is opened; a retry finds the pull request by that branch, never opens a second. Merged:
the step follows the workflow runs on the merge commit; closed unmerged: the step fails.
``mode: commit``: the file is committed straight to the target branch. Either way the step
completes when every workflow run on that commit has finished (none failed), with outputs
from the ``pao-outputs`` artifact of a run that has one. Webhooks (``pull_request``
closed, ``workflow_run`` completed) wake the step; polling is the fallback.

Cancelling the request while its pull request is open queues ``requests.close_terraform_pull``
(in the cancel's transaction): a comment naming the cancelled request, the pull request
closed, the ``pao/...`` branch deleted. Each part is skipped when already done, so the job
retried after a crash finishes the rest.
"""

from __future__ import annotations

import base64
import time
from typing import Any
from urllib.parse import quote

from gidgethub import BadRequest

from app.jobs import JobContext, PermanentJobError, enqueue, task
from app.requests.github_runs import (
    NOT_FAILURES,
    OUTPUTS_ARTIFACT,
    RepoClient,
    guarded,
    repo_client,
    run_failed,
    run_outputs,
)
from app.requests.steps.base import StepContext, StepFailed, StepResult, StepWaiting

PERMISSIONS = "contents: write, pull_requests: write, actions: read and checks: read"
MODES = ("pull_request", "commit")
# GitHub starts push workflows within seconds of a merge; a step with no outputs whose commit
# has no run after this long is applied some other way (Atlantis...) and completes.
NO_RUN_GRACE = 120.0
NO_RUN_CHECK = 30.0
CLOSE_TASK = "requests.close_terraform_pull"


def branch_name(ctx: StepContext) -> str:
    """The step's own branch: one per request step, so a retry finds its pull request."""
    return "pao/" + ctx.label.removeprefix("pao-")


async def run(ctx: StepContext) -> StepResult:
    cfg = ctx.config
    repository, path = str(cfg["repository"]), str(cfg["path"]).strip("/")
    mode = str(cfg.get("mode") or "pull_request")
    if mode not in MODES:
        raise StepFailed("bad_config", f"TerraformFile mode must be one of {', '.join(MODES)}, got {mode!r}")
    client = await repo_client(ctx.github, repository, "TerraformFile", PERMISSIONS)
    tracking = dict(ctx.tracking or {})
    sha = tracking.get("applied_sha")
    if sha is None:
        target = str(cfg.get("branch") or "") or (await guarded(
            client.api.getitem(f"/repos/{repository}"), f"read {repository}", PERMISSIONS))["default_branch"]
        content = str(cfg["template"])
        if mode == "commit":
            sha = await put_file(ctx, client, path, content, target)
        else:
            sha = await follow_pull_request(ctx, client, path, content, target, tracking)
        tracking["applied_at"] = time.time()
        await ctx.save_tracking({"applied_sha": sha, "applied_at": tracking["applied_at"],
                                 "apply_repository": repository})
    return StepResult(await apply_outputs(ctx, client, sha, float(tracking.get("applied_at") or 0)))


async def follow_pull_request(ctx: StepContext, client: RepoClient, path: str, content: str, target: str,
                              tracking: dict[str, Any]) -> str:
    """Open the pull request once; the merge commit once merged (waits while it is open)."""
    repository = client.repository
    number = tracking.get("pull_number")
    if number is None:
        branch = branch_name(ctx)
        pull = await _existing_pull(client, branch)
        if pull is None:
            await _ensure_branch(client, branch, target)
            await put_file(ctx, client, path, content, branch)
            pull = await guarded(client.api.post(f"/repos/{repository}/pulls", data={
                "title": f"PAO {ctx.request_id}: {path}", "head": branch, "base": target,
                "body": f"Written by PAO for request `{ctx.request_id}`, step `{ctx.step_id}`. "
                        "Merge it to apply; close it to refuse."}),
                f"open a pull request in {repository}", PERMISSIONS)
        number = pull["number"]
        await ctx.save_tracking({"pull_number": number, "tracking_url": pull["html_url"],
                                 "external_id": f"{repository}#{number}", "pull_repository": repository})
    pull = await guarded(client.api.getitem(f"/repos/{repository}/pulls/{number}"),
                         f"read pull request #{number}", PERMISSIONS)
    if pull.get("merged"):
        return str(pull["merge_commit_sha"])
    if pull.get("state") == "closed":
        raise StepFailed("pull_request_closed", f"pull request {pull['html_url']} was closed without "
                         "merging", {"pull_request": pull["html_url"]})
    raise StepWaiting(f"pull request #{number} is open")


async def _existing_pull(client: RepoClient, branch: str) -> dict[str, Any] | None:
    owner = client.repository.split("/")[0]

    async def first() -> dict[str, Any] | None:
        async for pull in client.api.getiter(
                f"/repos/{client.repository}/pulls?state=all&head={quote(owner + ':' + branch, safe='')}"):
            return pull
        return None

    return await guarded(first(), f"look for the pull request of {branch}", PERMISSIONS)


async def _ensure_branch(client: RepoClient, branch: str, target: str) -> None:
    repository = client.repository
    if await guarded(client.api.getitem(f"/repos/{repository}/git/ref/heads/{quote(branch)}"),
                     f"read branch {branch}", PERMISSIONS, missing_ok=True):
        return  # an earlier attempt created it
    base = await guarded(client.api.getitem(f"/repos/{repository}/git/ref/heads/{quote(target)}"),
                         f"read branch {target} of {repository}", PERMISSIONS)
    await guarded(client.api.post(f"/repos/{repository}/git/refs", data={
        "ref": f"refs/heads/{branch}", "sha": base["object"]["sha"]}),
        f"create branch {branch} in {repository}", PERMISSIONS)


async def put_file(ctx: StepContext, client: RepoClient, path: str, content: str, branch: str) -> str:
    """Commit ``content`` at ``path`` on ``branch`` (nothing when it is already there); the head commit."""
    repository = client.repository
    url = f"/repos/{repository}/contents/{quote(path)}"
    current = await guarded(client.api.getitem(f"{url}?ref={quote(branch, safe='')}"),
                            f"read {path} on {branch}", PERMISSIONS, missing_ok=True)
    encoded = base64.b64encode(content.encode()).decode()
    if current is not None and base64.b64decode(current.get("content", "")) == content.encode():
        head = await guarded(client.api.getitem(f"/repos/{repository}/git/ref/heads/{quote(branch)}"),
                             f"read branch {branch}", PERMISSIONS)
        return str(head["object"]["sha"])  # an earlier attempt committed it
    body = {"message": f"PAO {ctx.request_id}: {path}\n\nStep {ctx.step_id}.", "content": encoded,
            "branch": branch}
    if current is not None:
        body["sha"] = current["sha"]
    answer = await guarded(client.api.put(url, data=body), f"commit {path} to {branch} of {repository}",
                           PERMISSIONS)
    return str(answer["commit"]["sha"])


async def apply_checks(ctx: StepContext, client: RepoClient, sha: str, applied_at: float) -> dict[str, Any]:
    """No workflow run: follow other Apps' check suites on ``sha`` (Atlantis...); they carry no outputs."""
    suites: list[dict[str, Any]] = []

    async def collect() -> None:
        async for found in client.api.getiter(f"/repos/{client.repository}/commits/{sha}/check-suites",
                                              iterable_key="check_suites"):
            if (found.get("app") or {}).get("slug") != "github-actions":
                suites.append(found)

    await guarded(collect(), f"list the check suites on {sha[:12]}", PERMISSIONS)
    if not suites:
        if not ctx.outputs_declared and time.time() - applied_at > NO_RUN_GRACE:
            return {}  # nothing applies it that GitHub knows of, and nothing is expected back
        delay = None if ctx.outputs_declared else min(NO_RUN_CHECK, ctx.settings.ticket_poll_interval)
        raise StepWaiting(f"no workflow run or check suite on {sha[:12]} yet", delay)
    if any(s.get("status") != "completed" for s in suites):
        raise StepWaiting(f"check suites on {sha[:12]} still running")
    failed = [s for s in suites if s.get("conclusion") not in NOT_FAILURES]
    if failed:
        app = (failed[0].get("app") or {}).get("slug")
        raise StepFailed("checks_failed", f"the {app} check suite on {sha[:12]} concluded "
                         f"{failed[0].get('conclusion')}", {"check_suite": failed[0].get("url"),
                                                            "conclusion": failed[0].get("conclusion")})
    if ctx.outputs_declared:
        raise StepFailed("missing_output", f"{sha[:12]} was applied by check suites, which carry no "
                         f"{OUTPUTS_ARTIFACT} artifact for the declared outputs "
                         f"{', '.join(ctx.outputs_declared)}")
    return {}


async def apply_outputs(ctx: StepContext, client: RepoClient, sha: str, applied_at: float) -> dict[str, Any]:
    """Wait for the workflow runs on ``sha``; outputs from the one with a ``pao-outputs`` artifact."""
    runs: list[dict[str, Any]] = []

    async def collect() -> None:
        async for found in client.api.getiter(f"/repos/{client.repository}/actions/runs?head_sha={sha}",
                                              iterable_key="workflow_runs"):
            runs.append(found)

    await guarded(collect(), f"list the workflow runs on {sha[:12]}", PERMISSIONS)
    if not runs:
        return await apply_checks(ctx, client, sha, applied_at)
    waiting = [r for r in runs if r.get("status") != "completed"]
    if waiting:
        raise StepWaiting(f"{len(waiting)} workflow run(s) on {sha[:12]} still running")
    failed = [r for r in runs if r.get("conclusion") not in NOT_FAILURES]
    if failed:
        raise run_failed(failed[0])
    last_error: StepFailed | None = None
    for found in runs:
        try:
            return await run_outputs(ctx, client, found)
        except StepFailed as exc:
            if exc.type != "missing_output":
                raise
            last_error = exc
    raise last_error or StepFailed("missing_output",
                                   f"no run on {sha[:12]} has a {OUTPUTS_ARTIFACT} artifact")


async def queue_close(conn: Any, step: Any, request_id: str) -> None:
    """A cancelled request: close the step's open pull request, if any (a job, run after commit)."""
    tracking = step["job_tracking"] or {}
    repository, number = tracking.get("pull_repository"), tracking.get("pull_number")
    if step["step_type"] != "TerraformFile" or not repository or not number or tracking.get("applied_sha"):
        return
    await enqueue(conn, CLOSE_TASK, {"repository": repository, "number": int(number),
                                     "request_id": request_id, "step_id": step["step_id"]},
                  queueing_lock=f"close-pull:{repository}#{number}")


def cancel_marker(request_id: str) -> str:
    """Hidden in the comment, so a retried job finds the comment it already wrote."""
    return f"<!-- pao-cancelled: {request_id} -->"


@task(CLOSE_TASK, max_attempts=5, retry_base=5.0)
async def close_pull(ctx: JobContext, repository: str, number: int, request_id: str,
                     step_id: str) -> dict[str, Any]:
    """Comment, close and delete the branch of a cancelled request's pull request; each step once."""
    try:
        client = await repo_client(ctx.github, repository, "TerraformFile", PERMISSIONS)
        pull = await guarded(client.api.getitem(f"/repos/{repository}/pulls/{number}"),
                             f"read pull request #{number}", PERMISSIONS)
        if pull.get("merged"):
            return {"merged": number}  # applied after all: its branch and history stay
        if pull.get("state") == "open":
            await _comment_once(client, number, request_id, step_id)
            await guarded(client.api.patch(f"/repos/{repository}/pulls/{number}", data={"state": "closed"}),
                          f"close pull request #{number}", PERMISSIONS)
        branch = str(pull["head"]["ref"])
        deleted = branch.startswith("pao/") and await _delete_branch(client, branch)
    except StepFailed as exc:
        if exc.retryable:
            raise
        raise PermanentJobError(exc.message) from None
    return {"closed": number, "branch_deleted": deleted}


async def _comment_once(client: RepoClient, number: int, request_id: str, step_id: str) -> None:
    url = f"/repos/{client.repository}/issues/{number}/comments"
    marker = cancel_marker(request_id)

    async def commented() -> bool:
        async for comment in client.api.getiter(url):
            if marker in str(comment.get("body") or ""):
                return True
        return False

    if await guarded(commented(), f"read the comments of pull request #{number}", PERMISSIONS):
        return
    await guarded(client.api.post(url, data={"body": (
        f"Request `{request_id}` was cancelled, so PAO closes this pull request (step `{step_id}`) "
        f"and deletes its branch.\n\n{marker}")}), f"comment on pull request #{number}", PERMISSIONS)


async def _delete_branch(client: RepoClient, branch: str) -> bool:
    """Delete ``branch``; False when it is already gone (GitHub answers 422 "Reference does not exist")."""
    async def delete() -> bool:
        try:
            await client.api.delete(f"/repos/{client.repository}/git/refs/heads/{quote(branch)}")
        except BadRequest as exc:
            if int(exc.status_code) in (404, 422):
                return False
            raise
        return True

    return bool(await guarded(delete(), f"delete branch {branch}", PERMISSIONS))
