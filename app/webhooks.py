"""Webhook intake: verify, record, dispatch to the handlers, answer at once.

A delivery's row in ``webhook_events`` and the jobs its handlers queue commit in
one transaction, so a delivery is never acknowledged without its work being
durable, and never half-recorded. Slow work never runs here.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import aiohttp
import asyncpg
import orjson
from aiohttp import web
from gidgethub import routing
from gidgethub.sansio import Event

from app import metrics
from app.groupcommit import GroupCommit
from app.intake import BIGINT_MAX, Intake, OnDemandTransaction, PayloadError, optional
from app.log import delivery_id_var, scrub
from app.state import RUNTIME

log = logging.getLogger(__name__)

# GitHub caps payloads at 25 MB and drops larger ones; so do we, without reading them.
MAX_PAYLOAD_BYTES = 25 * 1024 * 1024
# A body must have arrived this long after its headers. GitHub gives up on a delivery
# after 10 s, so a slower body is not GitHub's, and a stalled upload holds nothing longer.
BODY_TIMEOUT_SECONDS = 10.0
# Deliveries larger than this (or sent without a length) count against a shared budget of
# buffered bytes, taken as the bytes arrive, so unauthenticated uploads cannot exhaust
# memory before their signatures are checked, and one that stalls holds only what it sent.
LARGE_BODY_BYTES = 1024 * 1024
LARGE_BODY_BUDGET_BYTES = 4 * MAX_PAYLOAD_BYTES


class ByteBudget:
    """Bytes that large request bodies may hold in memory at once, shared by all requests."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.available = capacity
        self._waiters: list[asyncio.Future[None]] = []

    async def take(self, size: int) -> None:
        """Wait until ``size`` bytes are free and hold them (the caller's deadline bounds it)."""
        while self.available < size:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
        self.available -= size

    def give_back(self, size: int) -> None:
        """Free ``size`` bytes and wake the waiting readers. Synchronous, so a cancelled
        request still gives back everything it held."""
        self.available += size
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)


LARGE_BODY_BUDGET: web.AppKey[ByteBudget] = web.AppKey("large_body_budget", ByteBudget)


class UnstorablePayload(PayloadError):
    """The payload is valid JSON that PAO or PostgreSQL cannot store as it is."""

    def __init__(self, problem: str) -> None:
        Exception.__init__(self, problem)
        self.field_path = ""


NUL_PROBLEM = "payload contains \\u0000 (a NUL character), which PostgreSQL cannot store"


class TokenBucket:
    """At most ``rate`` events a second on average, bursts of up to ``burst``."""

    def __init__(self, rate: float, burst: float):
        self.rate, self.burst = rate, burst
        self.tokens, self.stamp = burst, time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


_REJECTED_AUDIT = TokenBucket(rate=10.0, burst=100.0)
# Unauthenticated noise (forged, abandoned or stalled uploads) is logged, but at a
# bounded rate and never with a traceback: anyone can send it.
_NOISE_LOG = TokenBucket(rate=1.0, burst=10.0)


def log_unauthenticated(message: str, *args: Any) -> None:
    """One WARNING line about unauthenticated input, at most about one a second."""
    if _NOISE_LOG.take():
        log.warning(message, *args)
    else:
        log.debug(message, *args)


def storable(text: str) -> str:
    """``text`` as PostgreSQL can store it: undecodable bytes and NULs written as escapes."""
    if text.isascii() and "\x00" not in text:
        return text
    try:
        raw = text.encode("utf-8", "surrogateescape")  # the bytes aiohttp could not decode
    except UnicodeEncodeError:
        raw = text.encode("utf-8", "backslashreplace")
    return raw.decode("utf-8", "backslashreplace").replace("\x00", "\\x00")


def signature_valid(body: bytes, header: str | None, secrets: tuple[str, ...]) -> bool:
    """True when ``X-Hub-Signature-256`` matches ``body`` under any configured secret."""
    if not header or not header.startswith("sha256=") or not secrets:
        return False
    # Compared as bytes: compare_digest refuses str with non-ASCII characters,
    # and a forged header must be a 401, not a 500.
    received = header[len("sha256="):].strip().encode("utf-8", "surrogateescape")
    ok = False
    for secret in secrets:
        expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest().encode()
        # Check every secret, not stopping at a match, so timing says nothing.
        ok |= hmac.compare_digest(expected, received)
    return ok


