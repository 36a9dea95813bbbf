"""GitHubWorkflow and TerraformFile steps against the GitHub fake: pull requests, runs, artifacts."""

from __future__ import annotations

import dataclasses

import pytest

from tests.requests_support import status_of, sync_catalog
from tests.support import wait_for, webhook

# A database written as Terraform by pull request; a ticket when that fails.
APP_DATABASE = '''\
name: "app-database"
version: "1.0.0"
description: "A database, by Terraform"
owner: "platform-data-team"
presentation:
  fields:
    - {name: "database_name", type: "string", required: true, regexp: "^[a-z][a-z0-9_]*$"}
fulfillment:
  automation:
    steps:
      - id: "provision"
        type: "TerraformFile"
        on_failure: "manual"
        config:
          repository: "platform/infrastructure"
          path: "databases/{{ database_name }}.tf"
          template: |
            module "{{ database_name }}" {
              owner_team = "{{ requester.team }}"
            }
        outputs: ["connection_string"]
  manual:
    system: "github"
    template:
      repository: "platform/requests"
      summary: "Create database {{ database_name }} by hand"
'''

# The same, committed straight to the default branch.
APP_DATABASE_DIRECT = APP_DATABASE.replace(
    'name: "app-database"', 'name: "app-database-direct"').replace(
    'path: "databases/', 'mode: "commit"\n          path: "databases/')

# Committed straight, applied by another App's checks (Atlantis), nothing expected back.
APP_DATABASE_ATLANTIS = APP_DATABASE_DIRECT.replace(
    'name: "app-database-direct"', 'name: "app-database-atlantis"').replace(
    '        outputs: ["connection_string"]\n', '')

# Dashboards by a dispatched workflow; a ticket when the workflow fails.
APP_DASHBOARDS = '''\
name: "app-dashboards"
version: "1.0.0"
description: "Dashboards, by a GitHub workflow"
owner: "platform-observability-team"
presentation:
  fields:
    - {name: "service_name", type: "string", required: true}
fulfillment:
  automation:
    steps:
      - id: "create"
        type: "GitHubWorkflow"
        on_failure: "manual"
        config:
          repository: "platform/observability"
          workflow: "dashboards.yml"
          inputs:
            service: "{{ service_name }}"
            replicas: 3
        outputs: ["dashboard_url"]
  manual:
    system: "github"
    template:
      repository: "platform/requests"
      summary: "Create dashboards for {{ service_name }} by hand"
'''

# The bundle's own workflow step uses the Terraform step's output as an input.
DB_WITH_DASHBOARD = '''\
name: "db-with-dashboard"
version: "1.0.0"
description: "A database and a dashboard watching it"
owner: "platform-solutions-team"
bundle:
  required_items:
    - catalog_item: "app-database"
      version: ">=1.0.0"
presentation:
  bundle_fields:
    - {name: "solution_name", type: "string", required: true}
fulfillment:
  automation:
    steps:
      - id: "watch_database"
        type: "GitHubWorkflow"
        depends_on: ["app-database.provision"]
        config:
          repository: "platform/observability"
          workflow: "dashboards.yml"
          ref: "main"
          inputs:
            service: "{{ solution_name }}"
            database: "{{ items.app_database.steps.provision.outputs.connection_string }}"
        outputs: ["dashboard_url"]
'''

PERMISSIONS = {"metadata": "read", "contents": "write", "pull_requests": "write", "actions": "write",
               "issues": "write", "checks": "write"}


@pytest.fixture
async def catalog(tmp_path, settings, pool, runtime):
    return await sync_catalog(tmp_path, settings, pool, runtime, {
        "catalog/databases/app-database.yaml": APP_DATABASE,
        "catalog/databases/app-database-direct.yaml": APP_DATABASE_DIRECT,
        "catalog/databases/app-database-atlantis.yaml": APP_DATABASE_ATLANTIS,
        "catalog/observability/app-dashboards.yaml": APP_DASHBOARDS,
        "catalog/bundles/db-with-dashboard.yaml": DB_WITH_DASHBOARD})


