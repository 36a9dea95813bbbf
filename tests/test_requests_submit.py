"""Submitting and validating service requests: parameters, identity, idempotency, snapshot, secrets."""

from __future__ import annotations

import copy
import re

from app.requests import secrets
from tests.requests_support import SECRET_KEY, SEED_003_BODY


def seed_body() -> dict:
    """Seed 003 step 5, plus the two fields our catalog's redis and monitoring items require."""
    body = copy.deepcopy(SEED_003_BODY)
    body["item_parameters"]["redis-cache"]["cache_name"] = "customer-portal-cache"
    body["item_parameters"]["application-monitoring"]["service_name"] = "customer-portal"
    return body


async def test_seed_003_as_written_names_every_missing_field_at_once(rapi, pool):
    status, body = await rapi.call("POST", "/api/v1/requests", SEED_003_BODY)
    assert status == 422 and body["error"] == "validation failed"
    assert {(e["path"], e["code"]) for e in body["errors"]} == {
        ("item_parameters.redis-cache.cache_name", "required"),
        ("item_parameters.application-monitoring.service_name", "required"),
    }
    assert await pool.fetchval("SELECT count(*) FROM service_requests") == 0


async def test_seed_003_submission_is_stored_with_its_plan(rapi, pool):
    status, body = await rapi.call("POST", "/api/v1/requests", seed_body())
    assert status == 201, body
    assert re.fullmatch(r"req-\d{8}-[a-z0-9]{8}", body["request_id"])
    assert body["catalog_bundle"] == "full-stack-web-app" and body["version"] == "2.1.0"
    assert body["href"] == f"/api/v1/requests/{body['request_id']}"
    status, detail = await rapi.call("GET", body["href"])
    assert status == 200
    assert detail["requester"] == {"user_id": "sarah-123", "team": "customer-experience",
                                   "email": "sarah-123@example.com"}
    items = detail["parameters"]["item_parameters"]
    assert items["eks-container-app"] == {"app_name": "customer-portal-api", "environment": "staging",
                                          "replicas": 3, "app_type": "web-frontend"}
    # Defaults applied; the secret field was not given and has no default.
    assert items["application-monitoring"] == {"service_name": "customer-portal",
                                               "alert_channels": ["slack"]}
    assert detail["parameters"]["bundle_parameters"] == {"solution_name": "customer-portal",
                                                         "enable_ha": True}
    steps = {s["step_id"]: s for s in detail["fulfillment"]["steps"]}
    assert list(steps) == ["eks-container-app.provision_eks_app", "postgres-database.provision_postgres",
                           "redis-cache.provision_redis", "application-monitoring.setup_monitoring",
                           "eks-container-app.announce", "full-stack-web-app.configure_connections"]
    assert steps["eks-container-app.announce"]["depends_on"] == ["eks-container-app.provision_eks_app"]
    assert steps["full-stack-web-app.configure_connections"]["depends_on"] == [
        "eks-container-app.provision_eks_app", "postgres-database.provision_postgres",
        "redis-cache.provision_redis"]
    assert steps["postgres-database.provision_postgres"]["type"] == "TerraformFile"
    events = await pool.fetch("SELECT event, to_status, actor FROM request_events")
    assert next(tuple(e) for e in events) == ("submitted", "submitted", "sarah-123")


async def test_a_request_id_already_taken_is_drawn_again_leaving_nothing_half_written(
        rapi, pool, monkeypatch):
    from app.requests import store

    status, first = await rapi.call("POST", "/api/v1/requests", seed_body())
    assert status == 201, first
    draws = iter([first["request_id"], first["request_id"], "req-20260101-abcdefgh"])
    monkeypatch.setattr(store, "new_request_id", lambda: next(draws))

    status, second = await rapi.call("POST", "/api/v1/requests", seed_body())

    assert status == 201, second
    assert second["request_id"] == "req-20260101-abcdefgh"
    # The two collisions left no steps or events behind: each request has its own six steps.
    counts = await pool.fetch("SELECT r.request_id, count(DISTINCT s.id) AS steps,"
                              " count(DISTINCT e.id) FILTER (WHERE e.event = 'submitted') AS submitted"
                              " FROM service_requests r JOIN request_steps s ON s.request_id = r.id"
                              " JOIN request_events e ON e.request_id = r.id GROUP BY r.request_id")
    assert sorted(tuple(c) for c in counts) == sorted(
        [(first["request_id"], 6, 1), ("req-20260101-abcdefgh", 6, 1)])


