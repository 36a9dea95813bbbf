"""GitHub for fulfilment steps: the installation's client, guarded calls, workflow runs and outputs.

``GitHubWorkflow`` and ``TerraformFile`` act through the App's installation on the target
repository (no other credentials). A run's outputs come from its ``pao-outputs`` artifact:
a zip holding one JSON object. GitHub answers an artifact download with a redirect to a
signed storage URL; that URL is fetched without the token, which must never leave GitHub.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

import aiohttp
from gidgethub import BadRequest, GitHubBroken, RateLimitExceeded
from gidgethub.abc import GitHubAPI

from app.github import GitHubAuthError
from app.httpbody import read_capped
from app.jobs import JobContext, PermanentJobError, enqueue, task
from app.requests.steps.base import StepContext, StepFailed, declared_outputs
from app.sync.tasks import repository_installation

OUTPUTS_ARTIFACT = "pao-outputs"
MAX_ARTIFACT_BYTES = 1024 * 1024  # outputs are a small JSON object; refuse anything larger
SUCCESS = ("success",)
NOT_FAILURES = ("success", "skipped", "neutral")
CANCEL_TASK = "requests.cancel_github_run"


@dataclass
class RepoClient:
    """A GitHub API client acting on one repository, and how to get its token for downloads."""

    api: GitHubAPI
    repository: str
    github: Any
    installation_id: int | None

    async def token(self) -> str:
        return str(await self.github.token(self.installation_id))


async def repo_client(github: Any, repository: str, step_type: str, permissions: str) -> RepoClient:
    """The installation's client for ``repository``; a clear permanent error when PAO cannot act there."""
    if github is None:
        raise StepFailed("not_configured", f"{step_type} steps act through the GitHub App; "
                         "set PAO_APP_ID and PAO_PRIVATE_KEY")
    try:
        installation = None
        if github.app_mode:
            installation = await guarded(repository_installation(github, repository), "find the App's "
                                         f"installation on {repository}", permissions)
            if installation is None:
                raise StepFailed("not_installed", f"the GitHub App is not installed on {repository}: "
                                 f"install it there with {permissions}", {"repository": repository})
        return RepoClient(await github.api(installation), repository, github, installation)
    except GitHubAuthError as exc:
        raise StepFailed("not_configured", f"{step_type} steps act through the GitHub App: {exc}") from None


async def guarded(call: Awaitable[Any], doing: str, permission: str, *, missing_ok: bool = False) -> Any:
    """Run a GitHub call; 5xx, rate limits and network errors are retryable, other 4xx are not.

    A 403 or 404 usually means the App lacks ``permission`` on the repository (GitHub hides
    what an installation may not see), so the message names what to grant. ``missing_ok``:
    a 404 is an answer (None), as when looking for a file or branch an attempt may have made.
    """
    try:
        return await call
    except RateLimitExceeded:
        raise StepFailed("github_error", f"GitHub rate limit reached while trying to {doing}",
                         retryable=True) from None
    except BadRequest as exc:
        status = int(exc.status_code)
        if status == 404 and missing_ok:
            return None
        if status in (403, 404):
            raise StepFailed("permission_missing" if status == 403 else "not_found",
                             f"GitHub answered {status} to {doing}: {exc}; check that it exists and grant "
                             f"the App {permission} on the repository", {"status": status}) from None
        raise StepFailed("github_error", f"GitHub refused to {doing} ({status}): {exc}",
                         {"status": status}, retryable=status == 429) from None
    except (GitHubBroken, aiohttp.ClientError, TimeoutError) as exc:
        raise StepFailed("github_error", f"GitHub unreachable while trying to {doing}: "
                         f"{type(exc).__name__}", retryable=True) from None


async def run_outputs(ctx: StepContext, client: RepoClient, run: dict[str, Any]) -> dict[str, Any]:
    """The declared outputs from the run's ``pao-outputs`` artifact (none declared: nothing read)."""
    if not ctx.outputs_declared:
        return {}
    listing = await guarded(client.api.getitem(
        f"/repos/{client.repository}/actions/runs/{run['id']}/artifacts?name={OUTPUTS_ARTIFACT}"),
        f"list the artifacts of run {run['id']}", "actions: read")
    found = [a for a in listing.get("artifacts", []) if a.get("name") == OUTPUTS_ARTIFACT]
    if not found or found[0].get("expired"):
        raise StepFailed("missing_output", f"workflow run {run.get('html_url')} has no {OUTPUTS_ARTIFACT} "
                         "artifact, so it has none of the declared outputs "
                         f"{', '.join(ctx.outputs_declared)}",
                         {"run_url": run.get("html_url")})
    data = await _download(ctx.http, client, found[0]["archive_download_url"])
    return declared_outputs(ctx, _artifact_json(data, run))


