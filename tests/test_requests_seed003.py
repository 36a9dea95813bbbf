"""Seed 003 end to end: Sarah's four-item bundle, steps failing with typed errors and falling
back to Jira tickets, completed by hand with outputs, the bundle's own step wiring them together,
and the request completed with its outputs grouped by item."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from app.api.auth import create_token
from app.web import create_app
from tests.requests_support import EXAMPLES, RequestsApi, status_of, sync_catalog
from tests.test_requests_submit import seed_body

# Seed 003 step 8: what the platform teams give when they finish by hand.
OUTPUTS = {
    "eks-container-app.provision_eks_app": {
        "service_url": "https://customer-portal-api.staging.example.com",
        "cluster_endpoint": "https://eks-staging.example.com"},
    "postgres-database.provision_postgres": {
        "connection_string": "postgresql://customer_portal_db.staging.rds.amazonaws.com:5432/customer_portal_db",
        "admin_secret_arn": "arn:aws:secretsmanager:us-east-1:123456789:secret:customer-portal-db-admin"},
    "redis-cache.provision_redis": {"endpoint": "customer-portal-redis.staging.cache.amazonaws.com:6379"},
    "application-monitoring.setup_monitoring": {
        "dashboard_url": "https://grafana.example.com/dashboards/customer-portal"},
}


@pytest.fixture
async def portal(tmp_path, settings, pool, runtime, endpoint, jira, aiohttp_client):
    """The example catalog, its two HTTP endpoints pointed at a local server, Jira, and tokens."""
    files = {}
    for path, old, new in (
            ("compute/eks-container-app.yaml", "https://hooks.example.com/platform/deployments",
             f"{endpoint.url}/deployments"),
            ("bundles/full-stack-web-app.yaml", "https://provisioning.example.com/connections",
             f"{endpoint.url}/connections")):
        text = (Path(EXAMPLES) / path).read_text()
        assert old in text
        files[f"catalog/{path}"] = text.replace(old, new)
    await sync_catalog(tmp_path, settings, pool, runtime, files)
    jira.configure(runtime)
    runtime.settings.extra["requests"] = dataclasses.replace(runtime.settings.extra["requests"],
                                                             ticket_poll_interval=3600)
    client = await aiohttp_client(create_app(runtime))
    tokens = {}
    for who, user, team, admin in (("sarah", "sarah-123", "customer-experience", False),
                                   ("operator", "ops-1", "platform", True)):
        _, tokens[who] = await create_token(pool, user_id=user, team=team, is_admin=admin,
                                            email="sarah@example.com" if who == "sarah" else None)
    return RequestsApi(client, tokens)


async def test_seed_003_end_to_end(portal, endpoint, jira, worker):
    endpoint.answer("/deployments", (200, {}))
    endpoint.answer("/connections", (200, {"connections_id": "conn-42", "extra": "ignored"}))
    # Step 5: submit.
    status, created = await portal.call("POST", "/api/v1/requests", seed_body())
    assert status == 201 and created["status"] == "submitted"
    href = created["href"]
    # Step 6/7: the provisioning steps fail (typed) and fall back to tickets; the request waits.
    waiting = await status_of(portal, href, "waiting_manual")
    steps = {s["step_id"]: s for s in waiting["fulfillment"]["steps"]}
    assert {sid: s["status"] for sid, s in steps.items()} == {
        **dict.fromkeys(OUTPUTS, "waiting_manual"),
        "eks-container-app.announce": "pending", "full-stack-web-app.configure_connections": "pending"}
    assert waiting["fulfillment"]["execution_mode"] == "automation"
    _, postgres = await portal.call("GET", href + "/steps/postgres-database.provision_postgres")
    assert postgres["type"] == "TerraformFile" and postgres["status"] == "waiting_manual"
    first = postgres["attempts"][0]
    assert first["status"] == "failed" and first["error"]["type"] == "not_configured"
    assert postgres["manual_fallback_available"] is True
    [ticket] = postgres["tickets"]
    assert ticket["system"] == "jira" and ticket["type"] == "fallback" and ticket["status"] == "open"
    summary = jira.issues[ticket["ticket_id"]].fields["summary"]
    assert summary == "Create PostgreSQL database customer_portal_db"
    assert sorted(k.split("-")[0] for k in jira.issues) == ["OBSERVABILITY", "PLATFORM", "PLATFORM",
                                                            "PLATFORM"]
    # Step 8: the platform teams finish by hand and give the outputs.
    for step_id, outputs in OUTPUTS.items():
        status, body = await portal.call("POST", f"{href}/steps/{step_id}/complete",
                                         {"outputs": outputs}, who="operator")
        assert status == 200 and body["status"] == "completed", body
    done = await status_of(portal, href, "completed")
    assert done["outputs"] == {
        "eks-container-app": OUTPUTS["eks-container-app.provision_eks_app"],
        "postgres-database": OUTPUTS["postgres-database.provision_postgres"],
        "redis-cache": OUTPUTS["redis-cache.provision_redis"],
        "application-monitoring": OUTPUTS["application-monitoring.setup_monitoring"],
        "full-stack-web-app": {"connections_id": "conn-42"},
    }
    assert done["completed_at"] is not None
    # The bundle step used the item steps' outputs, and ran once.
    [wire] = endpoint.calls_to("/connections")
    assert wire["json"] == {
        "solution": "customer-portal", "high_availability": "True",
        "service_url": "https://customer-portal-api.staging.example.com",
        "database": OUTPUTS["postgres-database.provision_postgres"]["connection_string"],
        "cache": "customer-portal-redis.staging.cache.amazonaws.com:6379"}
    [announce] = endpoint.calls_to("/deployments")
    assert announce["json"]["url"] == "https://customer-portal-api.staging.example.com"
    _, outputs = await portal.call("GET", href + "/outputs")
    assert outputs["outputs"] == done["outputs"]
    _, listed = await portal.call("GET", "/api/v1/requests?status=completed")
    assert [r["request_id"] for r in listed["requests"]] == [created["request_id"]]
