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
    assert {"f-fields-app_name", "f-fields-environment", "f-fields-replicas"} <= set(ids)
    for input_id in ids:
        assert f'<label for="{input_id}">' in page
    assert 'maxlength="50"' in input_tag(page, "f-fields-app_name")
    assert 'value="2"' in input_tag(page, "f-fields-replicas")  # the default
    assert "sarah" in page and "customer-experience" in page


async def test_bundle_form_asks_the_bundle_fields(client):
    page = await (await client.get("/catalog/bundles/full-stack-web-app/request")).text()
    assert "f-bundle_fields-solution_name" in page and 'type="checkbox"' in page


async def test_a_value_of_the_wrong_type_comes_back_on_its_field_with_the_rest_kept(client):
    path = "/catalog/items/eks-container-app/request"
    resp = await client.post(path, data={"csrf_token": await csrf(client, path), "fields.app_name": "shop",
                                         "fields.environment": "dev", "fields.replicas": "three"})
    assert resp.status == 422
    page = await resp.text()
    replicas = input_tag(page, "f-fields-replicas")
    assert 'aria-invalid="true"' in replicas
    assert 'aria-describedby="f-fields-replicas-hint f-fields-replicas-error"' in replicas
    error = re.search(r'id="f-fields-replicas-error">([^<]+)<', page).group(1)
    assert html.unescape(error) == "enter a whole number"
    assert 'value="shop"' in input_tag(page, "f-fields-app_name")
    assert 'aria-invalid' not in input_tag(page, "f-fields-app_name")


async def test_without_a_requests_service_a_valid_form_says_so_and_keeps_the_values(client):
    path = "/catalog/items/eks-container-app/request"
    resp = await client.post(path, data={"csrf_token": await csrf(client, path), "fields.app_name": "shop",
                                         "fields.environment": "dev", "fields.replicas": "3"})
    assert resp.status == 501 and "cannot take requests yet" in await resp.text()


async def test_submitting_needs_the_csrf_token_and_a_known_entry(client):
    path = "/catalog/items/eks-container-app/request"
    assert (await client.post(path, data={"fields.app_name": "x"})).status == 403
    token = await csrf(client, path)
    assert (await client.post("/catalog/items/nope/request", data={"csrf_token": token})).status == 404
