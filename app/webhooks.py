"""Webhook intake: verify, record, dispatch to the handlers, answer at once.

A delivery's row in ``webhook_events`` and the jobs its handlers queue commit in
one transaction, so a delivery is never acknowledged without its work being
durable, and never half-recorded. Slow work never runs here.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from aiohttp import web
from gidgethub.sansio import Event

from app import jobs
from app.log import delivery_id_var
from app.state import RUNTIME

log = logging.getLogger(__name__)

# GitHub caps payloads at 25 MB and drops larger ones; so do we, without reading them.
MAX_PAYLOAD_BYTES = 25 * 1024 * 1024


class PayloadError(Exception):
    """The payload lacks a field, or a field has the wrong type, that a handler needs."""

    def __init__(self, field_path: str, problem: str = "is missing"):
        self.field_path = field_path
        super().__init__(f"payload field '{field_path}' {problem}")


def require(data: Any, path: str, kind: type | tuple[type, ...] | None = None) -> Any:
    """``data[a][b]...`` for ``path`` ``"a.b"``, or PayloadError naming the missing field."""
    value = data
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value or value[part] is None:
            raise PayloadError(path)
        value = value[part]
    if kind is not None and not isinstance(value, kind):
        raise PayloadError(path, "has the wrong type")
    return value


@dataclass
class Intake:
    """One delivery as the handlers see it: the open transaction and what they decided."""

    conn: asyncpg.Connection
    settings: Any
    delivery_id: str
    event: str
    job_ids: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)

    async def enqueue(self, task: str, args: dict[str, Any], **options: Any) -> int:
        """Queue a job in this delivery's transaction; returns its id (or its waiting twin's)."""
        queued = await jobs.enqueue(self.conn, task, args, delivery_id=self.delivery_id, **options)
        if queued.job_id not in self.job_ids:
            self.job_ids.append(queued.job_id)
        return queued.job_id

    def ignore(self, reason: str) -> None:
        """Say why this delivery needs no work (shown in the 200 response and stored)."""
        self.ignored.append(reason)

    def handled(self, note: str) -> None:
        """Say the handler did its (cheap) work inline; no job was needed."""
        self.notes.append(note)


def signature_valid(body: bytes, header: str | None, secrets: tuple[str, ...]) -> bool:
    """True when ``X-Hub-Signature-256`` matches ``body`` under any configured secret."""
    if not header or not header.startswith("sha256=") or not secrets:
        return False
    received = header[len("sha256="):].strip()
    ok = False
    for secret in secrets:
        expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        # Check every secret, not stopping at a match, so timing says nothing.
        ok |= hmac.compare_digest(expected, received)
    return ok


def error(status: int, message: str, detail: Any = None) -> web.Response:
    body: dict[str, Any] = {"error": message}
    if detail is not None:
        body["detail"] = detail
    return web.json_response(body, status=status)


INSERT_EVENT = """
INSERT INTO webhook_events (delivery_id, attempt, event, action, installation_id, repository,
                            signature_valid, payload, status, reason, job_ids, processed_at, error)
VALUES ($1,
        1 + (SELECT count(*) FROM webhook_events WHERE delivery_id = $1),
        $2, $3, $4, $5, $6, $7, $8, $9, $10,
        CASE WHEN $8 IN ('ignored', 'processed', 'rejected') THEN now() END, $11)
