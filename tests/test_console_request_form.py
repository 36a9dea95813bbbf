"""The request form page: generated from ``presentation``, labelled, errors shown on their fields."""

from __future__ import annotations

import html
import re

import pytest

from app.web import create_app
from tests.console_support import sign_in, sync_examples, with_console


@pytest.fixture
async def client(aiohttp_client, runtime, tmp_path):
    await sync_examples(runtime, tmp_path)
    runtime.settings = with_console(runtime.settings)
    client = await aiohttp_client(create_app(runtime))
    sign_in(client, runtime)
    return client


async def csrf(client, path: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', await (await client.get(path)).text()).group(1)


def input_tag(page: str, input_id: str) -> str:
    match = re.search(rf'<(input|select|textarea)[^>]*id="{input_id}"[^>]*>', page, re.S)
    assert match, f"no input {input_id}"
    return " ".join(match.group(0).split())


async def test_the_detail_page_links_to_the_form_and_every_input_is_labelled(client):
    detail = await (await client.get("/catalog/items/eks-container-app")).text()
    assert 'href="/catalog/items/eks-container-app/request"' in detail
    page = await (await client.get("/catalog/items/eks-container-app/request")).text()
    ids = re.findall(r'<(?:input|select|textarea)[^>]*\bid="(f-[^"]+)"', page)
    assert {"f-parameters-app_name", "f-parameters-environment", "f-parameters-replicas"} <= set(ids)
    for input_id in ids:
        assert f'<label for="{input_id}">' in page
    assert 'maxlength="50"' in input_tag(page, "f-parameters-app_name")
    assert 'value="2"' in input_tag(page, "f-parameters-replicas")  # the default
    assert "sarah" in page and "customer-experience" in page


async def test_bundle_form_asks_the_bundle_fields(client):
    page = await (await client.get("/catalog/bundles/full-stack-web-app/request")).text()
    assert "f-bundle_parameters-solution_name" in page and 'type="checkbox"' in page


async def test_a_value_of_the_wrong_type_comes_back_on_its_field_with_the_rest_kept(client):
    path = "/catalog/items/eks-container-app/request"
    resp = await client.post(path, data={"csrf_token": await csrf(client, path),
                                         "parameters.app_name": "shop", "parameters.environment": "dev",
                                         "parameters.replicas": "three"})
    assert resp.status == 422
    page = await resp.text()
    replicas = input_tag(page, "f-parameters-replicas")
    assert 'aria-invalid="true"' in replicas
    assert 'aria-describedby="f-parameters-replicas-hint f-parameters-replicas-error"' in replicas
    error = re.search(r'id="f-parameters-replicas-error">([^<]+)<', page).group(1)
    assert html.unescape(error) == "enter a whole number"
    assert 'value="shop"' in input_tag(page, "f-parameters-app_name")
    assert 'aria-invalid' not in input_tag(page, "f-parameters-app_name")


async def test_submitting_needs_the_csrf_token_and_a_known_entry(client):
    path = "/catalog/items/eks-container-app/request"
    assert (await client.post(path, data={"parameters.app_name": "x"})).status == 403
    token = await csrf(client, path)
    assert (await client.post("/catalog/items/nope/request", data={"csrf_token": token})).status == 404


async def test_a_valid_item_request_is_stored_for_the_signed_in_person_and_leads_to_its_page(client, runtime):
    path = "/catalog/items/eks-container-app/request"
    page = await (await client.get(path)).text()
    form_key = re.search(r'name="form_key" value="([^"]+)"', page).group(1)
    data = {"csrf_token": await csrf(client, path), "form_key": form_key, "version": "1.2.0",
            "parameters.app_name": "shop", "parameters.environment": "dev", "parameters.replicas": "3"}
    resp = await client.post(path, data=data, allow_redirects=False)
    assert resp.status == 303
    request_id = resp.headers["Location"].removeprefix("/requests/")
    row = await runtime.pool.fetchrow("SELECT * FROM service_requests WHERE request_id = $1", request_id)
    assert (row["requester_user_id"], row["requester_team"], row["submitted_by"]) == (
        "sarah", "customer-experience", "sarah")
    assert row["item_parameters"]["eks-container-app"]["replicas"] == 3
    # The same form posted twice (a double click, a reload) makes one request.
    again = await client.post(path, data=data, allow_redirects=False)
    assert again.headers["Location"] == resp.headers["Location"]
    assert await runtime.pool.fetchval("SELECT count(*) FROM service_requests") == 1
    # Back, a value changed, the same form sent again: it says so, and a new key makes a new request.
    changed = await client.post(path, data={**data, "parameters.replicas": "4"}, allow_redirects=False)
    assert changed.status == 409 and request_id in await changed.text()
    new_key = re.search(r'name="form_key" value="([^"]+)"', await changed.text()).group(1)
    assert new_key != form_key
    third = await client.post(path, data={**data, "parameters.replicas": "4", "form_key": new_key},
                              allow_redirects=False)
    assert third.status == 303 and third.headers["Location"] != resp.headers["Location"]


async def test_the_services_422_lands_on_the_field_it_names(client, runtime):
    path = "/catalog/items/eks-container-app/request"
    resp = await client.post(path, data={"csrf_token": await csrf(client, path),
                                         "parameters.app_name": "Shop_1", "parameters.environment": "dev",
                                         "parameters.replicas": "11"})
    assert resp.status == 422
    page = await resp.text()
    assert 'aria-invalid="true"' in input_tag(page, "f-parameters-app_name")
    assert 'aria-invalid="true"' in input_tag(page, "f-parameters-replicas")
    assert "must be at most 10" in html.unescape(page)
    assert 'value="Shop_1"' in input_tag(page, "f-parameters-app_name")
    assert await runtime.pool.fetchval("SELECT count(*) FROM service_requests") == 0


async def test_bundle_form_asks_every_member_item_with_optional_ones_behind_a_checkbox(client):
    page = await (await client.get("/catalog/bundles/full-stack-web-app/request")).text()
    assert "f-item_parameters-eks-container-app-app_name" in page
    assert "f-item_parameters-postgres-database-database_name" in page
    assert "f-item_parameters-redis-cache-cache_name" in page
    assert "f-item_parameters-eks-container-app-app_type" not in page  # fixed by the bundle
    assert "f-item_parameters-eks-container-app-enabled" not in page  # a required item
    assert "checked" not in input_tag(page, "f-item_parameters-redis-cache-enabled")  # default_enabled: false
    assert "checked" in input_tag(page, "f-item_parameters-application-monitoring-enabled")
    assert '<label for="f-item_parameters-redis-cache-enabled">' in page
    assert "redis-cache (optional)" in page


async def test_a_bundle_request_errors_on_an_item_field_then_goes_through(client, runtime):
    path = "/catalog/bundles/full-stack-web-app/request"
    data = {"csrf_token": await csrf(client, path), "bundle_parameters.solution_name": "portal",
            "item_parameters.eks-container-app.app_name": "portal-web",
            "item_parameters.eks-container-app.environment": "staging",
            "item_parameters.postgres-database.database_name": "Portal-DB",  # the regexp refuses it
            "item_parameters.application-monitoring.enabled": "true",
            "item_parameters.application-monitoring.service_name": "portal",
            # redis-cache left out: its bad value does not count
            "item_parameters.redis-cache.replicas": "many"}
    resp = await client.post(path, data=data)
    assert resp.status == 422
    page = await resp.text()
    assert 'aria-invalid="true"' in input_tag(page, "f-item_parameters-postgres-database-database_name")
    assert re.search(r'id="f-item_parameters-postgres-database-database_name-error">[^<]*match', page)
    data["item_parameters.postgres-database.database_name"] = "portal_db"
    resp = await client.post(path, data=data, allow_redirects=False)
    assert resp.status == 303, await resp.text()
    row = await runtime.pool.fetchrow("SELECT * FROM service_requests")
    assert row["catalog_bundle"] == "full-stack-web-app"
    assert row["bundle_parameters"]["solution_name"] == "portal"
    assert row["item_parameters"]["eks-container-app"]["app_type"] == "web-frontend"
    assert set(row["item_parameters"]) == {"eks-container-app", "postgres-database", "application-monitoring"}