@pytest.fixture
def gh(rapi, github_fake, runtime, http_session):
    """PAO as the App on the platform org: infrastructure (apply.yml), observability (dashboards.yml)."""
    from app.github import GitHubClients

    inst = github_fake.install("platform", permissions=PERMISSIONS)
    infra = github_fake.create_repo("platform/infrastructure", private=True, installation=inst,
                                    files={"README.md": "infra\n"})
    github_fake.actions.add_workflow(infra, "apply.yml")
    obs = github_fake.create_repo("platform/observability", private=True, installation=inst,
                                  files={".github/workflows/dashboards.yml": "on: workflow_dispatch\n"})
    github_fake.actions.add_workflow(obs, "dashboards.yml")
    github_fake.create_repo("platform/requests", private=True, installation=inst)
    runtime.settings = dataclasses.replace(runtime.settings, **github_fake.pao_settings("app"))
    runtime.github = GitHubClients.from_settings(runtime.settings, http_session)
    return rapi


def poll_every(runtime, seconds: float) -> None:
    runtime.settings.extra["requests"] = dataclasses.replace(runtime.settings.extra["requests"],
                                                             ticket_poll_interval=seconds)


async def deliver(api, event: str, payload: dict) -> dict:
    body, headers = webhook(event, payload)
    resp = await api.client.post("/api/v1/webhooks/github", data=body, headers=headers)
    assert resp.status in (200, 202), await resp.text()
    return await resp.json()


async def step_of(api, href: str, step: str) -> dict:
    _, body = await api.call("GET", href)
    return next(s for s in body["fulfillment"]["steps"] if s["step_id"] == step)


BUNDLE = {"catalog_bundle": "db-with-dashboard", "bundle_parameters": {"solution_name": "shop"},
          "item_parameters": {"app-database": {"database_name": "orders"}}}


async def test_a_bundle_runs_terraform_by_pull_request_then_a_workflow_fed_its_outputs(
        gh, github_fake, worker, runtime):
    poll_every(runtime, 3600)  # only webhooks move the steps along
    actions = github_fake.actions
    infra = github_fake.repo("platform/infrastructure")
    _, created = await gh.call("POST", "/api/v1/requests", BUNDLE)
    href, rid = created["href"], created["request_id"]

    async def pull_opened():
        return actions.pulls.get("platform/infrastructure", {}).get(1)
    pull = await wait_for(pull_opened, what="the pull request")
    assert pull["head"] == f"pao/{rid}-app-database-provision" and pull["base"] == "main"
    written = infra.read("databases/orders.tf", pull["head"]).decode()
    assert 'module "orders"' in written and 'owner_team = "customer-experience"' in written
    # The step records the pull request once GitHub has answered its creation: until
    # that commits, the step is running without it.
    async def pull_tracked():
        step = await step_of(gh, href, "app-database.provision")
        return step if step["job_tracking"] else None
    step = await wait_for(pull_tracked, what="the step's tracking of its pull request")
    assert step["status"] == "running"
    assert step["job_tracking"]["tracking_url"].endswith("/platform/infrastructure/pull/1")

    # Merged by a person: the step now waits for the apply workflow on the merge commit.
    answer = await deliver(gh, "pull_request", actions.merge_pull("platform/infrastructure", 1))
    assert answer["status"] == "accepted", answer
    merge_sha = infra.sha("main")
    assert infra.read("databases/orders.tf").decode() == written

    async def applied_sha():
        step = await step_of(gh, href, "app-database.provision")
        return step["job_tracking"].get("applied_sha")
    assert await wait_for(applied_sha, what="the merge to be seen") == merge_sha
    apply = actions.start_run(infra, "apply.yml", head_sha=merge_sha)
    answer = await deliver(gh, "workflow_run", actions.complete_run(
        apply["id"], "success", outputs={"connection_string": "postgresql://db/orders", "extra": 1}))
    assert answer["status"] == "accepted"

    # The bundle's workflow step is dispatched with the database's output as an input.
    async def dispatched():
        return actions.runs_of("dashboards.yml")
    [run] = await wait_for(dispatched, what="the dashboards workflow dispatch")
    assert run["inputs"] == {"service": "shop", "database": "postgresql://db/orders",
                             "pao_step_id": f"{rid}/db-with-dashboard.watch_database"}
    assert run["head_branch"] == "main" and run["event"] == "workflow_dispatch"

    async def tracked():
        step = await step_of(gh, href, "db-with-dashboard.watch_database")
        return step if step["job_tracking"] and step["job_tracking"].get("run_id") else None
    step = await wait_for(tracked, what="the run id in job_tracking")
    assert step["job_tracking"]["run_id"] == run["id"]
    assert step["job_tracking"]["tracking_url"].endswith(f"/actions/runs/{run['id']}")
    await deliver(gh, "workflow_run", actions.complete_run(
        run["id"], "success", outputs={"dashboard_url": "https://grafana.example.com/d/shop"}))

    done = await status_of(gh, href, "completed")
    assert done["outputs"] == {"app-database": {"connection_string": "postgresql://db/orders"},
                               "db-with-dashboard": {"dashboard_url": "https://grafana.example.com/d/shop"}}
    # One pull request, one dispatch; artifacts fetched from storage without the token.
    assert len(github_fake.api_requests("POST", "/repos/platform/infrastructure/pulls")) == 1
    assert len(github_fake.api_requests("POST", "/repos/platform/observability/actions/workflows")) == 1
    assert actions.blob_requests and not any(b["authorization"] for b in actions.blob_requests)