def error(status: int, message: str, detail: Any = None) -> web.Response:
    body: dict[str, Any] = {"error": message}
    if detail is not None:
        body["detail"] = detail
    return web.json_response(body, status=status)


# Asks PostgreSQL whether it can read a payload as jsonb; its DataError (\u0000, a number
# past numeric's range or precision) makes the delivery a 400. Only for the rare payloads
# PAO cannot vouch for itself (``ParsedJson.needs_check``): the column is text, so the
# insert parses nothing.
CHECK_JSONB = "SELECT $1::text::jsonb IS NOT NULL"

INSERT_EVENT = """
INSERT INTO webhook_events (delivery_id, attempt, event, action, installation_id, repository,
                            signature_valid, payload, status, reason, job_ids, processed_at, error)
VALUES ($1,
        1 + (SELECT count(*) FROM webhook_events WHERE delivery_id = $1),
        $2, $3, $4, $5, $6, $7, $8, $9, $10,
        CASE WHEN $8 IN ('ignored', 'processed', 'rejected', 'failed') THEN now() END, $11)
"""


@dataclass
class Delivery:
    """One delivery on its way to ``webhook_events``."""

    delivery_id: str
    event: str
    data: dict[str, Any] | None
    raw: str | None  # the body as sent, stored as-is (``webhook_events.payload`` is text)
    signature_ok: bool
    # PostgreSQL must read ``raw`` as jsonb before it is stored: see ``ParsedJson``.
    raw_needs_check: bool = False
    routed: Event | None = None  # set when handlers want it: dispatched before it is stored
    status: str = "received"
    reason: str | None = None
    job_ids: list[int] = field(default_factory=list)
    payload_error: PayloadError | None = None
    error: str | None = None  # a handler's crash, kept for the operator

    stored: bool = False  # its webhook_events row is committed

    def row(self) -> tuple[Any, ...]:
        """The ``webhook_events`` row. Its summary columns are read leniently (they are for
        the operator, not for handlers) and always storable, so the audit row never fails."""
        data = self.data if isinstance(self.data, dict) else {}
        action = data.get("action")
        inst = data.get("installation")
        installation_id = inst.get("id") if isinstance(inst, dict) else None
        if not isinstance(installation_id, int) or isinstance(installation_id, bool) \
                or not -BIGINT_MAX - 1 <= installation_id <= BIGINT_MAX:
            installation_id = None
        repo = data.get("repository")
        repository = repo.get("full_name") if isinstance(repo, dict) else None
        return (storable(self.delivery_id), storable(self.event),
                storable(action) if isinstance(action, str) else None, installation_id,
                storable(repository) if isinstance(repository, str) else None,
                self.signature_ok, self.raw,
                self.status, storable(self.reason) if self.reason is not None else None,
                self.job_ids, storable(self.error) if self.error is not None else None)