async def _download(http: aiohttp.ClientSession, client: RepoClient, url: str) -> bytes:
    headers = {"Authorization": f"token {await client.token()}", "Accept": "application/vnd.github+json"}
    try:
        async with http.get(url, headers=headers, allow_redirects=False) as resp:
            if resp.status in (301, 302, 303, 307, 308) and "Location" in resp.headers:
                location = resp.headers["Location"]
            elif resp.status == 200:
                return await read_capped(resp.content, MAX_ARTIFACT_BYTES)
            else:
                raise StepFailed("github_error", f"artifact download answered {resp.status}",
                                 {"status": resp.status}, retryable=resp.status >= 500)
        async with http.get(location) as blob:  # signed URL: no token
            if blob.status != 200:
                raise StepFailed("github_error", f"artifact storage answered {blob.status}",
                                 {"status": blob.status}, retryable=True)
            return await read_capped(blob.content, MAX_ARTIFACT_BYTES)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise StepFailed("github_error", f"artifact download failed: {type(exc).__name__}",
                         retryable=True) from None


def _artifact_json(data: bytes, run: dict[str, Any]) -> Any:
    """The JSON object inside the artifact zip (its one ``.json`` file)."""
    where = f"the {OUTPUTS_ARTIFACT} artifact of {run.get('html_url')}"
    if len(data) > MAX_ARTIFACT_BYTES:
        raise StepFailed("bad_output", f"{where} is larger than {MAX_ARTIFACT_BYTES} bytes")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = [n for n in archive.namelist() if n.endswith(".json")]
            if len(names) != 1:
                raise StepFailed("bad_output", f"{where} must hold exactly one .json file, found "
                                 f"{len(names)}")
            if archive.getinfo(names[0]).file_size > MAX_ARTIFACT_BYTES:
                raise StepFailed("bad_output", f"{where} is larger than {MAX_ARTIFACT_BYTES} bytes")
            return json.loads(archive.read(names[0]))
    except (zipfile.BadZipFile, ValueError) as exc:
        raise StepFailed("bad_output", f"{where} is not a zip holding a JSON object: {exc}") from None


def run_failed(run: dict[str, Any]) -> StepFailed:
    conclusion = run.get("conclusion")
    return StepFailed("workflow_failed", f"workflow run {run.get('html_url')} concluded {conclusion}",
                      {"run_url": run.get("html_url"), "run_id": run.get("id"), "conclusion": conclusion})


def run_tracking(run: dict[str, Any]) -> dict[str, Any]:
    """What ``job_tracking`` shows of a run: its id and URL."""
    return {"run_id": run["id"], "external_id": str(run["id"]), "tracking_url": run.get("html_url")}


async def queue_cancel(conn: Any, step: Any) -> None:
    """A cancelled request: ask GitHub to cancel the step's run, if it started one (a job, after commit)."""
    tracking = step["job_tracking"] or {}
    repository = tracking.get("run_repository")
    if tracking.get("run_id") and repository:
        await enqueue(conn, CANCEL_TASK, {"repository": repository, "run_id": int(tracking["run_id"])},
                      queueing_lock=f"cancel-run:{tracking['run_id']}")


@task(CANCEL_TASK, max_attempts=5, retry_base=5.0)
async def cancel_run(ctx: JobContext, repository: str, run_id: int) -> dict[str, Any]:
    """``POST .../actions/runs/{id}/cancel``; a run already finished (409) needs nothing."""
    try:
        client = await repo_client(ctx.github, repository, "GitHubWorkflow", "actions: write")
        await client.api.post(f"/repos/{repository}/actions/runs/{run_id}/cancel", data=b"")
    except BadRequest as exc:
        if int(exc.status_code) == 409:
            return {"already_finished": run_id}
        raise
    except StepFailed as exc:
        if exc.retryable:
            raise
        raise PermanentJobError(exc.message) from None
    return {"cancelled": run_id}