async def test_optional_items_follow_default_enabled_and_required_items_cannot_be_disabled(rapi):
    body = seed_body()
    del body["item_parameters"]["redis-cache"]  # default_enabled: false
    del body["item_parameters"]["application-monitoring"]["enabled"]  # default_enabled: true
    status, plan = await rapi.call("POST", "/api/v1/requests/validate", body)
    assert status == 200
    assert set(plan["parameters"]["item_parameters"]) == {
        "eks-container-app", "postgres-database", "application-monitoring"}
    # The bundle step's dependency on the left-out redis step is dropped.
    wire = next(s for s in plan["steps"] if s["step_id"] == "full-stack-web-app.configure_connections")
    assert wire["depends_on"] == ["eks-container-app.provision_eks_app",
                                  "postgres-database.provision_postgres"]
    body["item_parameters"]["postgres-database"]["enabled"] = False
    status, errors = await rapi.call("POST", "/api/v1/requests/validate", body)
    assert status == 422
    assert [(e["path"], e["code"]) for e in errors["errors"]] == [
        ("item_parameters.postgres-database.enabled", "required_item")]


async def test_every_constraint_is_checked_and_reported_with_its_path(rapi):
    body = seed_body()
    body["bundle_parameters"] = {"enable_ha": "yes", "colour": "red"}
    eks = body["item_parameters"]["eks-container-app"]
    eks.update(app_name="Bad_Name", environment="qa", replicas=11, app_type="api")
    body["item_parameters"]["postgres-database"].update(allocated_storage=True, database_name="x" * 64)
    body["item_parameters"]["nope"] = {}
    status, errors = await rapi.call("POST", "/api/v1/requests", body)
    assert status == 422
    found = {(e["path"], e["code"]) for e in errors["errors"]}
    assert found == {
        ("bundle_parameters.colour", "unknown"),
        ("bundle_parameters.enable_ha", "type"),
        ("bundle_parameters.solution_name", "required"),
        ("item_parameters.eks-container-app.app_name", "regexp"),
        ("item_parameters.eks-container-app.environment", "oneof"),
        ("item_parameters.eks-container-app.replicas", "max_value"),
        ("item_parameters.eks-container-app.app_type", "fixed"),
        ("item_parameters.postgres-database.allocated_storage", "type"),
        ("item_parameters.postgres-database.database_name", "max_length"),
        ("item_parameters.nope", "unknown"),
    }
    replicas = next(e for e in errors["errors"] if e["path"].endswith("replicas"))
    assert "at most 10" in replicas["message"]


async def test_item_request_types_bounds_and_multiselect(rapi):
    base = {"catalog_item": "vault-app",
            "parameters": {"app_name": "vault-one", "password": "correct horse battery"}}
    status, ok = await rapi.call("POST", "/api/v1/requests/validate", base)
    assert status == 200
    assert ok["parameters"]["item_parameters"] == {"vault-app": {
        "app_name": "vault-one", "zones": ["a"], "debug": False}}  # the secret is never echoed
    assert [s["type"] for s in ok["steps"]] == ["manual"]
    cases = {
        "ratio": (3, "max_value"), "zones": (["a", "b", "c"], "max_items"),
        "debug": (1, "type"), "app_name": ("ab", "min_length"),
    }
    for name, (value, code) in cases.items():
        body = copy.deepcopy(base)
        body["parameters"][name] = value
        status, errors = await rapi.call("POST", "/api/v1/requests/validate", body)
        assert status == 422 and [(e["path"], e["code"]) for e in errors["errors"]] == [
            (f"parameters.{name}", code)], (name, errors)
    body = copy.deepcopy(base)
    body["parameters"].update(zones=[], ratio=1, extra={"any": ["json", 1]})
    status, errors = await rapi.call("POST", "/api/v1/requests/validate", body)
    assert [(e["path"], e["code"]) for e in errors["errors"]] == [("parameters.zones", "min_items")]


def test_a_regexp_that_backtracks_without_end_in_re_is_a_validation_error_not_a_hang():
    # Python's re would take hours on this; the validator's bounded matcher answers.
    from app.requests.parameters import check_value

    code, _ = check_value({"type": "string", "regexp": "^(a+)+$"}, "a" * 40 + "!")
    assert code == "regexp"