DASHBOARDS = {"catalog_item": "app-dashboards", "parameters": {"service_name": "shop"}}


async def test_a_failed_workflow_falls_back_to_the_items_ticket_naming_the_run(
        gh, github_fake, worker, runtime):
    poll_every(runtime, 0.2)  # no webhook here: polling notices the conclusion
    actions = github_fake.actions
    _, created = await gh.call("POST", "/api/v1/requests", DASHBOARDS)

    async def dispatched():
        return actions.runs_of("dashboards.yml")
    [run] = await wait_for(dispatched, what="the dispatch")
    assert run["inputs"]["replicas"] == "3"  # inputs are strings
    actions.complete_run(run["id"], "failure")
    await status_of(gh, created["href"], "waiting_manual")
    _, step = await gh.call("GET", created["href"] + "/steps/app-dashboards.create")
    failure = next(a["error"] for a in step["attempts"] if a["status"] == "failed")
    assert failure["type"] == "workflow_failed" and failure["details"]["conclusion"] == "failure"
    assert failure["details"]["run_url"].endswith(f"/actions/runs/{run['id']}")
    assert step["tickets"][0]["type"] == "fallback"
    [issue] = github_fake.issues["platform/requests"].values()
    assert issue["title"] == "Create dashboards for shop by hand"


async def test_without_run_details_the_run_is_found_by_its_name_and_cancel_reaches_it(
        gh, github_fake, worker, runtime):
    poll_every(runtime, 0.2)
    actions = github_fake.actions
    actions.dispatch_returns_run_details = False  # an older GitHub Enterprise Server: 204
    _, created = await gh.call("POST", "/api/v1/requests", DASHBOARDS)

    async def tracked():
        step = await step_of(gh, created["href"], "app-dashboards.create")
        return step["job_tracking"].get("run_id") if step["job_tracking"] else None
    run_id = await wait_for(tracked, what="the run found by its name")
    [run] = actions.runs_of("dashboards.yml")
    assert run_id == run["id"] and run["display_title"] == f"{created['request_id']}/app-dashboards.create"
    status, _ = await gh.call("POST", created["href"] + "/cancel")
    assert status == 200

    async def cancelled():
        return run["conclusion"] == "cancelled"
    await wait_for(cancelled, what="the run to be cancelled")
    assert len(github_fake.api_requests("POST", "/repos/platform/observability/actions/workflows")) == 1


async def test_a_pull_request_closed_unmerged_fails_the_step_and_a_retry_finds_it_again(
        gh, github_fake, worker, runtime):
    poll_every(runtime, 3600)
    actions = github_fake.actions
    _, created = await gh.call("POST", "/api/v1/requests",
                               {"catalog_item": "app-database", "parameters": {"database_name": "billing"}})

    async def opened():
        return actions.pulls.get("platform/infrastructure", {}).get(1)
    await wait_for(opened, what="the pull request")
    await deliver(gh, "pull_request", actions.close_pull("platform/infrastructure", 1))
    await status_of(gh, created["href"], "waiting_manual")  # the fallback ticket
    _, step = await gh.call("GET", created["href"] + "/steps/app-database.provision")
    failure = next(a["error"] for a in step["attempts"] if a["status"] == "failed")
    assert failure["type"] == "pull_request_closed"
    assert failure["details"]["pull_request"].endswith("/platform/infrastructure/pull/1")
    assert len(actions.pulls["platform/infrastructure"]) == 1