class IntakeWriter(GroupCommit[tuple[Delivery, asyncio.Future[Delivery]]]):
    """Writes deliveries (and runs their handlers) in shared transactions: group commit.

    Requests hand their delivery over and wait. Each writer loop takes every
    delivery waiting at that moment, runs their handlers one after another on
    one connection inside one transaction, inserts their ``webhook_events`` rows
    in one pipelined statement, and commits once; then each request is answered.
    The transaction begins only when a handler asks for the connection: a batch
    no handler needed the database for is one atomic statement, one round trip.
    With no load a batch is one delivery, so nothing waits for a timer. If any
    handler or statement fails, the batch is rolled back and each delivery is
    redone in a transaction of its own, so one bad delivery never costs another.
    """

    def __init__(self, state: Any, router: routing.Router, *, writers: int = 3,
                 max_batch: int = 64):
        super().__init__("intake", writers=writers, max_batch=max_batch)
        self.state = state
        self.router = router  # the handlers, composed in app.handlers

    async def submit(self, delivery: Delivery) -> Delivery:
        """Store ``delivery`` (after its handlers ran); returns it with status and job ids set."""
        future: asyncio.Future[Delivery] = asyncio.get_running_loop().create_future()
        self._enqueue((delivery, future))
        return await future

    async def _write_batch(self, batch: list[tuple[Delivery, asyncio.Future[Delivery]]]) -> None:
        try:
            await self._write([d for d, _ in batch])
        except BaseException as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc if isinstance(exc, Exception)
                                         else RuntimeError("intake stopped"))
            if not isinstance(exc, Exception):
                raise
            return
        for delivery, future in batch:
            if not future.done():
                future.set_result(delivery)

    async def _write(self, batch: list[Delivery]) -> None:
        if len(batch) > 1:
            try:
                async with self._transaction() as transaction:
                    for delivery in batch:
                        await _confirm_storable(transaction.conn, delivery)
                        await self._dispatch(transaction, delivery)
                    # In the handlers' transaction if one began, else atomic on its own.
                    await transaction.conn.executemany(INSERT_EVENT, [d.row() for d in batch])
                for delivery in batch:
                    delivery.stored = True
                return
            except Exception:
                # Undo what the rolled-back handlers decided; a delivery no handler
                # runs for keeps the outcome intake gave it (ignored, rejected, pong).
                for delivery in batch:
                    if delivery.routed is not None:
                        delivery.job_ids = []
                        delivery.status, delivery.reason = "received", None
        for delivery in batch:
            await self._write_one(delivery)

    async def _write_one(self, delivery: Delivery) -> None:
        try:
            async with self._transaction() as transaction:
                await _confirm_storable(transaction.conn, delivery)
                await self._dispatch(transaction, delivery)
                await transaction.conn.execute(INSERT_EVENT, *delivery.row())
            delivery.stored = True
        except (PayloadError, asyncpg.DataError) as exc:
            # A payload a handler cannot use, or one PostgreSQL refuses (a NUL character,
            # a number past numeric's range or precision): the sender's mistake, kept
            # for audit without the payload PostgreSQL would not take.
            if not isinstance(exc, PayloadError):
                problem = NUL_PROBLEM if isinstance(exc, asyncpg.UntranslatableCharacterError) \
                    else f"payload cannot be stored: {str(exc)[:200]}"
                exc, delivery.raw = UnstorablePayload(problem), None
            delivery.payload_error = exc
            delivery.status, delivery.reason, delivery.job_ids = "rejected", str(exc), []
            await self.state.pool.execute(INSERT_EVENT, *delivery.row())
            delivery.stored = True
        except Exception as exc:
            # A handler bug: the request fails (500, so GitHub offers a redelivery),
            # but the delivery itself is kept, with what went wrong.
            delivery.status, delivery.reason, delivery.job_ids = "failed", None, []
            delivery.error = scrub(f"{type(exc).__name__}: {exc}")
            token = delivery_id_var.set(delivery.delivery_id)
            log.exception("delivery %s (%s): handler failed", delivery.delivery_id, delivery.event)
            delivery_id_var.reset(token)
            try:
                await self.state.pool.execute(INSERT_EVENT, *delivery.row())
                delivery.stored = True
            except Exception:
                log.exception("delivery %s (%s): could not be recorded", delivery.delivery_id,
                              delivery.event)

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[OnDemandTransaction]:
        """A pooled connection whose transaction begins when a handler asks for it;
        committed at the end, rolled back on any error (cancellation included)."""
        async with self.state.pool.acquire() as conn:
            transaction = OnDemandTransaction(conn)
            try:
                yield transaction
            except BaseException:
                await transaction.rollback()
                raise
            await transaction.commit()

    async def _dispatch(self, transaction: OnDemandTransaction, delivery: Delivery) -> None:
        event = delivery.routed
        if event is None:
            return
        intake = Intake(transaction, self.state.settings, delivery.delivery_id, delivery.event)
        # Handlers run in this writer's task, not the request's: name the delivery
        # in their log lines here.
        token = delivery_id_var.set(delivery.delivery_id)
        try:
            await self.router.dispatch(event, self.state.github, intake=intake)
        finally:
            delivery_id_var.reset(token)
        delivery.job_ids = intake.job_ids
        if intake.job_ids:
            delivery.status, delivery.reason = "queued", "; ".join(intake.notes) or None
        elif intake.notes:
            delivery.status, delivery.reason = "processed", "; ".join(intake.notes)
        else:
            delivery.status = "ignored"
            delivery.reason = "; ".join(intake.ignored) or f"nothing to do for {_label(event)}"