async def test_secret_values_are_encrypted_never_echoed_and_never_in_errors(rapi, pool):
    body = {"catalog_item": "vault-app",
            "parameters": {"app_name": "vault-one", "password": "hunter2-but-longer"}}
    status, created = await rapi.call("POST", "/api/v1/requests", body)
    assert status == 201
    row = await pool.fetchrow("SELECT * FROM service_requests")
    assert b"hunter2" not in bytes(row["secrets"])
    assert "hunter2" not in str(dict(row))
    assert secrets.decrypt(SECRET_KEY, row["secrets"]) == {"vault-app": {"password": "hunter2-but-longer"}}
    _, detail = await rapi.call("GET", created["href"])
    assert "hunter2" not in str(detail)
    body["parameters"]["password"] = "short!!"
    status, errors = await rapi.call("POST", "/api/v1/requests", body)
    assert status == 422 and "short!!" not in str(errors)
    body["parameters"]["password"] = "x" * 10
    body["parameters"]["app_name"] = "x" * 30
    _, errors = await rapi.call("POST", "/api/v1/requests/validate", body)
    assert "xxxxxxxxxx" not in str([e for e in errors["errors"] if "password" in e["path"]])


async def test_secrets_without_a_key_are_refused_not_stored_in_clear(rapi, pool, runtime):
    from app.requests.config import RequestSettings
    from tests.conftest import with_settings

    runtime.settings = with_settings(runtime.settings, extra={**runtime.settings.extra,
                                                              "requests": RequestSettings()})
    status, body = await rapi.call("POST", "/api/v1/requests", {
        "catalog_item": "vault-app", "parameters": {"app_name": "vault-one", "password": "p" * 12}})
    assert status == 503 and "PAO_SECRET_KEY" in body["detail"]
    assert await pool.fetchval("SELECT count(*) FROM service_requests") == 0


async def test_version_must_be_the_current_one(rapi):
    body = seed_body()
    body["version"] = "2.0.0"
    status, error = await rapi.call("POST", "/api/v1/requests", body)
    assert status == 409 and error["current_version"] == "2.1.0" and "2.1.0" in error["detail"]
    del body["version"]
    assert (await rapi.call("POST", "/api/v1/requests", body))[0] == 201


async def test_unknown_entries_and_bad_bodies(rapi):
    assert (await rapi.call("POST", "/api/v1/requests", {"catalog_item": "nope"}))[0] == 404
    status, body = await rapi.call("POST", "/api/v1/requests", {"parameters": {}})
    assert status == 422 and body["errors"][0]["path"] == "catalog_item"
    resp = await rapi.client.post("/api/v1/requests", data=b"[1, 2]", headers={
        "Authorization": f"Bearer {rapi.tokens['sarah']}", "Content-Type": "application/json"})
    assert resp.status == 400 and (await resp.json())["error"] == "invalid JSON"


async def test_idempotency_key_returns_the_first_request_or_conflicts(rapi, pool):
    headers = {"Idempotency-Key": "form-42"}
    first = await rapi.call("POST", "/api/v1/requests", seed_body(), headers=headers)
    again = await rapi.call("POST", "/api/v1/requests", seed_body(), headers=headers)
    assert first == again and first[0] == 201
    other = seed_body()
    other["bundle_parameters"]["solution_name"] = "another"
    status, body = await rapi.call("POST", "/api/v1/requests", other, headers=headers)
    assert status == 409 and body["request_id"] == first[1]["request_id"]
    # Keys belong to their submitter: the same key from someone else is a new request.
    status, theirs = await rapi.call("POST", "/api/v1/requests", seed_body(), headers=headers, who="bob")
    assert status == 403  # ...but bob cannot claim to be sarah
    body = seed_body()
    del body["requester"]
    status, theirs = await rapi.call("POST", "/api/v1/requests", body, headers=headers, who="bob")
    assert status == 201 and theirs["request_id"] != first[1]["request_id"]
    assert await pool.fetchval("SELECT count(*) FROM service_requests") == 2


async def test_concurrent_retries_with_one_key_make_one_request(rapi, pool):
    import asyncio

    results = await asyncio.gather(*[
        rapi.call("POST", "/api/v1/requests", seed_body(), headers={"Idempotency-Key": "burst"})
        for _ in range(8)])
    assert {r[1]["request_id"] for r in results} == {results[0][1]["request_id"]}
    assert await pool.fetchval("SELECT count(*) FROM service_requests") == 1