async def test_an_uninstalled_repository_or_a_missing_permission_is_a_clear_permanent_error(
        gh, github_fake, worker, runtime):
    for inst in list(github_fake.installations.values()):
        inst.permissions = {"metadata": "read", "issues": "write"}  # no actions permission
    _, created = await gh.call("POST", "/api/v1/requests", DASHBOARDS)
    await status_of(gh, created["href"], "waiting_manual")
    _, step = await gh.call("GET", created["href"] + "/steps/app-dashboards.create")
    failure = step["attempts"][0]["error"]
    assert failure["type"] == "permission_missing" and "actions: write" in failure["message"]
    assert len(step["attempts"]) == 2  # not retried: the second attempt is the fallback ticket


async def test_a_retry_after_a_lost_dispatch_answer_finds_the_run_instead_of_dispatching_again(
        gh, github_fake, worker, runtime):
    poll_every(runtime, 0.2)
    actions = github_fake.actions
    actions.lose_next_answer.add("dispatch")  # the run starts, PAO sees a 502
    _, created = await gh.call("POST", "/api/v1/requests", DASHBOARDS)

    async def tracked():
        step = await step_of(gh, created["href"], "app-dashboards.create")
        return step["job_tracking"].get("run_id") if step["job_tracking"] else None
    run_id = await wait_for(tracked, what="the run found after the lost answer")
    [run] = actions.runs_of("dashboards.yml")
    assert run_id == run["id"]
    actions.complete_run(run["id"], "success", outputs={"dashboard_url": "https://grafana/d/1"})
    done = await status_of(gh, created["href"], "completed")
    assert done["outputs"] == {"app-dashboards": {"dashboard_url": "https://grafana/d/1"}}
    assert len(github_fake.api_requests("POST", "/repos/platform/observability/actions/workflows")) == 1
    _, step = await gh.call("GET", created["href"] + "/steps/app-dashboards.create")
    assert step["attempts"][0]["status"] == "retrying"
    assert step["attempts"][0]["error"]["type"] == "github_error"


async def test_a_retry_after_a_lost_pull_request_answer_opens_no_second_one(
        gh, github_fake, worker, runtime):
    poll_every(runtime, 0.2)
    actions = github_fake.actions
    infra = github_fake.repo("platform/infrastructure")
    actions.lose_next_answer.add("pull")
    _, created = await gh.call("POST", "/api/v1/requests",
                               {"catalog_item": "app-database", "parameters": {"database_name": "ledger"}})

    async def tracked():
        step = await step_of(gh, created["href"], "app-database.provision")
        return (step["job_tracking"] or {}).get("pull_number")
    assert await wait_for(tracked, what="the pull request found by its branch") == 1
    actions.merge_pull("platform/infrastructure", 1)  # no webhook: polling notices
    apply = actions.start_run(infra, "apply.yml", head_sha=infra.sha("main"))
    actions.complete_run(apply["id"], "success", outputs={"connection_string": "postgresql://db/ledger"})
    done = await status_of(gh, created["href"], "completed")
    assert done["outputs"] == {"app-database": {"connection_string": "postgresql://db/ledger"}}
    assert len(actions.pulls["platform/infrastructure"]) == 1
    assert len(github_fake.api_requests("POST", "/repos/platform/infrastructure/pulls")) == 1
    assert len(github_fake.api_requests("PUT", "/repos/platform/infrastructure/contents/")) == 1


