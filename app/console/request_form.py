"""The request form of an item or bundle, generated from its ``presentation`` (``forms.py``).

Submission goes through ``submit_request``: the seam where the requests service
(``POST /api/v1/requests``, built separately) plugs in. Its 422 answer
``{"errors": [{"path", "code", "message"}]}`` is shown on the fields it names.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from app.api.catalog import KINDS, fetch_entry
from app.console.forms import Form, build_form, parse_submission
from app.console.render import error_page, page
from app.console.session import Identity, csrf_checked_form, csrf_refused, current_user, signed_in
from app.state import RUNTIME

routes = web.RouteTableDef()

SECTION_TITLES = {"fields": "Details", "bundle_fields": "For the whole bundle"}


class RequestsUnavailable(Exception):
    """This PAO has no requests service to hand a request to."""


def sections_of(kind: str, row: Any) -> dict[str, list[dict[str, Any]]]:
    presentation = row["presentation"] or {}
    key = "bundle_fields" if kind == "bundles" else "fields"
    return {key: list(presentation.get(key) or [])}


def groups(form: Form) -> list[tuple[str, list[Any]]]:
    out: list[tuple[str, list[Any]]] = []
    for section, title in SECTION_TITLES.items():
        fields = [f for f in form.fields if f.name.startswith(section + ".")]
        if fields:
            out.append((title, fields))
    return out


async def submit_request(rt: Any, user: Identity, kind: str, name: str,
                         values: dict[str, dict[str, Any]]) -> tuple[int, dict[str, Any]]:
    """Hand the request to the requests service; (status, JSON body) as the API answers.

    The requests service is not part of this build yet: raise until it is wired here.
    """
    raise RequestsUnavailable


async def _entry(request: web.Request) -> tuple[str, Any] | web.Response:
    kind = request.match_info["kind"]
    name = request.match_info["name"]
    if kind not in KINDS or "\x00" in name:
        return error_page(request, 404, "no such catalog page")
    row = await fetch_entry(request.app[RUNTIME].pool, kind, name)
    if row is None or not row["is_active"]:
        return error_page(request, 404, f"no {KINDS[kind][1]} named {name!r} to request")
    return kind, row


def _form_page(request: web.Request, kind: str, row: Any, form: Form, *, status: int = 200,
               notice: str | None = None) -> web.Response:
    return page(request, "request_form.html", status=status, kind=kind, entry=row, form=form,
                groups=groups(form), notice=notice)


@routes.get("/catalog/{kind}/{name}/request")
@signed_in
async def request_form(request: web.Request) -> web.Response:
    found = await _entry(request)
    if isinstance(found, web.Response):
        return found
    kind, row = found
    return _form_page(request, kind, row, build_form(sections_of(kind, row)))


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
    sections = sections_of(kind, row)
    submitted: dict[str, Any] = {}
    for key in posted:
        values = posted.getall(key)
        submitted[key] = values if len(values) > 1 else values[0]
    values, problems = parse_submission(sections, submitted)
    if problems:
        return _form_page(request, kind, row, build_form(sections, submitted=submitted, errors=problems),
                          status=422)
    user = current_user(request)
    assert user is not None
    try:
        status, body = await submit_request(request.app[RUNTIME], user, kind, row["name"], values)
    except RequestsUnavailable:
        return _form_page(request, kind, row, build_form(sections, submitted=submitted), status=501,
                          notice="This PAO cannot take requests yet: its requests service is not installed.")
    if status == 422:
        return _form_page(request, kind, row,
                          build_form(sections, submitted=submitted, errors=body.get("errors") or []),
                          status=422)
    if status >= 400:
        return error_page(request, status, str(body.get("detail") or body.get("error") or "request refused"))
    raise web.HTTPSeeOther(str(body.get("href") or "/catalog"))