async def _confirm_storable(conn: asyncpg.Connection, delivery: Delivery) -> None:
    if delivery.raw is not None and delivery.raw_needs_check:
        await conn.fetchval(CHECK_JSONB, delivery.raw)


INTAKE_WRITER: web.AppKey[IntakeWriter] = web.AppKey("intake_writer", IntakeWriter)


async def start_intake(app: web.Application) -> None:
    app[INTAKE_WRITER].start()


async def stop_intake(app: web.Application) -> None:
    await app[INTAKE_WRITER].stop()


class BodyTooLarge(Exception):
    """The request body passed ``MAX_PAYLOAD_BYTES``."""


async def receive(request: web.Request) -> web.Response:
    """``POST /api/v1/webhooks/github``: GitHub's deliveries."""
    if request.content_length is not None and request.content_length > MAX_PAYLOAD_BYTES:
        return _too_large()
    budget = None
    if request.content_length is None or request.content_length > LARGE_BODY_BYTES:
        budget = request.app[LARGE_BODY_BUDGET]
    held = [0]  # bytes taken from the budget; given back once the answer is ready
    try:
        try:
            async with asyncio.timeout(BODY_TIMEOUT_SECONDS):
                body = await _read_body(request, budget, held)
        except TimeoutError:
            log_unauthenticated("webhook body did not arrive within %.0f s; connection closed",
                                BODY_TIMEOUT_SECONDS)
            response = error(408, "request timeout",
                             f"the body did not arrive within {BODY_TIMEOUT_SECONDS:.0f} s")
            response.force_close()
            return response
        except BodyTooLarge:
            return _too_large()
        except (ConnectionError, asyncio.IncompleteReadError, aiohttp.ClientPayloadError) as exc:
            # The sender went away (or broke the body's framing) before the end: nobody to answer.
            log_unauthenticated("webhook upload abandoned: %s", type(exc).__name__)
            response = error(400, "incomplete body", "the connection ended before the body did")
            response.force_close()
            return response
        return await _receive(request, body)
    finally:
        if budget is not None:
            budget.give_back(held[0])


def _one_header(request: web.Request, name: str) -> tuple[str, str | None]:
    """The header's value (stripped, storable) and what is wrong with it, if anything."""
    values = request.headers.getall(name, [])
    if len(values) > 1:
        return storable(values[0].strip()), f"{name} is given {len(values)} times"
    value = values[0].strip() if values else ""
    safe = storable(value)
    return safe, f"{name} is not valid UTF-8 text" if safe != value else None