async def test_commit_mode_writes_the_default_branch_and_a_failed_apply_names_its_run(
        gh, github_fake, worker, runtime):
    poll_every(runtime, 0.2)
    actions = github_fake.actions
    infra = github_fake.repo("platform/infrastructure")
    body = {"catalog_item": "app-database-direct", "parameters": {"database_name": "audit"}}
    _, created = await gh.call("POST", "/api/v1/requests", body)

    async def committed():
        return infra.read("databases/audit.tf")
    assert b'module "audit"' in await wait_for(committed, what="the commit on main")
    assert not actions.pulls.get("platform/infrastructure")
    apply = actions.start_run(infra, "apply.yml", head_sha=infra.sha("main"))
    actions.complete_run(apply["id"], "failure")
    await status_of(gh, created["href"], "waiting_manual")  # the fallback ticket
    _, step = await gh.call("GET", created["href"] + "/steps/app-database-direct.provision")
    failure = next(a["error"] for a in step["attempts"] if a["status"] == "failed")
    assert failure["type"] == "workflow_failed"
    assert failure["details"]["run_url"].endswith(f"/actions/runs/{apply['id']}")


def _step_context(config: dict, outputs: list[str] | None = None):
    from app.requests.config import RequestSettings
    from app.requests.steps.base import StepContext

    async def save(_: dict) -> None:
        return None
    return StepContext("req-1", "item.step", config, outputs or [], None, RequestSettings(), None, save)


def test_workflow_inputs_are_strings_with_the_correlation_input_and_at_most_25():
    from app.requests.steps.base import StepFailed
    from app.requests.steps.github_workflow import dispatch_inputs

    ctx = _step_context({"inputs": {"n": 3, "ha": True, "zones": ["a", "b"], "none": None}})
    assert dispatch_inputs(ctx) == {"n": "3", "ha": "true", "zones": '["a", "b"]', "none": "",
                                    "pao_step_id": "req-1/item.step"}
    too_many = _step_context({"inputs": {f"i{n}": "x" for n in range(25)}})
    with pytest.raises(StepFailed) as failed:
        dispatch_inputs(too_many)
    assert failed.value.type == "bad_config" and "at most 25" in failed.value.message


def test_the_outputs_artifact_must_be_a_zip_holding_one_json_object():
    import io
    import zipfile

    from app.requests.github_runs import _artifact_json
    from app.requests.steps.base import StepFailed

    def zipped(files: dict[str, str]) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            for name, text in files.items():
                archive.writestr(name, text)
        return buffer.getvalue()
    run = {"html_url": "https://github.example/o/r/actions/runs/1"}
    assert _artifact_json(zipped({"outputs.json": '{"a": 1}'}), run) == {"a": 1}
    for bad in (b"not a zip", zipped({"a.json": "{}", "b.json": "{}"}), zipped({"outputs.json": "{nope"})):
        with pytest.raises(StepFailed) as failed:
            _artifact_json(bad, run)
        assert failed.value.type == "bad_output" and run["html_url"] in failed.value.message


async def test_a_workflow_run_no_step_waits_on_is_ignored(gh, github_fake):
    obs = github_fake.repo("platform/observability")
    run = github_fake.actions.start_run(obs, "dashboards.yml")
    answer = await deliver(gh, "workflow_run", github_fake.actions.complete_run(run["id"], "success"))
    assert answer["status"] == "ignored" and str(run["id"]) in answer["reason"]


async def test_a_repository_without_the_app_is_a_permanent_error_saying_to_install_it(
        gh, github_fake, worker):
    for inst in github_fake.installations.values():
        inst.repos.discard("platform/observability")
    _, created = await gh.call("POST", "/api/v1/requests", DASHBOARDS)
    await status_of(gh, created["href"], "waiting_manual")  # the fallback ticket still opens
    _, step = await gh.call("GET", created["href"] + "/steps/app-dashboards.create")
    failure = step["attempts"][0]["error"]
    assert failure["type"] == "not_installed" and "install it there" in failure["message"]
    assert "platform/observability" in failure["message"] and "actions: write" in failure["message"]


async def test_a_commit_applied_by_another_apps_check_suite_completes_when_the_suite_succeeds(
        gh, github_fake, worker, runtime):
    poll_every(runtime, 0.2)
    actions = github_fake.actions
    infra = github_fake.repo("platform/infrastructure")
    body = {"catalog_item": "app-database-atlantis", "parameters": {"database_name": "events"}}
    _, created = await gh.call("POST", "/api/v1/requests", body)

    async def committed():
        return infra.read("databases/events.tf")
    await wait_for(committed, what="the commit on main")
    suite = actions.add_check_suite(infra, infra.sha("main"), app_slug="atlantis")

    async def checked():
        return [r for r in github_fake.api_requests("GET", "/repos/platform/infrastructure/commits/")
                if r.path.endswith("/check-suites")]
    await wait_for(checked, what="PAO to look at the check suites")
    suite["status"] = "in_progress"
    _, waiting = await gh.call("GET", created["href"])
    assert waiting["status"] == "in_progress"
    suite["status"], suite["conclusion"] = "completed", "success"
    done = await status_of(gh, created["href"], "completed")
    assert done["outputs"] == {}


