"""Group commit for submissions: every submission waiting is planned and stored together.

``POST /api/v1/requests`` hands its submission to ``SubmissionWriter`` and waits. A writer
loop takes every submission waiting at that moment, reads the catalog entries they name in
one query (``app.requests.entries``), plans each, and stores all of them (requests, steps,
``submitted`` events, the first steps queued as jobs with their events) in one statement:
one transaction, committed before anyone is answered. With no load a batch is one
submission, so nothing waits for a timer.

Each submission is answered exactly as ``submit.submit_answer`` answers it alone: a refusal
(404, 409, 422, 503) is its own and stores nothing; two submissions with one Idempotency-Key
in one batch store one request, and the second is answered as a retry (201 with the same
request, or 409 for another body). If the statement fails (a drawn request id taken, a value
PostgreSQL refuses), each submission of the batch is stored on its own, so one bad
submission never costs another.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import orjson
from aiohttp import web

from app import metrics
from app.db import RawJson
from app.groupcommit import GroupCommit
from app.jobs import TASKS
from app.requests import executor, secrets, store
from app.requests.entries import Entries, EntryCache, read_entries
from app.requests.plan import Plan
from app.requests.secrets import SecretKeyMissing
from app.requests.submit import Answer, Submitted, named, plan_or_refusal, stored_answer, submit

log = logging.getLogger(__name__)

# Requests ($1: one JSON object per submission, steps nested), their steps (status
# 'queued' for those depending on nothing), a job per queued step ($2 task, $3 attempts),
# and the events: 'submitted', then one 'step_status' per queued step, in request order.
INSERT_BATCH = """
WITH given AS (
    SELECT * FROM jsonb_to_recordset($1::jsonb) AS g(
        ordinal integer, request_id text, catalog_item text, catalog_bundle text,
        catalog_version text, bundle_parameters jsonb, item_parameters jsonb, secrets text,
        snapshot jsonb, requester_user_id text, requester_team text, requester_email text,
        submitted_by text, idempotency_key text, body_hash text, steps jsonb)
), r AS (
    INSERT INTO service_requests
      (request_id, catalog_item, catalog_bundle, catalog_version, bundle_parameters,
       item_parameters, secrets, snapshot, requester_user_id, requester_team,
       requester_email, submitted_by, idempotency_key, body_hash)
    SELECT request_id, catalog_item, catalog_bundle, catalog_version, bundle_parameters,
           item_parameters, decode(secrets, 'base64'), snapshot, requester_user_id,
           requester_team, requester_email, submitted_by, idempotency_key, body_hash
      FROM given ORDER BY ordinal
    ON CONFLICT (submitted_by, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
    RETURNING id, request_id, status, catalog_item, catalog_bundle, catalog_version, created_at,
              submitted_by, body_hash
), steps AS (
    INSERT INTO request_steps (request_id, step_id, owner_name, name, step_type, config,
                               depends_on, outputs_declared, on_failure, position, status)
    SELECT r.id, s.step_id, s.owner_name, s.name, s.step_type, s.config, s.depends_on,
           s.outputs_declared, s.on_failure, s.position,
           CASE WHEN cardinality(s.depends_on) = 0 THEN 'queued' ELSE 'pending' END
      FROM r JOIN given g ON g.request_id = r.request_id,
           jsonb_to_recordset(g.steps) AS s(step_id text, owner_name text, name text,
               step_type text, config jsonb, depends_on text[], outputs_declared text[],
               on_failure text, position integer)
     ORDER BY r.id, s.position
    RETURNING id, request_id, step_id, status, position
), queued AS (
    INSERT INTO jobs (task, args, queueing_lock, lock, priority, max_attempts)
    SELECT $2, jsonb_build_object('step', id), 'request-step:' || id, 'request-step:' || id, 10, $3
      FROM steps WHERE status = 'queued' ORDER BY id
), events AS (
    INSERT INTO request_events (request_id, step_id, event, from_status, to_status, actor, detail)
    SELECT e.request_id, e.step_id, e.event, e.from_status, e.to_status, e.actor, e.detail
      FROM (SELECT r.id AS request_id, NULL::text AS step_id, 'submitted' AS event,
                   NULL::text AS from_status, 'submitted' AS to_status, r.submitted_by AS actor,
                   jsonb_build_object('steps', jsonb_array_length(g.steps)) AS detail, 0 AS position
              FROM r JOIN given g ON g.request_id = r.request_id
            UNION ALL
            SELECT s.request_id, s.step_id, 'step_status', 'pending', 'queued', r.submitted_by,
                   NULL, s.position
              FROM steps s JOIN r ON r.id = s.request_id
             WHERE s.status = 'queued') e
     ORDER BY e.request_id, e.position
)
SELECT * FROM r
"""

# The requests already stored under these (submitter, Idempotency-Key) pairs.
BY_KEYS = """
SELECT id, request_id, status, catalog_item, catalog_bundle, catalog_version, created_at,
       submitted_by, idempotency_key, body_hash
  FROM service_requests
 WHERE (submitted_by, idempotency_key) IN (SELECT * FROM unnest($1::text[], $2::text[]))
"""


def _json_text(value: Any) -> str:
    """JSON text of a submission's row; orjson, several times faster than the json module here."""
    try:
        return orjson.dumps(value, default=str).decode()
    except TypeError:  # an integer beyond 64 bits, which orjson refuses: the json module writes it
        return json.dumps(value, separators=(",", ":"), default=str)


@dataclass
class Submission:
    """One ``POST /api/v1/requests`` waiting for its batch, and what its batch made of it."""

    body: dict[str, Any]
    requester: dict[str, Any]
    submitted_by: str
    secret_key: str | None
    idempotency_key: str | None
    future: asyncio.Future[Answer] = field(repr=False)
    plan: Plan | None = None
    digest: str | None = None
    sealed: bytes | None = None
    request_id: str = ""

    @property
    def key(self) -> tuple[str, str] | None:
        return (self.submitted_by, self.idempotency_key) if self.idempotency_key else None

    def answer(self, answer: Answer) -> None:
        if not self.future.done():
            self.future.set_result(answer)

    def fail(self, exc: BaseException) -> None:
        if not self.future.done():
            self.future.set_exception(exc)

    def stored(self, row: Any, created: bool) -> None:
        """Answer with the request stored for this submission, or for its key before."""
        same_body = created or row["body_hash"] == self.digest
        self.answer(stored_answer(Submitted(row, created, same_body), self.idempotency_key))

    def as_json(self, ordinal: int) -> str:
        assert self.plan is not None
        plan = self.plan
        steps = [{"step_id": s.step_id, "owner_name": s.owner, "name": s.name, "step_type": s.type,
                  "config": s.config, "depends_on": s.depends_on, "outputs_declared": s.outputs,
                  "on_failure": s.on_failure, "position": i + 1} for i, s in enumerate(plan.steps)]
        return _json_text({
            "ordinal": ordinal, "request_id": self.request_id,
            "catalog_item": plan.name if plan.kind == "item" else None,
            "catalog_bundle": plan.name if plan.kind == "bundle" else None,
            "catalog_version": plan.version, "bundle_parameters": plan.bundle_values,
            "item_parameters": plan.item_values,
            "secrets": base64.b64encode(self.sealed).decode() if self.sealed is not None else None,
            "snapshot": plan.snapshot, "requester_user_id": self.requester["user_id"],
            "requester_team": self.requester.get("team"), "requester_email": self.requester.get("email"),
            "submitted_by": self.submitted_by, "idempotency_key": self.idempotency_key,
            "body_hash": self.digest, "steps": steps})


class SubmissionWriter(GroupCommit[Submission]):
    """Plans and stores submissions in shared statements: group commit (see the module doc)."""

    def __init__(self, state: Any, *, writers: int = 2, max_batch: int = 64):
        super().__init__("submissions", writers=writers, max_batch=max_batch)
        self.state = state  # the Runtime: its pool, and its settings (read per batch: they change live)
        self.entries = EntryCache()

    async def submit(self, body: dict[str, Any], *, requester: dict[str, Any], submitted_by: str,
                     secret_key: str | None, idempotency_key: str | None) -> Answer:
        """Check, plan and store ``body``; (status, JSON body) as ``submit.submit_answer`` gives."""
        submission = Submission(body, requester, submitted_by, secret_key, idempotency_key,
                                asyncio.get_running_loop().create_future())
        self._enqueue(submission)
        return await submission.future

    async def _write_batch(self, batch: list[Submission]) -> None:
        try:
            await self._write(batch)
        except BaseException as exc:
            for submission in batch:
                submission.fail(exc if isinstance(exc, Exception) else RuntimeError("stopped"))
            if not isinstance(exc, Exception):
                raise

    async def _write(self, batch: list[Submission]) -> None:
        pool: asyncpg.Pool = self.state.pool
        bundles: set[str] = set()
        items: set[str] = set()
        for submission in batch:
            b, i = named(submission.body)
            bundles.update(b)
            items.update(i)
        entries = await read_entries(pool, bundles, items, self.entries)
        groups: list[list[Submission]] = []  # the first of each is stored; the rest are its retries
        by_key: dict[tuple[str, str], list[Submission]] = {}
        alone: list[Submission] = []
        for submission in batch:
            try:
                if not self._prepare(submission, entries):
                    continue
            except Exception as exc:  # a bug planning one submission is that one's 500
                submission.fail(exc)
                continue
            if submission.plan is not None and not submission.plan.steps:
                # Completes at once, notified in its own transaction: executor.start_request settles it.
                alone.append(submission)
            elif submission.key is not None and submission.key in by_key:
                by_key[submission.key].append(submission)  # a retry of one in this batch
            else:
                groups.append([submission])
                if submission.key is not None:
                    by_key[submission.key] = groups[-1]
        if groups:
            await self._store(groups)
        for submission in alone:
            await self._store_alone(submission)

    def _prepare(self, submission: Submission, entries: Entries) -> bool:
        """Plan, seal secrets, hash the body; False when the submission was answered (refused)."""
        planned = plan_or_refusal(submission.body, entries)
        if isinstance(planned, tuple):
            submission.answer(planned)
            return False
        submission.plan = planned
        try:
            submission.sealed = secrets.encrypt(submission.secret_key, planned.secrets)
        except SecretKeyMissing as exc:
            submission.answer((503, {"error": "secret storage unavailable", "detail": str(exc)}))
            return False
        if submission.idempotency_key:
            submission.digest = secrets.body_hash(submission.secret_key, submission.body)
        submission.request_id = store.new_request_id()
        return True

    async def _store(self, groups: list[list[Submission]]) -> None:
        pool: asyncpg.Pool = self.state.pool
        leaders = [group[0] for group in groups]
        try:
            rows = await pool.fetch(
                INSERT_BATCH, RawJson("[" + ",".join(s.as_json(n) for n, s in enumerate(leaders)) + "]"),
                executor.TASK, TASKS[executor.TASK].max_attempts)
        except Exception as exc:
            # A drawn request id already taken, or a value PostgreSQL refuses: nothing was
            # stored. Store each on its own, so only the bad one fails (and says why).
            log.info("storing %d submissions together failed (%s); storing each on its own",
                     len(leaders), type(exc).__name__)
            for group in groups:
                for submission in group:
                    await self._store_alone(submission)
            return
        inserted = {r["request_id"]: r for r in rows}
        earlier: dict[tuple[str, str], Any] = {}
        taken = [s for s in leaders if s.request_id not in inserted]  # their key was used before
        if taken:
            for r in await pool.fetch(BY_KEYS, [s.submitted_by for s in taken],
                                      [s.idempotency_key for s in taken]):
                earlier[(r["submitted_by"], r["idempotency_key"])] = r
        for group in groups:
            leader = group[0]
            if (row := inserted.get(leader.request_id)) is not None:
                metrics.observe_request_submitted()  # committed: the statement returned it
                leader.stored(row, created=True)
                for retry in group[1:]:
                    retry.stored(row, created=False)
            elif leader.key is not None and (row := earlier.get(leader.key)) is not None:
                for retry in group:
                    retry.stored(row, created=False)
            else:  # not stored, and no request holds its key: cannot happen; store them alone
                for submission in group:
                    await self._store_alone(submission)

    async def _store_alone(self, submission: Submission) -> None:
        """Store one planned submission in a transaction of its own (``submit.submit``)."""
        assert submission.plan is not None
        try:
            done = await submit(self.state.pool, submission.plan, requester=submission.requester,
                                submitted_by=submission.submitted_by, secret_key=submission.secret_key,
                                idempotency_key=submission.idempotency_key, body=submission.body,
                                settings=self.state.settings)
        except Exception as exc:
            submission.fail(exc)
            return
        submission.answer(stored_answer(done, submission.idempotency_key))


SUBMISSIONS: web.AppKey[SubmissionWriter] = web.AppKey("submissions", SubmissionWriter)


async def stop_submissions(app: web.Application) -> None:
    await app[SUBMISSIONS].stop()
