"""The request form of an item or bundle, generated from its ``presentation`` (``forms.py``).

A bundle's form asks the bundle's fields and each member item's (``item_parameters.<item>.<field>``,
the API's own paths, less the parameters the bundle fixes), optional items behind an "include"
checkbox. ``submit_request`` hands the request to the requests service with the signed-in
person as requester; its 422 errors land on the fields they name; success leads to the
request's page.
"""

from __future__ import annotations

import secrets
from typing import Any

import asyncpg
from aiohttp import web

from app.api.catalog import KINDS, fetch_entry
from app.console.forms import Form, FormField, build_form, parse_submission, section_of
from app.console.render import error_page, page
from app.console.session import Identity, csrf_checked_form, csrf_refused, current_user, signed_in
from app.requests.batch import SUBMISSIONS
from app.requests.config import request_settings
from app.state import RUNTIME

routes = web.RouteTableDef()

ITEM_SECTION = "parameters"
BUNDLE_SECTION = "bundle_parameters"
MEMBER_PREFIX = "item_parameters."


def item_section(item: str) -> str:
    return MEMBER_PREFIX + item


async def sections_of(pool: asyncpg.Pool, kind: str, row: Any) -> tuple[dict[str, list[dict[str, Any]]],
                                                                           dict[str, str]]:
    """The form's sections (section -> field specs) and each section's title."""
    presentation = row["presentation"] or {}
    if kind != "bundles":
        return {ITEM_SECTION: list(presentation.get("fields") or [])}, {ITEM_SECTION: "Details"}
    sections: dict[str, list[dict[str, Any]]] = {
        BUNDLE_SECTION: list(presentation.get("bundle_fields") or [])}
    titles = {BUNDLE_SECTION: "For the whole bundle"}
    definition = row["bundle_definition"] or {}
    members = [(e, True) for e in definition.get("required_items") or []] + \
              [(e, False) for e in definition.get("optional_items") or []]
    items = {r["name"]: r for r in await pool.fetch(
        "SELECT name, display_name, presentation FROM catalog_items"
        " WHERE name = ANY($1::text[]) AND is_active",
        [e["catalog_item"] for e, _ in members])}
    for entry, required in members:
        name = entry["catalog_item"]
        item = items.get(name)
        label = (item["display_name"] if item is not None else None) or name
        fixed = entry.get("parameters") or {}
        specs: list[dict[str, Any]] = []
        if not required:
            # "enabled" is the API's own switch for an optional item (plan.py pops it).
            specs.append({"name": "enabled", "type": "boolean", "label": f"Include {label}", "order": -1,
                          "default": bool(entry.get("default_enabled", False))})
        fields = ((item["presentation"] or {}).get("fields") or []) if item is not None else []
        specs += [f for f in fields if f.get("name") not in fixed]  # fixed by the bundle: not asked
        sections[item_section(name)] = specs
        titles[item_section(name)] = label + ("" if required else " (optional)")
    return sections, titles


def groups(form: Form, titles: dict[str, str]) -> list[tuple[str, list[FormField]]]:
    """(title, fields) per section that has fields, in the sections' order."""
    out: list[tuple[str, list[FormField]]] = []
    for section, title in titles.items():
        fields = [f for f in form.fields if section_of(f) == section]
        if fields:
            out.append((title, fields))
    return out