async def test_requester_is_the_token_identity_and_admins_may_submit_for_others(rapi):
    body = seed_body()
    del body["requester"]
    status, created = await rapi.call("POST", "/api/v1/requests", body, who="tom")
    _, detail = await rapi.call("GET", created["href"], who="tom")
    assert detail["requester"]["user_id"] == "tom-7"
    body["requester"] = {"user_id": "dana-1", "team": "payments", "email": "dana@example.com"}
    status, _ = await rapi.call("POST", "/api/v1/requests", body, who="tom")
    assert status == 403
    status, created = await rapi.call("POST", "/api/v1/requests", body, who="admin")
    _, detail = await rapi.call("GET", created["href"], who="admin")
    assert detail["requester"] == {"user_id": "dana-1", "team": "payments", "email": "dana@example.com"}


async def test_users_see_their_teams_requests_and_admins_see_all(rapi):
    mine = (await rapi.call("POST", "/api/v1/requests", seed_body()))[1]
    body = seed_body()
    del body["requester"]
    bobs = (await rapi.call("POST", "/api/v1/requests", body, who="bob"))[1]
    assert (await rapi.call("GET", mine["href"], who="tom"))[0] == 200  # same team
    assert (await rapi.call("GET", mine["href"], who="bob"))[0] == 404
    assert (await rapi.call("GET", mine["href"] + "/outputs", who="bob"))[0] == 404
    _, listed = await rapi.call("GET", "/api/v1/requests", who="bob")
    assert [r["request_id"] for r in listed["requests"]] == [bobs["request_id"]]
    _, listed = await rapi.call("GET", "/api/v1/requests", who="admin")
    assert [r["request_id"] for r in listed["requests"]] == [bobs["request_id"], mine["request_id"]]
    _, listed = await rapi.call("GET", "/api/v1/requests?team=payments", who="admin")
    assert [r["request_id"] for r in listed["requests"]] == [bobs["request_id"]]


async def test_list_pages_by_cursor_and_refuses_bad_filters(rapi):
    ids = [(await rapi.call("POST", "/api/v1/requests", seed_body()))[1]["request_id"] for _ in range(5)]
    seen, url = [], "/api/v1/requests?limit=2&bundle=full-stack-web-app"
    while url:
        status, page = await rapi.call("GET", url)
        seen += [r["request_id"] for r in page["requests"]]
        cursor = page["pagination"]["next_cursor"]
        url = f"/api/v1/requests?limit=2&bundle=full-stack-web-app&cursor={cursor}" if cursor else None
    assert seen == ids[::-1]
    status, body = await rapi.call("GET", "/api/v1/requests?status=done")
    assert status == 400 and body["parameter"] == "status"
    status, body = await rapi.call("GET", f"/api/v1/requests?limit=2&cursor={cursor or 'x'}&team=a")
    assert status == 400 and body["parameter"] == "cursor"


async def test_a_later_catalog_change_never_alters_a_submitted_request(rapi, catalog, pool, runtime):
    from app.git.catalog import GitCache
    from app.sync.engine import sync_repository
    from app.sync.source import catalog_source

    _status, created = await rapi.call("POST", "/api/v1/requests", seed_body())
    text = (catalog.work / "catalog/compute/eks-container-app.yaml").read_text()
    catalog.write("catalog/compute/eks-container-app.yaml",
                  text.replace('version: "1.2.0"', 'version: "1.3.0"').replace(
                      'id: "announce"', 'id: "announce_v2"'))
    catalog.commit_push("eks 1.3.0")
    source = catalog_source(runtime.settings)
    result = await sync_repository(pool, source, GitCache(source, source.cache_dir(
        runtime.settings.data_dir)), None)
    assert result.status == "completed", result.errors
    _, detail = await rapi.call("GET", created["href"])
    assert "eks-container-app.announce" in [s["step_id"] for s in detail["fulfillment"]["steps"]]
    snapshot = await pool.fetchval("SELECT snapshot FROM service_requests")
    assert snapshot["items"]["eks-container-app"]["version"] == "1.2.0"


async def test_step_detail_and_outputs_of_a_new_request(rapi):
    _, created = await rapi.call("POST", "/api/v1/requests", seed_body())
    status, step = await rapi.call("GET", created["href"] + "/steps/postgres-database.provision_postgres")
    assert status == 200 and step["attempts"] == [] and step["manual_fallback_available"] is True
    assert step["can_retry"] is False
    assert (await rapi.call("GET", created["href"] + "/steps/nope"))[0] == 404
    status, outputs = await rapi.call("GET", created["href"] + "/outputs")
    assert status == 200 and outputs["outputs"] == {}
