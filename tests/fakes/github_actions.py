"""The GitHub fake's Actions, contents, git refs and pull requests (service-request steps).

``FakeActions`` holds the state and the route handlers for what the ``GitHubWorkflow``
and ``TerraformFile`` steps call; ``FakeGitHub`` creates one as ``fake.actions`` and mounts
its routes. Shapes follow GitHub's REST description (checked like every fake answer);
artifacts are real zip files, downloaded as on GitHub: the API answers ``302`` to a
short-lived blob URL that must be fetched without the token.

Test-facing API:

- ``add_workflow(repo, "deploy.yml")`` -> workflow id; ``dispatch_returns_run_details``
  (False: answer ``204`` as older GitHub Enterprise Server does).
- ``start_run(repo, workflow, head_sha=..., event="push")`` -> run; ``runs`` (id -> run).
- ``complete_run(run_id, "success", outputs={...})`` -> a ``workflow_run`` ``completed``
  delivery; outputs become a ``pao-outputs`` artifact (a zip holding ``outputs.json``).
- ``lose_next_answer.add("dispatch" | "pull" | "comment" | "close")``: the next such call
  (dispatch, open a pull request, comment on one, update one) does its work and answers 502.
- ``add_check_suite(repo, sha, app_slug="atlantis")`` -> suite (set ``status``/``conclusion``).
- ``pulls`` (full name -> number -> pull); ``merge_pull(full_name, number)`` /
  ``close_pull(...)`` -> a ``pull_request`` ``closed`` delivery. PAO may close one
  (``PATCH .../pulls/{n}``), comment on it (``.../issues/{n}/comments``, kept in the
  pull's ``comments``) and delete its branch (``DELETE .../git/refs/heads/...``: 204, and
  422 "Reference does not exist" once gone, as GitHub answers).
"""

from __future__ import annotations

import base64
import hashlib
import io
import itertools
import json
import secrets
import time
import zipfile
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.fakes.github_repo import FakeRepo
from tests.fakes.github_repo import iso_time as _iso
from tests.fakes.github_repo import node_id as _node_id

if TYPE_CHECKING:
    from tests.fakes.github import FakeGitHub, Principal

OUTPUTS_ARTIFACT = "pao-outputs"
MAX_INPUTS = 25  # GitHub refuses a dispatch with more inputs


