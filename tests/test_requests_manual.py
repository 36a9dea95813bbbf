"""Manual fulfillment: Jira tickets (Cloud and Data Center fakes), webhook and polling, fallback."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from tests.requests_support import status_of
from tests.support import wait_for


@pytest.fixture
def wired(rapi, jira, runtime):
    jira.configure(runtime)
    return rapi


MYSQL = {"catalog_item": "mysql-database", "parameters": {"database_name": "orders"}}


def signed(payload: dict, secret: str | None = None) -> tuple[bytes, dict[str, str]]:
    secret = secret or "jira-hook-secret"
    body = json.dumps(payload).encode()
    sig = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return body, {"X-Hub-Signature": sig, "Content-Type": "application/json"}


async def test_a_manual_item_opens_one_jira_ticket_and_a_signed_webhook_completes_it(
        wired, jira, worker, runtime):
    runtime.settings.extra["requests"] = type(runtime.settings.extra["requests"])(
        **{**runtime.settings.extra["requests"].__dict__, "ticket_poll_interval": 3600})
    _, created = await wired.call("POST", "/api/v1/requests", MYSQL)
    waiting = await status_of(wired, created["href"], "waiting_manual")
    [issue] = jira.issues.values()
    assert issue.key == "PLATFORM-1" and issue.fields["summary"] == "Create MySQL database orders"
    assert "Requester: sarah-123" in issue.fields["description"]
    assert f"pao-{created['request_id']}-mysql-database-manual" in issue.fields["labels"]
    step = waiting["fulfillment"]["steps"][0]
    assert step["status"] == "waiting_manual" and step["job_tracking"]["external_id"] == "PLATFORM-1"
    _, detail = await wired.call("GET", created["href"] + "/steps/mysql-database.manual")
    assert detail["tickets"][0]["url"] == f"{jira.url}/browse/PLATFORM-1"
    event = {"webhookEvent": "jira:issue_updated", "issue": {"id": issue.id, "key": issue.key,
                                                              "fields": issue.fields}}
    body, headers = signed(event, "wrong")
    resp = await wired.client.post("/api/v1/webhooks/jira", data=body, headers=headers)
    assert resp.status == 401
    body, headers = signed(event)
    resp = await wired.client.post("/api/v1/webhooks/jira", data=body, headers=headers)
    assert (await resp.json())["status"] == "ignored"  # still open
    jira.resolve(issue.key)
    body, headers = signed({**event, "issue": {**event["issue"], "fields": issue.fields}})
    resp = await wired.client.post("/api/v1/webhooks/jira", data=body, headers=headers)
    assert resp.status == 200 and (await resp.json())["steps_completed"] == ["mysql-database.manual"]
    await status_of(wired, created["href"], "completed")


async def test_polling_notices_a_resolved_ticket_without_a_webhook(wired, jira, worker):
    _, created = await wired.call("POST", "/api/v1/requests", MYSQL)
    await status_of(wired, created["href"], "waiting_manual")
    jira.resolve("PLATFORM-1")
    await status_of(wired, created["href"], "completed")
    _, events = await wired.call("GET", created["href"] + "/events")
    assert any(e["event"] == "ticket_resolved" and e["actor"] == "poll" for e in events["events"])


@pytest.mark.parametrize("jira", ["datacenter"], indirect=True)
async def test_a_retried_ticket_is_found_by_its_label_not_opened_twice_on_data_center(
        wired, jira, worker):
    jira.fail_next_create = 1  # the issue is created but the answer is lost
    _, created = await wired.call("POST", "/api/v1/requests", MYSQL)
    await status_of(wired, created["href"], "waiting_manual")
    assert len(jira.issues) == 1
    assert ("POST", "/rest/api/2/search") in jira.calls  # Data Center's search
    _, step = await wired.call("GET", created["href"] + "/steps/mysql-database.manual")
    assert [a["status"] for a in step["attempts"]] == ["retrying", "waiting_manual"]
    assert step["tickets"][0]["ticket_id"] == "PLATFORM-1"


async def test_a_failing_step_falls_back_to_a_ticket_and_waits_for_its_outputs(wired, jira, worker):
    body = {"catalog_item": "postgres-database", "parameters": {"database_name": "orders"}}
    _, created = await wired.call("POST", "/api/v1/requests", body)
    await status_of(wired, created["href"], "waiting_manual")
    url = created["href"] + "/steps/postgres-database.provision_postgres"
    _, step = await wired.call("GET", url)
    assert step["attempts"][0]["error"]["type"] == "not_configured"  # no GitHub App here
    assert step["tickets"][0]["type"] == "fallback"
    [issue] = jira.issues.values()
    assert issue.fields["summary"] == "Create PostgreSQL database orders"
    jira.resolve(issue.key)

    async def resolved_event():
        _, events = await wired.call("GET", created["href"] + "/events")
        return [e for e in events["events"] if e["event"] == "ticket_resolved"]
    [event] = await wait_for(resolved_event, what="the poll to see the resolution")
    assert event["detail"]["outputs_needed"] == ["connection_string", "admin_secret_arn"]
    _, still = await wired.call("GET", created["href"])
    assert still["status"] == "waiting_manual"  # the outputs must come from an operator
    outputs = {"connection_string": "postgresql://db:5432/orders", "admin_secret_arn": "arn:x"}
    status, _ = await wired.call("POST", url + "/complete", {"outputs": outputs}, who="admin")
    assert status == 200
    done = await status_of(wired, created["href"], "completed")
    assert done["outputs"] == {"postgres-database": outputs}


async def test_an_email_ticket_reaches_a_real_smtp_server_and_waits_for_an_operator(
        rapi, smtp_server, worker, runtime):
    import dataclasses

    rs = runtime.settings.extra["requests"]
    runtime.settings.extra["requests"] = dataclasses.replace(
        rs, smtp_host="127.0.0.1", smtp_port=smtp_server.port, smtp_from="pao@platform.example.com")
    _, created = await rapi.call("POST", "/api/v1/requests",
                                 {"catalog_item": "access-grant", "parameters": {"system": "crm"}})
    await status_of(rapi, created["href"], "waiting_manual")
    [(recipients, msg)] = smtp_server.messages
    assert recipients == ["access@example.com"]
    assert msg["Subject"] == "Grant sarah-123 access to crm"
    assert msg["X-PAO-Request"] == f"{created['request_id']}/access-grant.manual"
    assert "Team customer-experience asks for crm access." in msg.get_payload()
    url = created["href"] + "/steps/access-grant.manual/complete"
    assert (await rapi.call("POST", url, {}, who="admin"))[0] == 200
    await status_of(rapi, created["href"], "completed")


@pytest.fixture
def on_github(rapi, github_fake, runtime, http_session):
    """PAO as a GitHub App installed on the platform org, with the issues permission."""
    import dataclasses

    from app.github import GitHubClients
    from tests.fakes.github import DEFAULT_PERMISSIONS

    inst = github_fake.install("platform", permissions={**DEFAULT_PERMISSIONS, "issues": "write"})
    github_fake.create_repo("platform/requests", private=True, installation=inst)
    runtime.settings = dataclasses.replace(runtime.settings, **github_fake.pao_settings("app"))
    runtime.github = GitHubClients.from_settings(runtime.settings, http_session)
    return rapi


VAULT = {"catalog_item": "vault-app",
         "parameters": {"app_name": "vault-one", "password": "s3cret-value-1", "zones": ["b"]}}


async def test_a_github_issue_is_opened_once_and_its_closing_webhook_completes_the_step(
        on_github, github_fake, worker, runtime):
    from tests.support import webhook

    runtime.settings.extra["requests"] = type(runtime.settings.extra["requests"])(
        **{**runtime.settings.extra["requests"].__dict__, "ticket_poll_interval": 3600})
    _, created = await on_github.call("POST", "/api/v1/requests", VAULT)
    await status_of(on_github, created["href"], "waiting_manual")
    [issue] = github_fake.issues["platform/requests"].values()
    assert issue["title"] == "Set up vault-one"
    # The secret field renders into the ticket (the catalog chose to put it there)...
    assert issue["body"].startswith("Zones b; password s3cret-value-1")
    assert issue["labels"] == [f"pao-{created['request_id']}-vault-app-manual"]
    _, step = await on_github.call("GET", created["href"] + "/steps/vault-app.manual")
    assert step["tickets"][0]["ticket_id"] == "platform/requests#1"
    # ...but never into PAO's own records.
    assert "s3cret" not in str(step)
    body, headers = webhook("issues", github_fake.close_issue("platform/requests", 1))
    resp = await on_github.client.post("/api/v1/webhooks/github", data=body, headers=headers)
    assert resp.status == 202
    await status_of(on_github, created["href"], "completed")
    posted = github_fake.api_requests("POST", "/repos/platform/requests/issues")
    assert len(posted) == 1


async def test_a_closed_github_issue_is_noticed_by_polling(on_github, github_fake, worker, runtime):
    runtime.settings.extra["requests"] = type(runtime.settings.extra["requests"])(
        **{**runtime.settings.extra["requests"].__dict__, "ticket_poll_interval": 0.2})
    _, created = await on_github.call("POST", "/api/v1/requests", VAULT)
    await status_of(on_github, created["href"], "waiting_manual")
    github_fake.close_issue("platform/requests", 1)
    await status_of(on_github, created["href"], "completed")


async def test_a_servicenow_incident_is_created_once_and_polling_sees_it_closed(
        rapi, aiohttp_server, worker, runtime):
    import dataclasses

    from tests.fakes.servicenow import FakeServiceNow

    snow = FakeServiceNow(fail_next_create=1)  # the first answer is lost: the retry must find it
    server = await aiohttp_server(snow.app())
    snow.url = str(server.make_url("")).rstrip("/")
    runtime.settings.extra["requests"] = dataclasses.replace(
        runtime.settings.extra["requests"], servicenow_url=snow.url, servicenow_user=snow.user,
        servicenow_password=snow.password, ticket_poll_interval=0.2)
    _, created = await rapi.call("POST", "/api/v1/requests",
                                 {"catalog_item": "firewall-rule", "parameters": {"port": 8443}})
    await status_of(rapi, created["href"], "waiting_manual")
    [record] = snow.records["incident"]
    assert record["short_description"] == "Open port 8443 for customer-experience"
    assert "assignment_group: network" in record["description"]
    _, step = await rapi.call("GET", created["href"] + "/steps/firewall-rule.manual")
    assert step["tickets"][0]["ticket_id"] == "incident:INC0010001"
    snow.close("INC0010001")
    await status_of(rapi, created["href"], "completed")
