"""Catalog pages of the console: list, search by name and tag, detail with fields and versions."""

from __future__ import annotations

import html
from urllib.parse import unquote

import pytest

from app.web import create_app
from tests.conftest import with_settings
from tests.console_support import sign_in, sync_examples, with_console


@pytest.fixture
async def client(aiohttp_client, runtime, tmp_path):
    await sync_examples(runtime, tmp_path)
    runtime.settings = with_console(runtime.settings)
    client = await aiohttp_client(create_app(runtime))
    sign_in(client, runtime)
    return client


async def text_of(resp) -> str:
    return html.unescape(await resp.text())


async def test_the_start_page_leads_to_set_up_until_pao_has_github_credentials(client, runtime):
    resp = await client.get("/", allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"] == "/setup"
    runtime.settings = with_settings(runtime.settings, repo_token="ghp_token")
    resp = await client.get("/", allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"] == "/catalog"


async def test_items_are_listed_with_versions_owners_and_tags(client):
    resp = await client.get("/catalog")
    assert resp.status == 200 and resp.content_type == "text/html"
    body = await text_of(resp)
    for name in ("eks-container-app", "postgres-database", "redis-cache", "application-monitoring"):
        assert f'href="/catalog/items/{name}"' in body
    assert "platform-compute-team" in body and "1.2.0" in body
    assert "full-stack-web-app" not in body  # a bundle, on the bundles tab


async def test_search_by_name_and_by_tag(client):
    body = await text_of(await client.get("/catalog?q=redis"))
    assert "/catalog/items/redis-cache" in body and "/catalog/items/eks-container-app" not in body
    body = await text_of(await client.get("/catalog?tags=kubernetes"))
    assert "/catalog/items/eks-container-app" in body and "/catalog/items/redis-cache" not in body
    body = await text_of(await client.get("/catalog?kind=bundles&tags=web-app"))
    assert "/catalog/bundles/full-stack-web-app" in body


async def test_a_search_matching_nothing_says_so(client):
    body = await text_of(await client.get("/catalog?q=no-such-thing"))
    assert "No items match." in body


async def test_item_detail_lists_its_fields_with_constraints(client):
    resp = await client.get("/catalog/items/eks-container-app")
    assert resp.status == 200
    body = await text_of(resp)
    assert "Managed Kubernetes application deployment" in body
    assert "<code>app_name</code>" in body and "at most 50 characters" in body
    assert "one of dev, staging, prod" in body


async def test_bundle_detail_lists_its_items_and_version_constraints(client):
    body = await text_of(await client.get("/catalog/bundles/full-stack-web-app"))
    assert 'href="/catalog/items/postgres-database"' in body and "<code>>=2.0.0</code>" in body
    assert "optional, on by default" in body  # application-monitoring
    assert "<code>solution_name</code>" in body


async def test_unknown_entries_and_kinds_are_html_404s(client):
    resp = await client.get("/catalog/items/nope")
    assert resp.status == 404 and resp.content_type == "text/html"
    assert "no item named 'nope'" in await text_of(resp)
    assert (await client.get("/catalog/widgets/x")).status == 404


async def test_bad_search_input_is_a_400_naming_it_not_a_crash(client):
    resp = await client.get("/catalog?cursor=garbage")
    assert resp.status == 400
    assert "cursor: not a cursor this API returned" in await text_of(resp)


async def test_catalog_text_is_escaped(client, runtime):
    await runtime.pool.execute(
        "UPDATE catalog_items SET description = '<script>alert(1)</script>' WHERE name = 'redis-cache'")
    raw = await (await client.get("/catalog?q=redis")).text()
    assert "<script>alert(1)</script>" not in raw and "&lt;script&gt;" in raw


async def test_catalog_pages_need_a_signed_in_person(client):
    client.session.cookie_jar.clear()
    resp = await client.get("/catalog?q=redis", allow_redirects=False)
    assert resp.status == 303 and unquote(resp.headers["Location"]) == "/login?next=/catalog?q=redis"
    assert (await client.get("/catalog/items/redis-cache", allow_redirects=False)).status == 303
    # A cookie not signed with PAO_SECRET_KEY is nobody.
    client.session.cookie_jar.update_cookies({"pao_session": "eyJsb2dpbiI6ImV2ZSJ9.forged"},
                                             client.make_url("/"))
    assert (await client.get("/catalog", allow_redirects=False)).status == 303