RETURNING id
"""


async def _record(
    conn: asyncpg.Connection | asyncpg.Pool,
    *,
    delivery_id: str,
    event: str,
    data: dict[str, Any] | None,
    raw: str | None,
    signature_ok: bool,
    status: str,
    reason: str | None = None,
    job_ids: list[int] | None = None,
    error_text: str | None = None,
) -> None:
    from app.db import RawJson

    installation_id = repository = action = None
    if isinstance(data, dict):
        action = data.get("action") if isinstance(data.get("action"), str) else None
        inst = data.get("installation")
        if isinstance(inst, dict) and isinstance(inst.get("id"), int):
            installation_id = inst["id"]
        repo = data.get("repository")
        if isinstance(repo, dict) and isinstance(repo.get("full_name"), str):
            repository = repo["full_name"]
    await conn.execute(
        INSERT_EVENT,
        delivery_id,
        event,
        action,
        installation_id,
        repository,
        signature_ok,
        RawJson(raw) if raw is not None else None,
        status,
        reason,
        job_ids or [],
        error_text,
    )


async def receive(request: web.Request) -> web.Response:
    """``POST /api/v1/webhooks/github``: GitHub's deliveries."""
    started = time.perf_counter()
    state = request.app[RUNTIME]
    settings = state.settings
    delivery_id = request.headers.get("X-GitHub-Delivery", "").strip()
    event_name = request.headers.get("X-GitHub-Event", "").strip()
    token = delivery_id_var.set(delivery_id or None)
    try:
        if request.content_length is not None and request.content_length > MAX_PAYLOAD_BYTES:
            return error(413, "payload too large", f"GitHub caps deliveries at {MAX_PAYLOAD_BYTES} bytes")
        body = await _read_limited(request)
        if body is None:
            return error(413, "payload too large", f"GitHub caps deliveries at {MAX_PAYLOAD_BYTES} bytes")
        pool: asyncpg.Pool = state.pool

        if not signature_valid(body, request.headers.get("X-Hub-Signature-256"),
                               settings.webhook_secrets):
            reason = ("no webhook secret configured (PAO_WEBHOOK_SECRET)" if not settings.webhook_secrets
                      else "missing X-Hub-Signature-256" if "X-Hub-Signature-256" not in request.headers
                      else "signature does not match")
            # Kept for audit; the payload of an unauthenticated request is not stored.
            await _record(pool, delivery_id=delivery_id or "unknown", event=event_name or "unknown",
                          data=None, raw=None, signature_ok=False, status="rejected", reason=reason)
            log.warning("rejected delivery: %s", reason)
            return error(401, "invalid signature", reason)

        ctype = request.content_type
        if ctype != "application/json":
            return error(415, "unsupported media type",
                         f"expected application/json, got {ctype or 'none'}; "
                         "set the webhook's content type to application/json")
        if not event_name:
            return error(400, "missing header", "X-GitHub-Event is required")
        if not delivery_id:
            return error(400, "missing header", "X-GitHub-Delivery is required")
        try:
            text = body.decode("utf-8")
            data = json.loads(text)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            await _record(pool, delivery_id=delivery_id, event=event_name, data=None, raw=None,
                          signature_ok=True, status="rejected", reason="malformed JSON")
            return error(400, "malformed JSON", str(exc))
        if not isinstance(data, dict):
            return error(400, "malformed payload", "the payload must be a JSON object")

        if event_name == "ping":
            await _record(pool, delivery_id=delivery_id, event=event_name, data=data, raw=text,
                          signature_ok=True, status="processed", reason="pong")
            return web.json_response(
                {"status": "pong", "message": "Webhook configured successfully"}
            )

        response = await _dispatch(state, delivery_id, event_name, data, text)
        log.debug("delivery %s (%s) answered in %.1f ms", delivery_id, event_name,
                  (time.perf_counter() - started) * 1000)
        return response
    finally:
        delivery_id_var.reset(token)


async def _dispatch(state: Any, delivery_id: str, event_name: str, data: dict[str, Any],
                    text: str) -> web.Response:
    from app.handlers import router

    event = Event(data, event=event_name, delivery_id=delivery_id)
    if not router.fetch(event):
        await _record(state.pool, delivery_id=delivery_id, event=event_name, data=data, raw=text,
                      signature_ok=True, status="ignored", reason=f"no handler for {_label(event)}")
        return web.json_response({"status": "ignored", "reason": f"no handler for {_label(event)}"})
    try:
        async with state.pool.acquire() as conn, conn.transaction():
            intake = Intake(conn, state.settings, delivery_id, event_name)
            await router.dispatch(event, state.github, intake=intake)
            if intake.job_ids:
                status, reason = "queued", "; ".join(intake.notes) or None
            elif intake.notes:
                status, reason = "processed", "; ".join(intake.notes)
            else:
                status = "ignored"
                reason = "; ".join(intake.ignored) or f"nothing to do for {_label(event)}"
            await _record(conn, delivery_id=delivery_id, event=event_name, data=data, raw=text,
                          signature_ok=True, status=status, reason=reason, job_ids=intake.job_ids)
    except PayloadError as exc:
        await _record(state.pool, delivery_id=delivery_id, event=event_name, data=data, raw=text,
                      signature_ok=True, status="rejected", reason=str(exc))
        return error(400, "invalid payload", str(exc))
    if status == "queued":
        log.info("delivery %s (%s) queued job(s) %s", delivery_id, _label(event), intake.job_ids)
        return web.json_response(
            {"status": "accepted", "delivery_id": delivery_id, "job_ids": intake.job_ids},
            status=202,
        )
    if status == "processed":
        return web.json_response({"status": "processed", "delivery_id": delivery_id,
                                  "detail": reason})
    return web.json_response({"status": "ignored", "reason": reason})


def _label(event: Event) -> str:
    action = event.data.get("action") if isinstance(event.data, dict) else None
    return f"{event.event}.{action}" if isinstance(action, str) else event.event


async def _read_limited(request: web.Request) -> bytes | None:
    """The body, or None once it passes the cap (chunked uploads carry no length)."""
    chunks = []
    size = 0
    async for chunk in request.content.iter_chunked(256 * 1024):
        size += len(chunk)
        if size > MAX_PAYLOAD_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
