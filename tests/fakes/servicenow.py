"""A ServiceNow fake: the Table API paths, status codes and body shapes PAO uses.

* Basic auth (user, password); without it: 401 ``{"error": {"message": "User Not
  Authenticated", "detail": "Required to provide Auth information"}, "status": "failure"}``.
* ``POST /api/now/table/{table}``: 201 ``{"result": record}``; every field value is a
  string, as ServiceNow returns them (``sys_id`` 32 hex digits, ``number`` INC0010001,
  ``state`` "1", ``active`` "true"). An unknown table: 400 ``Invalid table``.
* ``GET /api/now/table/{table}?sysparm_query=field=value&sysparm_limit=N``: 200
  ``{"result": [records]}`` (only ``field=value`` queries are understood here).
* ``close(number)`` closes a record as a person would (``state`` "7", ``active`` "false").
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

PREFIXES = {"incident": "INC", "sc_task": "SCTASK", "sc_request": "REQ"}


@dataclass
class FakeServiceNow:
    user: str = "pao.integration"
    password: str = "snow-password-1"
    records: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    fail_next_create: int = 0  # create the record, then answer 503 (a lost answer)
    url: str = ""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/api/now/table/{table}", self.create)
        app.router.add_get("/api/now/table/{table}", self.query)
        return app

    def _check(self, request: web.Request) -> None:
        expected = "Basic " + base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        if request.headers.get("Authorization") != expected:
            raise web.HTTPUnauthorized(text='{"error": {"message": "User Not Authenticated", "detail": '
                                       '"Required to provide Auth information"}, "status": "failure"}',
                                       content_type="application/json")
        if request.match_info["table"] not in PREFIXES:
            raise web.HTTPBadRequest(text='{"error": {"message": "Invalid table '
                                     f'{request.match_info["table"]}", "detail": null}}, '
                                     '"status": "failure"}', content_type="application/json")

    def close(self, number: str) -> None:
        for rows in self.records.values():
            for r in rows:
                if r["number"] == number:
                    r.update(state="7", active="false")

    async def create(self, request: web.Request) -> web.Response:
        self._check(request)
        table = request.match_info["table"]
        body = await request.json()
        rows = self.records.setdefault(table, [])
        record = {k: str(v) for k, v in body.items()}
        record.update(sys_id=uuid.uuid4().hex, number=f"{PREFIXES[table]}{10001 + len(rows):07d}",
                      state="1", active="true", sys_class_name=table)
        rows.append(record)
        if self.fail_next_create:
            self.fail_next_create -= 1
            return web.json_response({"error": {"message": "Service Unavailable", "detail": None},
                                      "status": "failure"}, status=503)
        return web.json_response({"result": record}, status=201)

    async def query(self, request: web.Request) -> web.Response:
        self._check(request)
        wanted = request.query.get("sysparm_query", "")
        name, _, value = wanted.partition("=")
        limit = int(request.query.get("sysparm_limit", "10000"))
        rows: list[Any] = [r for r in self.records.get(request.match_info["table"], [])
                           if not wanted or r.get(name) == value]
        return web.json_response({"result": rows[:limit]})
