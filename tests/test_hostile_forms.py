"""Hostile input on the HTTP surfaces beside intake: the requests API, the console's forms and
the Jira webhook. Text PostgreSQL cannot store (NUL, lone surrogates, NaN/Infinity), bodies aiohttp
cannot decode and payloads of the wrong shape are a clear 4xx naming the problem (JSON for
machines, an HTML page for people), never a 500, and store nothing."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import re
from urllib.parse import urlencode

import aiohttp
import pytest

from app.api.auth import create_token
from app.api.params import encode_cursor
from app.api.requests import LIST_FILTERS
from app.requests.parameters import check_value
from app.web import create_app
from tests.console_support import sign_in, with_console
from tests.requests_support import sync_catalog

FREE_FORM = '''name: "free-form"
version: "1.0.0"
description: "Free text, a number and JSON, none constrained"
owner: "platform-data-team"
tags: ["misc"]
presentation:
  fields:
    - name: "note"
      type: "string"
    - name: "size"
      type: "number"
    - name: "spec"
      type: "json"
fulfillment:
  manual:
    system: "jira"
    template:
      project: "PLATFORM"
      issue_type: "Service Request"
      summary: "Create {{ note }}"
'''
FORM = "/catalog/items/free-form/request"
JIRA_SECRET = "jira-hook-secret"


@pytest.fixture
async def client(aiohttp_client, runtime, tmp_path, settings, pool):
    await sync_catalog(tmp_path, settings, pool, runtime, extra={"catalog/misc/free-form.yaml": FREE_FORM})
    runtime.settings = with_console(runtime.settings, admin_users=frozenset({"sarah"}))
    requests = runtime.settings.extra["requests"]
    runtime.settings.extra["requests"] = dataclasses.replace(requests, jira_webhook_secret=JIRA_SECRET)
    client = await aiohttp_client(create_app(runtime))
    sign_in(client, runtime)
    _, client.token = await create_token(pool, user_id="sarah", team="customer-experience", is_admin=False)
    return client


async def stored(pool) -> int:
    return await pool.fetchval("SELECT count(*) FROM service_requests")


UNSTORABLE = [
    (b'{"catalog_item":"free-form","parameters":{"note":"a\\u0000b"}}',
     "parameters.note: must not contain a NUL character"),
    (b'{"catalog_item":"free-form","parameters":{"note":"\\ud800"}}',
     "parameters.note: is not valid Unicode text"),
    (b'{"catalog_item":"free-form","parameters":{"note":"a","size":NaN}}',
     "parameters.size: must be a finite number"),
    (b'{"catalog_item":"free-form","parameters":{"note":"a","size":1e999}}',
     "parameters.size: must be a finite number"),
    (b'{"catalog_item":"free-form","parameters":{"note":"a","spec":{"k":[1,{"x\\u0000":1}]}}}',
     "parameters.spec.k[1].x\\u0000: field name must not contain a NUL character"),
    (b'{"catalog_item":"free\\u0000form","parameters":{}}', "catalog_item: must not contain a NUL character"),
]


async def test_the_api_refuses_what_postgresql_cannot_store_naming_where(client, pool):
    for path in ("/api/v1/requests", "/api/v1/requests/validate"):
        for body, named in UNSTORABLE:
            resp = await client.post(path, data=body, headers={"Authorization": f"Bearer {client.token}",
                                                               "Content-Type": "application/json"})
            assert resp.status == 400, (path, body)
            answer = await resp.json()
            assert answer["error"] == "invalid JSON"
            assert answer["detail"].startswith(named.replace("\\u0000", "\x00")), answer
    assert await stored(pool) == 0


async def csrf(client) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', await (await client.get(FORM)).text()).group(1)


async def test_console_form_fields_postgresql_cannot_store_are_a_400_page(client, pool):
    token = await csrf(client)
    for fields, named in [({"parameters.note": "a\x00b"}, "Field 'parameters.note' must not contain a NUL"),
                          ({"parameters.note": "a", "form_key": "\x00"}, "Field 'form_key' must not"),
                          ({"parameters.note": "a", "parameters.x\x00": "1"}, "must not contain a NUL")]:
        body = urlencode({"csrf_token": token, **fields})  # aiohttp's FormData refuses a NUL in a name
        resp = await client.post(FORM, data=body, allow_redirects=False,
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert resp.status == 400 and resp.content_type == "text/html"
        assert named in (await resp.text()).replace("&#39;", "'")
    assert await stored(pool) == 0


async def test_console_numbers_must_be_finite_and_json_storable_shown_on_their_field(client, pool):
    token = await csrf(client)
    specs = ('{"a": NaN}', '{"a": "\\u0000"}', '"\\ud800"', "[" * 100_000 + "]" * 100_000)
    cases = [("size", value) for value in ("nan", "inf", "-inf", "1e999")] + [("spec", s) for s in specs]
    for field, value in cases:
        resp = await client.post(FORM, data={"csrf_token": token, "parameters.note": "a",
                                             f"parameters.{field}": value}, allow_redirects=False)
        assert resp.status == 422, (field, value[:20])
        assert f'id="f-parameters-{field}-error"' in await resp.text()
    assert await stored(pool) == 0


UNDECODABLE = [
    (b"parameters.note=\xff\xfe", "application/x-www-form-urlencoded"),
    (b"parameters.note=a", "application/x-www-form-urlencoded; charset=no-such-charset"),
    (b"--xx\r\nbroken", "multipart/form-data; boundary=xx"),
    (b"abc", "multipart/form-data"),
]


async def test_form_bodies_aiohttp_cannot_decode_are_a_400_page(client, pool):
    for path in (FORM, "/logout", "/setup/unlock"):
        for body, content_type in UNDECODABLE:
            resp = await client.post(path, data=body, headers={"Content-Type": content_type},
                                     allow_redirects=False)
            assert resp.status == 400 and resp.content_type == "text/html", (path, content_type)
            assert "The form could not be read" in await resp.text()
    assert await stored(pool) == 0


async def test_a_file_upload_is_refused_and_console_errors_are_pages(client, pool):
    form = aiohttp.FormData({"csrf_token": await csrf(client), "parameters.note": "a"})
    form.add_field("parameters.spec", b"{}", filename="spec.json", content_type="application/json")
    resp = await client.post(FORM, data=form, allow_redirects=False)
    assert resp.status == 400 and "is a file upload" in (await resp.text()).replace("&#39;", "'")
    # aiohttp's own refusals on console paths are pages too; the API keeps JSON.
    many = {"csrf_token": "x", **{f"parameters.f{i}": "v" for i in range(1500)}}
    resp = await client.post(FORM, data=many)
    assert resp.status == 413 and resp.content_type == "text/html"
    browser = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    resp = await client.put("/catalog", headers=browser)
    assert resp.status == 405 and resp.content_type == "text/html" and "GET" in resp.headers["Allow"]
    resp = await client.get("/no-such-page", headers=browser)
    assert resp.status == 404 and resp.content_type == "text/html"
    resp = await client.get("/no-such-page")  # a machine's: JSON, as every unknown route
    assert resp.status == 404 and resp.content_type == "application/json"
    resp = await client.put("/api/v1/catalog/items", headers={"Authorization": f"Bearer {client.token}"})
    assert resp.status == 405 and resp.content_type == "application/json"
    assert await stored(pool) == 0


def jira_headers(body: bytes) -> dict[str, str]:
    return {"X-Hub-Signature": "sha256=" + hmac.new(JIRA_SECRET.encode(), body, hashlib.sha256).hexdigest()}


JIRA_PAYLOADS = [
    (b'{"issue":{"key":"OPS-1","fields":"resolved"}}', 200),
    (b'{"issue":{"key":"OPS-1","fields":{"status":"Done"}}}', 200),
    (b'{"issue":{"key":"OPS-1","fields":{"status":{"statusCategory":["done"]}}}}', 200),
    (b'{"issue":{"key":"OPS\\u0000-1","fields":{"resolution":{"name":"Done"}}}}', 400),
    (b'{"issue":{"key":"\\ud800","fields":{"resolution":{"name":"Done"}}}}', 400),
    (b'{"issue":{"key":{"id":1},"fields":{"resolution":{"name":"Done"}}}}', 400),
    (b'{"issue":{"key":1e999,"fields":{"resolution":{"name":"Done"}}}}', 400),
    (b'{"issue":' * 10_000 + b"1" + b"}" * 10_000, 400),
]


async def test_jira_payloads_of_another_shape_are_answered_not_crashed_on(client):
    for body, status in JIRA_PAYLOADS:
        resp = await client.post("/api/v1/webhooks/jira", data=body, headers=jira_headers(body))
        assert resp.status == status, body[:60]
        answer = await resp.json()
        assert answer["status"] == "ignored" if status == 200 else "issue" in answer["detail"]


async def test_a_jira_signature_with_non_ascii_characters_is_a_401(client):
    resp = await client.post("/api/v1/webhooks/jira", data=b"{}", headers={"X-Hub-Signature": "sha256=é"})
    assert resp.status == 401 and (await resp.json())["error"] == "invalid signature"


def test_a_secret_field_with_a_nul_is_refused_without_quoting_it():
    code, message = check_value({"name": "password", "type": "secret"}, "hunter2\x00")
    assert code == "invalid" and "NUL" in message and "hunter2" not in message


async def test_an_event_id_that_is_no_bigint_is_a_400_on_every_event_stream(client):
    resp = await client.post("/api/v1/requests", headers={"Authorization": f"Bearer {client.token}"},
                             json={"catalog_item": "free-form", "parameters": {"note": "a"}})
    href = (await resp.json())["href"]
    request_id = href.rsplit("/", 1)[1]
    for after in ("99999999999999999999", "²", "-1"):
        for accept in ("application/json", "text/event-stream"):
            for how in ({"Last-Event-ID": after}, {}):
                query = "" if how else f"?after={after}"
                resp = await client.get(f"{href}/events{query}", headers={
                    "Authorization": f"Bearer {client.token}", "Accept": accept, **how})
                assert resp.status == 400 and (await resp.json())["parameter"] == "after", (after, how)
        resp = await client.get(f"/requests/{request_id}/events", headers={"Last-Event-ID": after})
        assert resp.status == 400 and resp.content_type == "text/html"


async def test_numbers_str_isdigit_takes_but_int_refuses_are_400s(client, runtime):
    # '²' is a digit to str.isdigit, not to int(): each of these was a 500.
    api = {"Authorization": f"Bearer {client.token}"}
    resp = await client.get("/api/v1/requests?limit=²", headers=api)
    assert resp.status == 400 and (await resp.json())["parameter"] == "limit"
    forged = encode_cursor("²", json.dumps([None] * len(LIST_FILTERS)))
    resp = await client.get(f"/api/v1/requests?cursor={forged}", headers=api)
    assert resp.status == 400 and (await resp.json())["parameter"] == "cursor"
    resp = await client.get("/requests?before=²")
    assert resp.status == 400 and resp.content_type == "text/html"
    sign_in(client, runtime, admin=True)
    page = await (await client.get("/admin/jobs")).text()
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    resp = await client.post("/admin/jobs/²/retry", data={"csrf_token": token}, allow_redirects=False)
    assert resp.status == 404 and resp.content_type == "text/html"