def request_body(kind: str, name: str, version: str | None,
                 values: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The ``POST /api/v1/requests`` body for the parsed form values (pure)."""
    body: dict[str, Any] = {"catalog_item" if kind != "bundles" else "catalog_bundle": name}
    if version:
        body["version"] = version
    if kind != "bundles":
        body["parameters"] = values.get(ITEM_SECTION, {})
        return body
    body["bundle_parameters"] = values.get(BUNDLE_SECTION, {})
    body["item_parameters"] = {section[len(MEMBER_PREFIX):]: v for section, v in values.items()
                               if section.startswith(MEMBER_PREFIX)}
    return body


def leave_out_disabled(values: dict[str, dict[str, Any]],
                       problems: list[dict[str, str]]) -> list[dict[str, str]]:
    """An optional item left out sends only ``enabled: false``; its fields' problems do not count."""
    for section, v in values.items():
        if v.get("enabled") is False:
            values[section] = {"enabled": False}
            problems = [p for p in problems if not p["path"].startswith(section + ".")]
    return problems


async def submit_request(app: web.Application, user: Identity, body: dict[str, Any],
                         idempotency_key: str | None) -> tuple[int, dict[str, Any]]:
    """Hand the request to the requests service as ``user``; (status, JSON body) as the API answers."""
    return await app[SUBMISSIONS].submit(body, requester={"user_id": user.login, "team": user.team},
                                         submitted_by=user.login,
                                         secret_key=request_settings(app[RUNTIME].settings).secret_key,
                                         idempotency_key=idempotency_key)


async def _entry(request: web.Request) -> tuple[str, Any] | web.Response:
    kind = request.match_info["kind"]
    name = request.match_info["name"]
    if kind not in KINDS or "\x00" in name:
        return error_page(request, 404, "no such catalog page")
    row = await fetch_entry(request.app[RUNTIME].pool, kind, name)
    if row is None or not row["is_active"]:
        return error_page(request, 404, f"no {KINDS[kind][1]} named {name!r} to request")
    return kind, row


def _form_page(request: web.Request, kind: str, row: Any, form: Form, titles: dict[str, str], *,
               status: int = 200, notice: str | None = None, form_key: str | None = None) -> web.Response:
    # The form key is the submission's Idempotency-Key: a form posted twice makes one request.
    return page(request, "request_form.html", status=status, kind=kind, entry=row, form=form,
                groups=groups(form, titles), notice=notice, form_key=form_key or secrets.token_urlsafe(16))


@routes.get("/catalog/{kind}/{name}/request")
@signed_in
async def request_form(request: web.Request) -> web.Response:
    found = await _entry(request)
    if isinstance(found, web.Response):
        return found
    kind, row = found
    sections, titles = await sections_of(request.app[RUNTIME].pool, kind, row)
    return _form_page(request, kind, row, build_form(sections), titles)


@routes.post("/catalog/{kind}/{name}/request")
@signed_in
async def submit(request: web.Request) -> web.Response:
    posted = await csrf_checked_form(request)
    if posted is None:
        return csrf_refused(request)
    found = await _entry(request)
    if isinstance(found, web.Response):
        return found
    kind, row = found
    sections, titles = await sections_of(request.app[RUNTIME].pool, kind, row)
    submitted: dict[str, Any] = {}
    for key in posted:
        values = posted.getall(key)
        submitted[key] = values if len(values) > 1 else values[0]
    form_key = str(posted.get("form_key") or "")[:64] or None
    values, problems = parse_submission(sections, submitted)
    problems = leave_out_disabled(values, problems)

    def again(status: int, errors: list[dict[str, Any]], notice: str | None = None) -> web.Response:
        return _form_page(request, kind, row, build_form(sections, submitted=submitted, errors=errors),
                          titles, status=status, notice=notice, form_key=form_key)

    if problems:
        return again(422, problems)
    user = current_user(request)
    assert user is not None
    body = request_body(kind, row["name"], str(posted.get("version") or "") or None, values)
    status, answer = await submit_request(request.app, user, body, form_key)
    if status == 422:
        return again(422, answer.get("errors") or [])
    if status == 409 and answer.get("current_version"):
        return again(409, [], notice=f"The catalog changed while you filled in the form: version "
                     f"{answer['current_version']} is current. Check the fields and submit again.")
    if status == 409 and answer.get("request_id"):
        # The form was sent before (then changed, e.g. after going back): a new key makes a new request.
        form_key = None
        return again(409, [], notice=f"This form was already sent as request {answer['request_id']} "
                     "(see My team's requests). Submit again to make another request with these values.")
    if status >= 400:
        return error_page(request, status,
                          str(answer.get("detail") or answer.get("error") or "request refused"))
    raise web.HTTPSeeOther(f"/requests/{answer['request_id']}")