async def _receive(request: web.Request, body: bytes) -> web.Response:
    started = time.perf_counter()
    settings = request.app[RUNTIME].settings
    writer = request.app[INTAKE_WRITER]
    delivery_id, delivery_problem = _one_header(request, "X-GitHub-Delivery")
    event_name, event_problem = _one_header(request, "X-GitHub-Event")
    token = delivery_id_var.set(delivery_id or None)
    try:
        signatures = request.headers.getall("X-Hub-Signature-256", [])
        # Two signatures are ambiguous (which one did a proxy add?): refused whatever they say.
        if len(signatures) != 1 or not signature_valid(body, signatures[0],
                                                         settings.webhook_secrets):
            if not settings.webhook_secrets:
                reason = "no webhook secret configured (PAO_WEBHOOK_SECRET)"
            elif not signatures:
                reason = "missing X-Hub-Signature-256"
            elif len(signatures) > 1:
                reason = f"X-Hub-Signature-256 is given {len(signatures)} times"
            else:
                reason = "signature does not match"
            # Kept for audit (without the unauthenticated payload), but at a bounded
            # rate: a flood of forged deliveries must not become a flood of writes.
            if _REJECTED_AUDIT.take():
                await writer.submit(Delivery(delivery_id or "unknown", event_name or "unknown",
                                             None, None, False, status="rejected", reason=reason))
            log_unauthenticated("rejected delivery: %s", reason)
            metrics.observe_delivery("unknown", "rejected", started)
            return error(401, "invalid signature", reason)

        header_problem = event_problem or delivery_problem
        if header_problem is not None:
            await writer.submit(Delivery(
                delivery_id or "unknown", event_name or "unknown", None, None, True,
                status="rejected", reason=header_problem))
            return error(400, "invalid header", header_problem)
        ctype = request.content_type
        if ctype != "application/json":
            return error(415, "unsupported media type",
                         f"expected application/json, got {storable(ctype) or 'none'}; "
                         "set the webhook's content type to application/json")
        if not event_name:
            return error(400, "missing header", "X-GitHub-Event is required")
        if not delivery_id:
            return error(400, "missing header", "X-GitHub-Delivery is required")
        try:
            parsed = parse_json(body)
        except UnstorablePayload as exc:
            await writer.submit(Delivery(delivery_id, event_name, None, None, True,
                                         status="rejected", reason=str(exc)))
            return error(400, "invalid payload", str(exc))
        except ValueError as exc:
            await writer.submit(Delivery(delivery_id, event_name, None, None, True,
                                         status="rejected", reason="malformed JSON"))
            return error(400, "malformed JSON", str(exc))
        if not isinstance(parsed.data, dict):
            await writer.submit(Delivery(delivery_id, event_name, None, None, True,
                                         status="rejected", reason="payload is not a JSON object"))
            return error(400, "malformed payload", "the payload must be a JSON object")

        delivery = await writer.submit(routed_delivery(delivery_id, event_name, parsed, writer.router))
        metrics.observe_delivery(delivery.event, delivery.status, started)
        log.debug("delivery %s (%s) answered in %.1f ms", delivery_id, event_name,
                  (time.perf_counter() - started) * 1000)
        return _response(delivery)
    finally:
        delivery_id_var.reset(token)


def routed_delivery(delivery_id: str, event_name: str, parsed: ParsedJson,
                    router: routing.Router) -> Delivery:
    """A verified delivery (``parsed.data`` a dict), with the event its handlers will see
    (or why none will)."""
    data = parsed.data
    delivery = Delivery(delivery_id, event_name, data, parsed.text, True,
                        raw_needs_check=parsed.needs_check)
    try:
        optional(data, "action", str)  # the router looks actions up by value
    except PayloadError as exc:
        delivery.payload_error = exc
        delivery.status, delivery.reason = "rejected", str(exc)
    else:
        if event_name == "ping":
            delivery.status, delivery.reason = "processed", "pong"
        else:
            event = Event(data, event=event_name, delivery_id=delivery_id)
            if router.fetch(event):
                delivery.routed = event
            else:
                delivery.status, delivery.reason = "ignored", f"no handler for {_label(event)}"
    return delivery


# Integers of 19 digits or more, which orjson may not keep exactly (it reads integers
# past 64 bits as floats), are found in a copy of the body where every digit is "0" and
# every other byte a space: a substring search, where a regex would read each byte (~70 us
# for a 7 KB push).
_DIGITS_ONLY = bytes(0x30 if 0x30 <= byte <= 0x39 else 0x20 for byte in range(256))
_LONG_RUN = b"0" * 19
_JSON_SPACE = frozenset(b" \t\n\r")
_VALUE_START = frozenset(b":,[")


def _has_long_integer(body: bytes) -> bool:
    """True when ``body`` may hold an integer of 19 digits or more.

    Only a digit run where a JSON value can start (after ``:``, ``,`` or ``[``, or at the
    very start) counts: runs inside strings (a new branch's all-zero ``before`` SHA) would
    send such pushes to the slow parser, and a string that merely looks like a number
    only costs a slower parse.
    """
    digits = body.translate(_DIGITS_ONLY)
    start = digits.find(_LONG_RUN)
    while start >= 0:
        i = start - 1
        if i >= 0 and body[i] == 0x2D:  # "-"
            i -= 1
        while i >= 0 and body[i] in _JSON_SPACE:
            i -= 1
        if i < 0 or body[i] in _VALUE_START:
            return True
        # Past the end of this run: the next candidate starts a new one.
        end = digits.find(b" ", start)
        if end < 0:
            return False
        start = digits.find(_LONG_RUN, end)
    return False


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