class FakeActions:
    """Workflows, runs, artifacts, file contents, refs and pull requests of the fake's repositories."""

    def __init__(self, fake: FakeGitHub):
        self.fake = fake
        self.workflows: dict[str, dict[str, int]] = {}  # full name -> file name -> id
        self.runs: dict[int, dict[str, Any]] = {}
        self.pulls: dict[str, dict[int, dict[str, Any]]] = {}
        self.check_suites: list[dict[str, Any]] = []  # other Apps' suites (Atlantis...)
        self.blobs: dict[str, bytes] = {}  # signed blob token -> zip bytes
        self.blob_requests: list[dict[str, Any]] = []
        self.dispatch_returns_run_details = True
        self.run_names: dict[tuple[str, int], str] = {}
        # "dispatch" / "pull": do the work once, then answer 502 as if the answer was lost.
        self.lose_next_answer: set[str] = set()
        self._ids = itertools.count(70000)

    # ----- test helpers -----------------------------------------------------------------

    def add_workflow(self, repo: FakeRepo, file_name: str, *,
                     run_name: str = "${{ inputs.pao_step_id }}") -> int:
        """A workflow; ``run_name`` is its ``run-name`` (``${{ inputs.NAME }}`` is substituted)."""
        workflow_id = next(self._ids)
        self.workflows.setdefault(repo.full_name, {})[file_name] = workflow_id
        self.run_names[(repo.full_name, workflow_id)] = run_name
        return workflow_id

    def _workflow(self, repo: FakeRepo, key: str) -> tuple[str, int] | None:
        for name, workflow_id in self.workflows.get(repo.full_name, {}).items():
            if key in (name, str(workflow_id)):
                return name, workflow_id
        return None

    def start_run(self, repo: FakeRepo, workflow: str, *, head_sha: str | None = None,
                  head_branch: str | None = None, event: str = "push",
                  inputs: dict[str, Any] | None = None) -> dict[str, Any]:
        found = self._workflow(repo, workflow)
        if found is None:
            raise KeyError(f"no workflow {workflow} in {repo.full_name}")
        head_branch = head_branch or repo.default_branch
        run_id = next(self._ids)
        run = {"id": run_id, "repository": repo.full_name, "workflow": found[0], "workflow_id": found[1],
               "head_branch": head_branch, "head_sha": head_sha or repo.sha(f"refs/heads/{head_branch}"),
               "event": event, "status": "queued", "conclusion": None, "inputs": dict(inputs or {}),
               "created_at": time.time(), "artifacts": [], "run_number": len(self.runs) + 1,
               "cancel_requested": False}
        title = self.run_names.get((repo.full_name, found[1]), "")
        for name, value in run["inputs"].items():
            title = title.replace("${{ inputs." + name + " }}", str(value))
        run["display_title"] = title if inputs and "${{" not in title else found[0]
        self.runs[run_id] = run
        return run

    def add_check_suite(self, repo: FakeRepo, head_sha: str, *, app_slug: str = "atlantis") -> dict[str, Any]:
        """Another App's check suite on a commit (an apply that is not a workflow run)."""
        suite = {"id": next(self._ids), "repository": repo.full_name, "head_sha": head_sha,
                 "app_slug": app_slug, "status": "queued", "conclusion": None, "created_at": time.time()}
        self.check_suites.append(suite)
        return suite

    def check_suite_json(self, repo: FakeRepo, suite: dict[str, Any]) -> dict[str, Any]:
        app = dict(self.fake.app_json())
        app.update(id=suite["id"] % 1000 + 1, slug=suite["app_slug"], name=suite["app_slug"].title(),
                   node_id=_node_id("Integration", suite["id"] % 1000 + 1))
        api = f"{self.fake.url}/repos/{repo.full_name}/check-suites/{suite['id']}"
        commit = repo.commit_payload(suite["head_sha"])
        return {"id": suite["id"], "node_id": _node_id("CheckSuite", suite["id"]),
                "head_branch": repo.default_branch, "head_sha": suite["head_sha"], "status": suite["status"],
                "conclusion": suite["conclusion"], "url": api, "before": None, "after": suite["head_sha"],
                "pull_requests": [], "app": app, "repository": repo.to_json(),
                "created_at": _iso(suite["created_at"]), "updated_at": _iso(suite["created_at"]),
                "latest_check_runs_count": 1, "check_runs_url": f"{api}/check-runs",
                "head_commit": {"id": suite["head_sha"], "tree_id": commit["tree_id"],
                                "message": commit["message"], "timestamp": commit["timestamp"],
                                "author": {"name": "Test Author", "email": "author@example.com"},
                                "committer": {"name": "Test Author", "email": "author@example.com"}},
                "rerequestable": True, "runs_rerequestable": True}

    def runs_of(self, workflow: str) -> list[dict[str, Any]]:
        return [r for r in self.runs.values() if r["workflow"] == workflow]

    def complete_run(self, run_id: int, conclusion: str = "success", *,
                     outputs: dict[str, Any] | None = None) -> dict[str, Any]:
        """Finish a run (with a ``pao-outputs`` artifact when ``outputs``); its ``workflow_run`` delivery."""
        run = self.runs[run_id]
        run["status"], run["conclusion"] = "completed", conclusion
        if outputs is not None:
            buffer = io.BytesIO()
            with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
                archive.writestr("outputs.json", json.dumps(outputs))
            run["artifacts"].append({"id": next(self._ids), "name": OUTPUTS_ARTIFACT,
                                     "zip": buffer.getvalue(), "created_at": time.time()})
        return self.workflow_run_payload(run_id)

    def workflow_run_payload(self, run_id: int, action: str = "completed") -> dict[str, Any]:
        """A ``workflow_run`` delivery, shaped like GitHub's published example."""
        run = self.runs[run_id]
        repo = self.fake.repo(run["repository"])
        workflow_api = f"{self.fake.url}/repos/{repo.full_name}/actions/workflows/{run['workflow_id']}"
        return {"action": action, "workflow_run": self.run_json(run),
                "workflow": {"id": run["workflow_id"], "node_id": _node_id("Workflow", run["workflow_id"]),
                             "name": run["workflow"], "path": f".github/workflows/{run['workflow']}",
                             "state": "active", "created_at": _iso(run["created_at"]),
                             "updated_at": _iso(run["created_at"]), "url": workflow_api,
                             "html_url": f"{self.fake.url}/{repo.full_name}/blob/main/.github/workflows/"
                                         f"{run['workflow']}",
                             "badge_url": f"{self.fake.url}/{repo.full_name}/workflows/"
                                          f"{run['workflow']}/badge.svg"},
                "repository": repo.to_json(), "sender": self.fake.account_json("octocat"),
                **self.fake._event_installation(self.fake._installation_for(repo))}

    def merge_pull(self, full_name: str, number: int) -> dict[str, Any]:
        """Merge a pull request as a person would (a merge commit on the base)."""
        repo = self.fake.repo(full_name)
        pull = self.pulls[repo.full_name][number]
        head = repo.sha(f"refs/heads/{pull['head']}")
        base = repo.sha(f"refs/heads/{pull['base']}")
        assert head is not None and base is not None
        tree = repo.git("rev-parse", f"{head}^{{tree}}")
        merge = repo.git("commit-tree", tree, "-p", base, "-p", head, "-m",
                         f"Merge pull request #{number} from {repo.owner}/{pull['head']}",
                         env={"GIT_AUTHOR_NAME": "octocat", "GIT_AUTHOR_EMAIL": "octocat@example.com",
                              "GIT_COMMITTER_NAME": "GitHub", "GIT_COMMITTER_EMAIL": "noreply@github.com"})
        repo.set_ref(f"refs/heads/{pull['base']}", merge)
        pull.update(state="closed", merged=True, merge_commit_sha=merge, closed_at=time.time(),
                    head_sha=head)
        return self.pull_closed_payload(repo, pull)

    def close_pull(self, full_name: str, number: int) -> dict[str, Any]:
        repo = self.fake.repo(full_name)
        pull = self.pulls[repo.full_name][number]
        pull.update(state="closed", closed_at=time.time())
        return self.pull_closed_payload(repo, pull)

    def pull_closed_payload(self, repo: FakeRepo, pull: dict[str, Any]) -> dict[str, Any]:
        return {"action": "closed", "number": pull["number"], "pull_request": self.pull_json(repo, pull),
                "repository": repo.to_json(), "sender": self.fake.account_json("octocat"),
                **self.fake._event_installation(self.fake._installation_for(repo))}

    # ----- JSON shapes --------------------------------------------------------------------

    def run_json(self, run: dict[str, Any]) -> dict[str, Any]:
        repo = self.fake.repo(run["repository"])
        api = f"{self.fake.url}/repos/{repo.full_name}/actions/runs/{run['id']}"
        minimal = repo.to_json()
        commit = repo.commit_payload(run["head_sha"]) if run["head_sha"] else {}
        return {
            "id": run["id"], "node_id": _node_id("WorkflowRun", run["id"]), "name": run["workflow"],
            "head_branch": run["head_branch"], "head_sha": run["head_sha"],
            "path": f".github/workflows/{run['workflow']}", "display_title": run["display_title"],
            "run_number": run["run_number"], "run_attempt": 1, "event": run["event"],
            "status": run["status"], "conclusion": run["conclusion"], "workflow_id": run["workflow_id"],
            "check_suite_id": run["id"] + 1, "url": api,
            "html_url": f"{self.fake.url}/{repo.full_name}/actions/runs/{run['id']}",
            "pull_requests": [], "created_at": _iso(run["created_at"]),
            "updated_at": _iso(run["created_at"]), "run_started_at": _iso(run["created_at"]),
            "jobs_url": f"{api}/jobs", "logs_url": f"{api}/logs",
            "check_suite_url": f"{self.fake.url}/repos/{repo.full_name}/check-suites/{run['id'] + 1}",
            "artifacts_url": f"{api}/artifacts", "cancel_url": f"{api}/cancel", "rerun_url": f"{api}/rerun",
            "workflow_url": f"{self.fake.url}/repos/{repo.full_name}/actions/workflows/{run['workflow_id']}",
            "head_commit": {"id": run["head_sha"], "tree_id": commit.get("tree_id", run["head_sha"]),
                            "message": commit.get("message", ""),
                            "timestamp": commit.get("timestamp", _iso(run["created_at"])),
                            "author": {"name": "Test Author", "email": "author@example.com"},
                            "committer": {"name": "Test Author", "email": "author@example.com"}},
            "repository": minimal, "head_repository": minimal,
        }

    def artifact_json(self, repo: FakeRepo, artifact: dict[str, Any]) -> dict[str, Any]:
        api = f"{self.fake.url}/repos/{repo.full_name}/actions/artifacts/{artifact['id']}"
        return {"id": artifact["id"], "node_id": _node_id("Artifact", artifact["id"]),
                "name": artifact["name"], "size_in_bytes": len(artifact["zip"]), "url": api,
                "archive_download_url": f"{api}/zip", "expired": False,
                "created_at": _iso(artifact["created_at"]),
                "expires_at": _iso(artifact["created_at"] + 90 * 86400),
                "updated_at": _iso(artifact["created_at"]),
                "digest": "sha256:" + hashlib.sha256(artifact["zip"]).hexdigest()}

    def pull_json(self, repo: FakeRepo, pull: dict[str, Any], *, simple: bool = False) -> dict[str, Any]:
        api = f"{self.fake.url}/repos/{repo.full_name}/pulls/{pull['number']}"
        html = f"{self.fake.url}/{repo.full_name}/pull/{pull['number']}"
        issue = f"{self.fake.url}/repos/{repo.full_name}/issues/{pull['number']}"
        repo_json = repo.to_json()
        owner = self.fake.account_json(repo.owner)
        head_sha = pull.get("head_sha") or repo.sha(f"refs/heads/{pull['head']}") or ""
        data: dict[str, Any] = {
            "url": api, "id": pull["id"], "node_id": _node_id("PullRequest", pull["id"]),
            "html_url": html, "diff_url": html + ".diff", "patch_url": html + ".patch", "issue_url": issue,
            "commits_url": api + "/commits", "review_comments_url": api + "/comments",
            "review_comment_url": f"{self.fake.url}/repos/{repo.full_name}/pulls/comments{{/number}}",
            "comments_url": issue + "/comments",
            "statuses_url": f"{self.fake.url}/repos/{repo.full_name}/statuses/{head_sha}",
            "number": pull["number"], "state": pull["state"], "locked": False, "title": pull["title"],
            "user": self.fake.account_json(f"{self.fake.app_key.slug}[bot]", "Bot"), "body": pull["body"],
            "labels": [], "milestone": None, "active_lock_reason": None,
            "created_at": _iso(pull["created_at"]), "updated_at": _iso(pull["created_at"]),
            "closed_at": _iso(pull["closed_at"]) if pull.get("closed_at") else None,
            "merged_at": _iso(pull["closed_at"]) if pull.get("merged") else None,
            "merge_commit_sha": pull.get("merge_commit_sha"), "assignee": None, "assignees": [],
            "requested_reviewers": [], "requested_teams": [],
            "head": {"label": f"{repo.owner}:{pull['head']}", "ref": pull["head"], "sha": head_sha,
                     "user": owner, "repo": repo_json},
            "base": {"label": f"{repo.owner}:{pull['base']}", "ref": pull["base"],
                     "sha": pull["base_sha"], "user": owner, "repo": repo_json},
            "_links": {name: {"href": href} for name, href in (
                ("self", api), ("html", html), ("issue", issue), ("comments", issue + "/comments"),
                ("review_comments", api + "/comments"),
                ("review_comment", f"{self.fake.url}/repos/{repo.full_name}/pulls/comments{{/number}}"),
                ("commits", api + "/commits"),
                ("statuses", f"{self.fake.url}/repos/{repo.full_name}/statuses/{head_sha}"))},
            "author_association": "NONE", "auto_merge": None, "draft": False,
        }
        if not simple:
            data.update({"merged": bool(pull.get("merged")), "mergeable": None, "rebaseable": None,
                         "mergeable_state": "unknown", "merged_by": None, "comments": 0,
                         "review_comments": 0, "maintainer_can_modify": False, "commits": 1,
                         "additions": 1, "deletions": 0, "changed_files": 1})
        return data

    def _content_json(self, repo: FakeRepo, path: str, ref: str, data: bytes) -> dict[str, Any]:
        sha = repo.git("rev-parse", f"{ref}:{path}")
        api = f"{self.fake.url}/repos/{repo.full_name}/contents/{path}"
        html = f"{self.fake.url}/{repo.full_name}/blob/{ref}/{path}"
        git = f"{self.fake.url}/repos/{repo.full_name}/git/blobs/{sha}"
        return {"type": "file", "encoding": "base64", "size": len(data), "name": path.rsplit("/", 1)[-1],
                "path": path, "content": base64.b64encode(data).decode(), "sha": sha,
                "url": f"{api}?ref={ref}", "git_url": git, "html_url": html,
                "download_url": f"{self.fake.url}/raw/{repo.full_name}/{ref}/{path}",
                "_links": {"self": f"{api}?ref={ref}", "git": git, "html": html}}

    def _ref_json(self, repo: FakeRepo, ref: str, sha: str) -> dict[str, Any]:
        return {"ref": ref, "node_id": _node_id("Ref", int(sha[:6], 16)),
                "url": f"{self.fake.url}/repos/{repo.full_name}/git/{ref}",
                "object": {"type": "commit", "sha": sha,
                           "url": f"{self.fake.url}/repos/{repo.full_name}/git/commits/{sha}"}}

    # ----- routes -------------------------------------------------------------------------

    def add_routes(self, r: web.UrlDispatcher) -> None:
        base = "/repos/{owner}/{repo}"
        r.add_post(base + "/actions/workflows/{workflow_id}/dispatches", self._dispatch)
        r.add_get(base + "/actions/workflows/{workflow_id}/runs", self._list_runs)
        r.add_get(base + "/actions/runs", self._list_runs)
        r.add_get(base + "/actions/runs/{run_id:\\d+}", self._get_run)
        r.add_post(base + "/actions/runs/{run_id:\\d+}/cancel", self._cancel_run)
        r.add_get(base + "/actions/runs/{run_id:\\d+}/artifacts", self._run_artifacts)
        r.add_get(base + "/actions/artifacts/{artifact_id:\\d+}/{archive_format}", self._download)
        r.add_get("/_blobs/{token}", self._blob, name="artifact_blob")
        r.add_get(base + "/contents/{path:.+}", self._get_contents)
        r.add_put(base + "/contents/{path:.+}", self._put_contents)
        r.add_get(base + "/git/ref/{ref:.+}", self._get_ref)
        r.add_post(base + "/git/refs", self._create_ref)
        r.add_get(base + "/commits/{ref}/check-suites", self._check_suites)
        r.add_get(base + "/pulls", self._list_pulls)
        r.add_post(base + "/pulls", self._create_pull)
        r.add_get(base + "/pulls/{number:\\d+}", self._get_pull)
        r.add_patch(base + "/pulls/{number:\\d+}", self._update_pull)
        r.add_get(base + "/issues/{number:\\d+}/comments", self._list_pull_comments)
        r.add_post(base + "/issues/{number:\\d+}/comments", self._comment_pull)
        r.add_delete(base + "/git/refs/{ref:.+}", self._delete_ref)

    def _maybe_lose(self, what: str) -> None:
        from tests.fakes.github import ApiError

        if what in self.lose_next_answer:
            self.lose_next_answer.discard(what)
            raise ApiError(502, "Server Error")

    def _repo(self, request: web.Request, permission: str, level: str) -> tuple[FakeRepo, Principal]:
        """The repository, if the caller may use ``permission`` at ``level`` (read or write) on it."""
        from tests.fakes.github import ApiError

        principal = self.fake._require(request, "installation", "user")
        repo = self.fake._visible_repo(request, principal)
        if principal.kind == "installation":
            assert principal.installation is not None
            have = principal.installation.permissions.get(permission)
            if not principal.installation.covers(repo) or have not in (
                    ("write",) if level == "write" else ("read", "write")):
                raise ApiError(403, "Resource not accessible by integration",
                               headers={"X-Accepted-GitHub-Permissions": f"{permission}={level}"})
        return repo, principal

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        from tests.fakes.github import BODY, ApiError, _json

        repo, _ = self._repo(request, "actions", "write")
        found = self._workflow(repo, request.match_info["workflow_id"])
        if found is None:
            raise ApiError(404, "Not Found")
        body = request[BODY] or {}
        ref = str(body.get("ref") or "")
        branch = ref.removeprefix("refs/heads/")
        if not ref or (repo.sha(f"refs/heads/{branch}") is None and repo.sha(f"refs/tags/{ref}") is None):
            raise ApiError(422, f"No ref found for: {ref}")
        inputs = body.get("inputs") or {}
        if len(inputs) > MAX_INPUTS:
            raise ApiError(422, f"you may only define up to {MAX_INPUTS} `inputs` for a workflow_dispatch "
                                "event")
        run = self.start_run(repo, found[0], head_branch=branch, event="workflow_dispatch", inputs=inputs)
        self._maybe_lose("dispatch")
        if self.dispatch_returns_run_details and body.get("return_run_details"):
            return _json({"workflow_run_id": run["id"],
                          "run_url": f"{self.fake.url}/repos/{repo.full_name}/actions/runs/{run['id']}",
                          "html_url": f"{self.fake.url}/{repo.full_name}/actions/runs/{run['id']}"})
        return web.Response(status=204)

    async def _list_runs(self, request: web.Request) -> web.StreamResponse:
        from tests.fakes.github import ApiError, _json, _paginate

        repo, _ = self._repo(request, "actions", "read")
        runs = [r for r in self.runs.values() if r["repository"] == repo.full_name]
        if "workflow_id" in request.match_info:
            found = self._workflow(repo, request.match_info["workflow_id"])
            if found is None:
                raise ApiError(404, "Not Found")
            runs = [r for r in runs if r["workflow_id"] == found[1]]
        q = request.query
        for key in ("event", "head_sha", "status"):
            if key in q:
                runs = [r for r in runs if r[key] == q[key]]
        if "branch" in q:
            runs = [r for r in runs if r["head_branch"] == q["branch"]]
        if "created" in q and q["created"].startswith(">="):
            since = q["created"][2:]
            runs = [r for r in runs if _iso(r["created_at"]) >= since]
        runs.sort(key=lambda r: -r["id"])
        page, links = _paginate(request, runs)
        return _json({"total_count": len(runs), "workflow_runs": [self.run_json(r) for r in page]},
                     headers=links)

    def _run(self, request: web.Request, repo: FakeRepo) -> dict[str, Any]:
        from tests.fakes.github import ApiError

        run = self.runs.get(int(request.match_info["run_id"]))
        if run is None or run["repository"] != repo.full_name:
            raise ApiError(404, "Not Found")
        return run

    async def _get_run(self, request: web.Request) -> web.StreamResponse:
        from tests.fakes.github import _json

        repo, _ = self._repo(request, "actions", "read")
        return _json(self.run_json(self._run(request, repo)))

    async def _cancel_run(self, request: web.Request) -> web.StreamResponse:
        from tests.fakes.github import ApiError, _json

        repo, _ = self._repo(request, "actions", "write")
        run = self._run(request, repo)
        if run["status"] == "completed":
            raise ApiError(409, "Cannot cancel a workflow run that is completed.")
        run["cancel_requested"] = True
        run["status"], run["conclusion"] = "completed", "cancelled"
        return _json({}, status=202)

    async def _run_artifacts(self, request: web.Request) -> web.StreamResponse:
        from tests.fakes.github import _json, _paginate

        repo, _ = self._repo(request, "actions", "read")
        run = self._run(request, repo)
        found = [a for a in run["artifacts"] if request.query.get("name") in (None, a["name"])]
        page, links = _paginate(request, found)
        return _json({"total_count": len(found), "artifacts": [self.artifact_json(repo, a) for a in page]},
                     headers=links)

    async def _download(self, request: web.Request) -> web.StreamResponse:
        from tests.fakes.github import ApiError

        repo, _ = self._repo(request, "actions", "read")
        if request.match_info["archive_format"] != "zip":
            raise ApiError(404, "Not Found")
        artifact_id = int(request.match_info["artifact_id"])
        for run in self.runs.values():
            for artifact in run["artifacts"]:
                if artifact["id"] == artifact_id and run["repository"] == repo.full_name:
                    token = secrets.token_urlsafe(16)
                    self.blobs[token] = artifact["zip"]
                    raise web.HTTPFound(f"{self.fake.url}/_blobs/{token}?sig={token[:8]}")
        raise ApiError(404, "Not Found")

    async def _blob(self, request: web.Request) -> web.StreamResponse:
        """The storage behind an artifact URL: signed by its query, refusing any Authorization header."""
        self.blob_requests.append({"path": request.path, "authorization": "Authorization" in request.headers})
        if "Authorization" in request.headers:
            return web.Response(status=400, text="Authentication information is not given in the correct "
                                                 "format.")
        data = self.blobs.get(request.match_info["token"])
        if data is None:
            return web.Response(status=403, text="Server failed to authenticate the request.")
        return web.Response(body=data, content_type="application/zip")

    async def _get_contents(self, request: web.Request) -> web.StreamResponse:
        from tests.fakes.github import ApiError, _json

        repo, _ = self._repo(request, "contents", "read")
        ref = request.query.get("ref") or repo.default_branch
        path = request.match_info["path"]
        data = repo.read(path, ref) if repo.sha(ref) else None
        if data is None:
            raise ApiError(404, "Not Found")
        return _json(self._content_json(repo, path, ref, data))

    async def _put_contents(self, request: web.Request) -> web.StreamResponse:
        from tests.fakes.github import BODY, ApiError, _json

        repo, _ = self._repo(request, "contents", "write")
        body = request[BODY] or {}
        path = request.match_info["path"]
        branch = body.get("branch") or repo.default_branch
        if repo.sha(f"refs/heads/{branch}") is None:
            raise ApiError(404, f"Branch {branch} not found")
        existing = repo.read(path, branch)
        if existing is not None:
            current = repo.git("rev-parse", f"{branch}:{path}")
            if not body.get("sha"):
                raise ApiError(422, "Invalid request.\n\n\"sha\" wasn't supplied.")
            if body["sha"] != current:
                raise ApiError(409, f"{path} does not match {body['sha']}")
        content = base64.b64decode(body["content"])
        sha = repo.commit({path: content}, str(body["message"]), branch=branch)
        data = self._content_json(repo, path, branch, content)
        data.pop("encoding")
        data.pop("content")
        commit = repo.commit_payload(sha)
        commit_json = {"sha": sha, "node_id": _node_id("Commit", int(sha[:6], 16)),
                       "url": f"{self.fake.url}/repos/{repo.full_name}/git/commits/{sha}",
                       "html_url": f"{self.fake.url}/{repo.full_name}/commit/{sha}",
                       "author": {"name": "pao", "email": "pao@example.com", "date": commit["timestamp"]},
                       "committer": {"name": "pao", "email": "pao@example.com", "date": commit["timestamp"]},
                       "message": str(body["message"]), "tree": {"sha": commit["tree_id"], "url": ""},
                       "parents": [], "verification": {"verified": False, "reason": "unsigned",
                                                       "signature": None, "payload": None,
                                                       "verified_at": None}}
        return _json({"content": data, "commit": commit_json}, status=200 if existing is not None else 201)

    async def _get_ref(self, request: web.Request) -> web.StreamResponse:
        from tests.fakes.github import ApiError, _json

        repo, _ = self._repo(request, "contents", "read")
        ref = "refs/" + request.match_info["ref"]
        sha = repo.sha(ref) if ref.startswith(("refs/heads/", "refs/tags/")) else None
        if sha is None:
            raise ApiError(404, "Not Found")
        return _json(self._ref_json(repo, ref, sha))

    async def _create_ref(self, request: web.Request) -> web.StreamResponse:
        from tests.fakes.github import BODY, ApiError, _json

        repo, _ = self._repo(request, "contents", "write")
        body = request[BODY] or {}
        ref, sha = str(body["ref"]), str(body["sha"])
        if not ref.startswith("refs/") or ref.count("/") < 2:
            raise ApiError(422, "Reference name is not well formed.")
        if repo.sha(ref) is not None:
            raise ApiError(422, "Reference already exists")
        if repo.sha(sha) != sha:
            raise ApiError(422, "Object does not exist")
        repo.set_ref(ref, sha)
        return _json(self._ref_json(repo, ref, sha), status=201)

    async def _check_suites(self, request: web.Request) -> web.StreamResponse:
        from tests.fakes.github import ApiError, _json, _paginate

        repo, _ = self._repo(request, "checks", "read")
        sha = repo.sha(request.match_info["ref"])
        if sha is None:
            raise ApiError(422, f"No commit found for SHA: {request.match_info['ref']}")
        found = [s for s in self.check_suites if s["repository"] == repo.full_name and s["head_sha"] == sha]
        page, links = _paginate(request, found)
        return _json({"total_count": len(found),
                      "check_suites": [self.check_suite_json(repo, s) for s in page]}, headers=links)

    async def _list_pulls(self, request: web.Request) -> web.StreamResponse:
        from tests.fakes.github import _json, _paginate

        repo, _ = self._repo(request, "pull_requests", "read")
        state = request.query.get("state", "open")
        head = request.query.get("head")
        found = [p for p in self.pulls.get(repo.full_name, {}).values()
                 if state in ("all", p["state"]) and (head is None or head == f"{repo.owner}:{p['head']}")]
        found.sort(key=lambda p: -p["number"])
        page, links = _paginate(request, found)
        return _json([self.pull_json(repo, p, simple=True) for p in page], headers=links)

    async def _create_pull(self, request: web.Request) -> web.StreamResponse:
        from tests.fakes.github import BODY, ApiError, _json

        repo, _ = self._repo(request, "pull_requests", "write")
        body = request[BODY] or {}
        head, base = str(body.get("head", "")).split(":")[-1], str(body.get("base", ""))
        if repo.sha(f"refs/heads/{head}") is None or repo.sha(f"refs/heads/{base}") is None:
            raise ApiError(422, "Validation Failed", extra={"errors": [
                {"resource": "PullRequest", "field": "head" if repo.sha(f"refs/heads/{head}") is None
                 else "base", "code": "invalid"}]})
        pulls = self.pulls.setdefault(repo.full_name, {})
        if any(p["head"] == head and p["state"] == "open" for p in pulls.values()):
            raise ApiError(422, "Validation Failed", extra={"errors": [
                {"resource": "PullRequest", "code": "custom",
                 "message": f"A pull request already exists for {repo.owner}:{head}."}]})
        number = len(pulls) + 1
        pull = {"id": next(self._ids), "number": number, "title": str(body.get("title", "")),
                "body": body.get("body"), "head": head, "base": base,
                "base_sha": repo.sha(f"refs/heads/{base}"), "state": "open", "merged": False,
                "merge_commit_sha": None, "created_at": time.time(), "closed_at": None, "comments": []}
        pulls[number] = pull
        self._maybe_lose("pull")
        return _json(self.pull_json(repo, pull), status=201)

    async def _get_pull(self, request: web.Request) -> web.StreamResponse:
        from tests.fakes.github import ApiError, _json

        repo, _ = self._repo(request, "pull_requests", "read")
        pull = self.pulls.get(repo.full_name, {}).get(int(request.match_info["number"]))
        if pull is None:
            raise ApiError(404, "Not Found")
        return _json(self.pull_json(repo, pull))

    def _pull(self, repo: FakeRepo, request: web.Request) -> dict[str, Any]:
        from tests.fakes.github import ApiError

        pull = self.pulls.get(repo.full_name, {}).get(int(request.match_info["number"]))
        if pull is None:
            raise ApiError(404, "Not Found")
        return pull

    async def _update_pull(self, request: web.Request) -> web.StreamResponse:
        from tests.fakes.github import BODY, ApiError, _json

        repo, _ = self._repo(request, "pull_requests", "write")
        pull = self._pull(repo, request)
        body = request[BODY] or {}
        state = body.get("state")
        if state == "open" and pull["merged"]:
            raise ApiError(422, "Validation Failed", extra={"errors": [
                {"resource": "PullRequest", "code": "custom", "message": "state cannot be changed. "
                 "The pull request cannot be reopened because it was merged."}]})
        if state in ("open", "closed") and state != pull["state"]:
            pull.update(state=state, closed_at=time.time() if state == "closed" else None)
        for key in ("title", "body", "base"):
            if key in body:
                pull[key] = body[key]
        self._maybe_lose("close")
        return _json(self.pull_json(repo, pull))

    def _comment_json(self, repo: FakeRepo, pull: dict[str, Any], comment: dict[str, Any]) -> dict[str, Any]:
        issue = f"{self.fake.url}/repos/{repo.full_name}/issues/{pull['number']}"
        return {"id": comment["id"], "node_id": _node_id("IssueComment", comment["id"]),
                "url": f"{self.fake.url}/repos/{repo.full_name}/issues/comments/{comment['id']}",
                "html_url": f"{self.fake.url}/{repo.full_name}/pull/{pull['number']}"
                            f"#issuecomment-{comment['id']}",
                "body": comment["body"], "user": self.fake.account_json(comment["user"]),
                "created_at": _iso(comment["created_at"]), "updated_at": _iso(comment["created_at"]),
                "issue_url": issue, "author_association": "NONE"}

    async def _list_pull_comments(self, request: web.Request) -> web.StreamResponse:
        """A pull request's conversation (GitHub serves it as the issue's comments), oldest first."""
        from tests.fakes.github import _json, _paginate

        repo, _ = self._repo(request, "pull_requests", "read")
        pull = self._pull(repo, request)
        page, links = _paginate(request, pull["comments"])
        return _json([self._comment_json(repo, pull, c) for c in page], headers=links)

    async def _comment_pull(self, request: web.Request) -> web.StreamResponse:
        from tests.fakes.github import BODY, ApiError, _json

        repo, principal = self._repo(request, "pull_requests", "write")
        pull = self._pull(repo, request)
        body = request[BODY] or {}
        if not str(body.get("body") or "").strip():
            raise ApiError(422, "Validation Failed", extra={"errors": [
                {"resource": "IssueComment", "field": "body", "code": "missing_field"}]})
        comment = {"id": next(self._ids), "body": str(body["body"]), "created_at": time.time(),
                   "user": "pao[bot]" if principal.kind == "installation" else str(principal.login)}
        pull["comments"].append(comment)
        self._maybe_lose("comment")
        return _json(self._comment_json(repo, pull, comment), status=201)

    async def _delete_ref(self, request: web.Request) -> web.StreamResponse:
        from tests.fakes.github import ApiError

        repo, _ = self._repo(request, "contents", "write")
        ref = "refs/" + request.match_info["ref"]
        if not ref.startswith(("refs/heads/", "refs/tags/")) or repo.sha(ref) is None:
            raise ApiError(422, "Reference does not exist")
        repo.git("update-ref", "-d", ref)
        return web.Response(status=204)