async def _open_pull(gh, github_fake, database: str) -> tuple[dict, dict]:
    """A request for ``database`` whose Terraform pull request is open: (created, the fake's pull)."""
    _, created = await gh.call("POST", "/api/v1/requests",
                               {"catalog_item": "app-database", "parameters": {"database_name": database}})

    async def tracked():
        step = await step_of(gh, created["href"], "app-database.provision")
        return (step["job_tracking"] or {}).get("pull_number")
    number = await wait_for(tracked, what="the pull request")
    return created, github_fake.actions.pulls["platform/infrastructure"][number]


async def _close_job_done(pool) -> dict:
    """Run the close job's retries now (its backoff is seconds); its row once it has ended."""
    async def ended():
        await pool.execute("UPDATE jobs SET scheduled_at = now() WHERE task = 'requests.close_terraform_pull'"
                           " AND status = 'todo'")
        return await pool.fetchrow("SELECT * FROM jobs WHERE task = 'requests.close_terraform_pull'"
                                   " AND status IN ('succeeded', 'failed')")
    return await wait_for(ended, what="the close job")


async def test_cancelling_closes_the_open_terraform_pull_request_with_a_comment_and_deletes_its_branch(
        gh, github_fake, worker, runtime, pool):
    poll_every(runtime, 3600)
    infra = github_fake.repo("platform/infrastructure")
    created, pull = await _open_pull(gh, github_fake, "orders")
    branch = f"refs/heads/{pull['head']}"
    assert pull["head"].startswith("pao/") and infra.sha(branch) is not None
    status, _ = await gh.call("POST", created["href"] + "/cancel")
    assert status == 200
    job = await _close_job_done(pool)
    assert job["status"] == "succeeded" and job["result"]["branch_deleted"] is True
    assert pull["state"] == "closed" and not pull["merged"]
    [comment] = pull["comments"]
    assert f"Request `{created['request_id']}` was cancelled" in comment["body"]
    assert comment["user"] == "pao[bot]"
    assert infra.sha(branch) is None
    assert infra.sha("refs/heads/main") is not None  # only PAO's branch went


async def test_a_close_retried_after_a_crash_mid_cancel_finishes_without_a_second_comment(
        gh, github_fake, worker, runtime, pool):
    poll_every(runtime, 3600)
    actions = github_fake.actions
    infra = github_fake.repo("platform/infrastructure")
    created, pull = await _open_pull(gh, github_fake, "ledger")
    # The comment is written, then the close, but both answers are lost (the job retries each
    # time); and someone deleted the branch on GitHub meanwhile.
    actions.lose_next_answer.update({"comment", "close"})
    infra.git("update-ref", "-d", f"refs/heads/{pull['head']}")
    status, _ = await gh.call("POST", created["href"] + "/cancel")
    assert status == 200
    job = await _close_job_done(pool)
    assert job["status"] == "succeeded", job["last_error"]
    assert job["attempts"] == 3 and job["result"] == {"closed": pull["number"], "branch_deleted": False}
    assert pull["state"] == "closed" and len(pull["comments"]) == 1
    comments = github_fake.api_requests("POST", f"/repos/platform/infrastructure/issues/{pull['number']}")
    assert len(comments) == 1


async def test_a_merged_pull_request_is_left_alone_when_its_request_is_cancelled(
        gh, github_fake, worker, runtime, pool):
    poll_every(runtime, 3600)
    created, pull = await _open_pull(gh, github_fake, "audit")
    github_fake.actions.merge_pull("platform/infrastructure", pull["number"])  # no webhook yet
    status, _ = await gh.call("POST", created["href"] + "/cancel")
    assert status == 200
    job = await _close_job_done(pool)
    assert job["result"] == {"merged": pull["number"]} and pull["comments"] == []