class ParsedJson(NamedTuple):
    """A JSON body: its text (stored as-is), its value, and whether PostgreSQL must
    confirm it can read the text as jsonb (``CHECK_JSONB``) before it is stored."""

    text: str
    data: Any
    # True for the few payloads jsonb may refuse although they parsed here: a number
    # with a fraction or exponent (numeric's range and precision are narrower than
    # JSON's: 1e-16384), a \u0000 escape (jsonb keeps no NUL), and whatever only the
    # json module could read (lone surrogates, numbers past a double's range).
    needs_check: bool


def _has_float(data: Any) -> bool:
    """True when a JSON value holds a number with a fraction or an exponent (a float here)."""
    if type(data) is not dict and type(data) is not list:
        return type(data) is float
    # Iterative (orjson reads 1024 levels, past Python's recursion limit); only
    # containers go on the stack, so the many strings cost one type check each.
    stack = [data]
    while stack:
        container = stack.pop()
        for value in container.values() if type(container) is dict else container:
            kind = type(value)
            if kind is float:
                return True
            if kind is dict or kind is list:
                stack.append(value)
    return False


def parse_json(body: bytes) -> ParsedJson:
    """The body's text and its JSON value; ValueError if it is not JSON, UnstorablePayload
    if no JSON library here can read it (integers past Python's digit limit, nesting
    past its recursion limit)."""
    text = body.decode("utf-8")  # UnicodeDecodeError is a ValueError: not JSON
    if not _has_long_integer(body):
        with contextlib.suppress(orjson.JSONDecodeError):
            data = orjson.loads(body)
            # (a backslash is found by memchr; most payloads have none or few)
            return ParsedJson(text, data, _has_float(data)
                              or (b"\\" in body and b"\\u0000" in body))
    # orjson refuses numbers past a double's range and nesting past 1024 levels, both
    # valid JSON, and reads long integers as floats. The json module keeps integers
    # exactly and reads huge numbers as infinity; it tells malformed JSON from the rest.
    try:
        return ParsedJson(text, json.loads(text, parse_constant=_no_constant), True)
    except json.JSONDecodeError:
        raise
    except (ValueError, RecursionError) as exc:
        raise UnstorablePayload(f"payload cannot be read: {exc}") from None


def _too_large() -> web.Response:
    return error(413, "payload too large", f"GitHub caps deliveries at {MAX_PAYLOAD_BYTES} bytes")


def _response(delivery: Delivery) -> web.Response:
    if delivery.payload_error is not None:
        return error(400, "invalid payload", str(delivery.payload_error))
    if delivery.status == "failed":
        return error(500, "internal error",
                     "a handler failed; the delivery is recorded and can be redelivered"
                     if delivery.stored else
                     "a handler failed and the delivery could not be recorded; redeliver it")
    if delivery.event == "ping":
        return web.json_response({"status": "pong", "message": "Webhook configured successfully"})
    if delivery.status == "queued":
        log.info("delivery %s (%s) queued job(s) %s", delivery.delivery_id, delivery.event,
                 delivery.job_ids)
        return web.json_response({"status": "accepted", "delivery_id": delivery.delivery_id,
                                  "job_ids": delivery.job_ids}, status=202)
    if delivery.status == "processed":
        return web.json_response({"status": "processed", "delivery_id": delivery.delivery_id,
                                  "detail": delivery.reason})
    return web.json_response({"status": "ignored", "reason": delivery.reason})


def _label(event: Event) -> str:
    action = event.data.get("action") if isinstance(event.data, dict) else None
    return f"{event.event}.{action}" if isinstance(action, str) else event.event


async def _read_body(request: web.Request, budget: ByteBudget | None, held: list[int]) -> bytes:
    """The body; BodyTooLarge once it passes the cap (chunked uploads carry no length).

    With a ``budget``, every chunk's bytes are taken from it before the next read, and
    ``held[0]`` counts them for the caller to give back.
    """
    chunks = []
    size = 0
    async for chunk in request.content.iter_chunked(256 * 1024):
        size += len(chunk)
        if size > MAX_PAYLOAD_BYTES:
            raise BodyTooLarge
        if budget is not None:
            await budget.take(len(chunk))
            held[0] += len(chunk)
        chunks.append(chunk)
    return b"".join(chunks)
