"""Runs a request's steps on the job queue: one ``requests.run_step`` job per step run.

Every transition locks the request row first, so concurrent steps of one request change
its status one at a time. A step's job is queued in the transaction that completes its
last dependency, and the queue's NOTIFY wakes a worker at commit: the next step starts
within milliseconds. A worker killed mid-step leaves the step ``running`` and its job
stalled; the job is retried, records a new attempt, and sends the same Idempotency-Key.

Each transition's notifications are queued in its transaction and its metrics recorded
after the commit (``notices.Effects``, built from the settings every entry point takes).
"""

from __future__ import annotations

import logging
from typing import Any

import asyncpg

from app.jobs import JobContext, RetryJob, enqueue, task
from app.log import register_secret, scrub
from app.requests import github_runs, secrets, store
from app.requests.config import request_settings
from app.requests.notices import Effects
from app.requests.plan import manual_for
from app.requests.render import RenderError, render_value, variables
from app.requests.steps import runners, terraform_file
from app.requests.steps.base import StepContext, StepFailed, StepResult, StepWaiting

log = logging.getLogger(__name__)

TASK = "requests.run_step"
POLL_TASK = "requests.poll_ticket"
RESOLVE_TASK = "requests.resolve_ticket"
OPEN_STEP = ("pending", "queued", "running", "waiting_manual")


def _lock_key(step_pk: int) -> str:
    return f"request-step:{step_pk}"


async def queue_ready(conn: asyncpg.Connection, request_pk: int, actor: str = "pao") -> list[str]:
    """Queue every pending step whose dependencies have all completed."""
    rows = await conn.fetch(
        """UPDATE request_steps s SET status = 'queued'
            WHERE s.request_id = $1 AND s.status = 'pending'
              AND NOT EXISTS (SELECT 1 FROM request_steps d
                               WHERE d.request_id = s.request_id AND d.step_id = ANY(s.depends_on)
                                 AND d.status <> 'completed')
        RETURNING id, step_id""", request_pk)
    for r in rows:
        await _enqueue_step(conn, r["id"])
    await store.add_step_events(conn, request_pk, [r["step_id"] for r in rows], "pending", "queued",
                                actor)
    return [r["step_id"] for r in rows]


async def wake_step(conn: asyncpg.Connection, step_pk: int, delivery_id: str | None = None) -> int:
    """Run a waiting step's check now (a webhook says its external work finished); the job's id."""
    queued = await enqueue(conn, TASK, {"step": step_pk}, queueing_lock=_lock_key(step_pk),
                           lock=_lock_key(step_pk), priority=10, delivery_id=delivery_id)
    # The waiting twin may have been queued for the next poll after this statement's snapshot
    # (a step going back to wait just now): make sure it is due now.
    await conn.execute("UPDATE jobs SET scheduled_at = now() WHERE id = $1 AND status = 'todo'"
                       " AND scheduled_at > now()", queued.job_id)
    return queued.job_id


async def _enqueue_step(conn: asyncpg.Connection, step_pk: int) -> None:
    await enqueue(conn, TASK, {"step": step_pk}, queueing_lock=_lock_key(step_pk), lock=_lock_key(step_pk),
                  priority=10)


async def start_request(conn: asyncpg.Connection, row: asyncpg.Record, effects: Effects) -> asyncpg.Record:
    """Queue the steps that depend on nothing; called in the submission's transaction.

    A request with no step completes here, through ``effects`` like any completion: its
    notification is queued in this transaction, its metric kept for the caller's commit.
    """
    if await queue_ready(conn, row["id"], actor=row["submitted_by"]):
        return row  # still submitted: no step has started
    # Nothing to do: PAO completes it, as it completes a request whose last step ended.
    return await settle(conn, row["id"], effects)


def _grouped_outputs(steps: list[asyncpg.Record]) -> dict[str, dict[str, Any]]:
    grouped: dict[str, dict[str, Any]] = {}
    for s in steps:
        if s["status"] == "completed" and s["outputs"]:
            grouped.setdefault(s["owner_name"], {}).update(s["outputs"])
    return grouped


async def settle(conn: asyncpg.Connection, request_pk: int, effects: Effects,
                 actor: str = "pao") -> asyncpg.Record:
    """Derive the request's status from its steps; on completion store grouped outputs, erase secrets.

    A change of status is notified through ``effects``, in this transaction.
    """
    row = await conn.fetchrow("SELECT * FROM service_requests WHERE id = $1", request_pk)
    if row["status"] == "cancelled":
        return row
    steps = await store.get_steps(conn, request_pk)
    states = {s["status"] for s in steps}
    active = states & {"queued", "running"}
    if states <= {"completed"}:
        status = "completed"
    elif "failed" in states and not active:
        status = "failed"
    elif "waiting_manual" in states and not active:
        status = "waiting_manual"
    elif states & {"running", "completed", "waiting_manual", "failed"}:
        status = "in_progress"
    else:
        status = "submitted"
    if status == row["status"]:
        return row
    done, before = status == "completed", row["status"]
    row = await conn.fetchrow(
        """UPDATE service_requests SET status = $2, updated_at = now(),
                  completed_at = CASE WHEN $3 THEN now() ELSE completed_at END,
                  outputs = CASE WHEN $3 THEN $4::jsonb ELSE outputs END,
                  secrets = CASE WHEN $3 THEN NULL ELSE secrets END
            WHERE id = $1 RETURNING *""",
        request_pk, status, done, _grouped_outputs(steps) if done else None)
    await store.add_event(conn, request_pk, "status", from_status=before, to_status=status, actor=actor)
    await effects.status_changed(conn, row, before, status, actor)
    return row


async def _lock(conn: asyncpg.Connection, step_pk: int) -> tuple[asyncpg.Record, asyncpg.Record] | None:
    """The request (locked) and the step; None when the step is gone."""
    req = await conn.fetchrow(
        """SELECT r.* FROM service_requests r JOIN request_steps s ON s.request_id = r.id
            WHERE s.id = $1 FOR UPDATE OF r""", step_pk)
    if req is None:
        return None
    step = await conn.fetchrow("SELECT * FROM request_steps WHERE id = $1", step_pk)
    return req, step


async def _set_step(conn: asyncpg.Connection, req: asyncpg.Record, step: asyncpg.Record, status: str,
                    effects: Effects, *, actor: str = "pao", detail: dict[str, Any] | None = None,
                    **columns: Any) -> None:
    sets = ["status = $2"] + [f"{name} = ${i + 3}" for i, name in enumerate(columns)]
    if status in ("completed", "failed", "cancelled"):
        sets.append("completed_at = now()")
    elif status == "running":
        sets.append("started_at = coalesce(started_at, now())")
    await conn.execute(f"UPDATE request_steps SET {', '.join(sets)} WHERE id = $1",
                       step["id"], status, *columns.values())
    await store.add_event(conn, req["id"], "step_status", step_id=step["step_id"],
                          from_status=step["status"], to_status=status, actor=actor, detail=detail)
    await effects.step_changed(conn, req, step, status, columns.get("error"))


async def _scope(conn: asyncpg.Connection, req: asyncpg.Record, step: asyncpg.Record,
                 secret_key: str | None) -> dict[str, Any]:
    owner = step["owner_name"]
    is_bundle = req["catalog_bundle"] == owner
    fields = dict(req["bundle_parameters"] if is_bundle else (req["item_parameters"].get(owner) or {}))
    owner_secrets = secrets.decrypt(secret_key, req["secrets"]).get(owner) or {}
    for value in owner_secrets.values():
        # A remote system may echo a secret back in an error; the scrubber hides it there too.
        register_secret(value if isinstance(value, str) else None, short_lived=True)
    fields.update(owner_secrets)
    done = [s for s in await store.get_steps(conn, req["id"]) if s["status"] == "completed"]

    def local(s: asyncpg.Record) -> str:
        return s["step_id"].split(".", 1)[1]

    items: dict[str, dict[str, Any]] | None = None
    if is_bundle:
        items = {}
        for s in done:
            if s["owner_name"] != owner:
                items.setdefault(s["owner_name"], {})[local(s)] = s["outputs"] or {}
    return variables(
        fields=fields,
        requester={"user_id": req["requester_user_id"], "team": req["requester_team"],
                   "email": req["requester_email"]},
        request={"id": req["request_id"], "created_at": req["created_at"].isoformat()},
        steps={local(s): s["outputs"] or {} for s in done if s["owner_name"] == owner}, items=items)


@task(TASK, max_attempts=6, retry_base=1.0, retry_cap=120.0)
async def run_step(ctx: JobContext, step: int) -> dict[str, Any]:
    """Run one step: claim it, render, call its runner, record the outcome and queue what follows."""
    settings = request_settings(ctx.settings)
    effects = Effects(ctx.settings)
    async with ctx.pool.acquire() as conn, conn.transaction():
        locked = await _lock(conn, step)
        if locked is None:
            return {"skipped": "gone"}
        req, st = locked
        if req["status"] == "cancelled" or st["status"] not in ("queued", "running"):
            return {"skipped": st["status"]}
        # An attempt still marked running belonged to a worker that died.
        await conn.execute("""UPDATE request_step_attempts SET status = 'interrupted', completed_at = now(),
                                     error = '{"type": "interrupted", "message": "the worker stopped"}'
                               WHERE step_pk = $1 AND status = 'running'""", step)
        attempt = await conn.fetchval(
            """INSERT INTO request_step_attempts (step_pk, attempt_number, status)
               VALUES ($1, 1 + (SELECT count(*) FROM request_step_attempts WHERE step_pk = $1), 'running')
               RETURNING attempt_number""", step)
        if st["status"] != "running":
            await _set_step(conn, req, st, "running", effects)
        await settle(conn, req["id"], effects)
        tracking = st["job_tracking"] or {}
        fallback = bool(tracking.get("fallback"))
        step_type = "manual" if fallback else st["step_type"]
        # A fallback runs the owner's ticket instead of the step's own config.
        config = (manual_for(req["snapshot"], st["owner_name"]) or {}) if fallback else st["config"]
        try:
            scope = await _scope(conn, req, st, settings.secret_key)
        except secrets.SecretKeyMissing as exc:
            scope, render_problem = None, StepFailed("secret_unavailable", str(exc))
        else:
            render_problem = None
    effects.committed()

    async def save_tracking(data: dict[str, Any]) -> None:
        await ctx.pool.execute(
            "UPDATE request_steps SET job_tracking = coalesce(job_tracking, '{}') || $2 WHERE id = $1",
            step, data)

    try:
        if render_problem is not None:
            raise render_problem
        try:
            rendered = render_value(config, scope or {})
        except RenderError as exc:
            raise StepFailed("render_error", scrub(str(exc))) from None
        sctx = StepContext(req["request_id"], st["step_id"], rendered,
                           [] if fallback else list(st["outputs_declared"]), ctx.http, settings,
                           tracking, save_tracking, github=ctx.github)
        result = await runners()[step_type](sctx)
    except StepWaiting as waiting:
        # Not done yet (a workflow run, a pull request): look again later; a webhook wakes it sooner.
        await _end_attempt(ctx.pool, step, attempt, "waiting")
        await enqueue(ctx.pool, TASK, {"step": step}, queueing_lock=_lock_key(step), lock=_lock_key(step),
                      priority=10, delay=waiting.delay if waiting.delay is not None
                      else settings.ticket_poll_interval)
        return {"waiting": waiting.reason}
    except StepFailed as failure:
        if failure.retryable and not ctx.last_attempt:
            await _end_attempt(ctx.pool, step, attempt, "retrying", failure)
            raise RetryJob(failure.message) from None
        await _step_failed(ctx.pool, ctx.settings, step, attempt, failure, fallback)
        return {"failed": failure.type}
    await _step_done(ctx.pool, ctx.settings, step, attempt, result, settings.ticket_poll_interval)
    return {"ticket": result.ticket.ticket_id} if result.ticket else {"completed": True}


async def _end_attempt(db: asyncpg.Pool | asyncpg.Connection, step_pk: int, attempt: int, status: str,
                       failure: StepFailed | None = None) -> None:
    """Close an attempt with ``status`` (and ``failure`` as its error, when it failed)."""
    await db.execute(
        """UPDATE request_step_attempts SET status = $3, completed_at = now(), error = coalesce($4, error)
            WHERE step_pk = $1 AND attempt_number = $2""",
        step_pk, attempt, status, failure.as_dict() if failure else None)


async def _step_failed(pool: asyncpg.Pool, settings: Any, step_pk: int, attempt: int, failure: StepFailed,
                       fallback: bool) -> None:
    effects = Effects(settings)
    async with pool.acquire() as conn, conn.transaction():
        locked = await _lock(conn, step_pk)
        if locked is None:
            return
        req, st = locked
        await _end_attempt(conn, step_pk, attempt, "failed", failure)
        if st["status"] != "running" or req["status"] == "cancelled":
            return  # cancelled or completed by hand meanwhile
        if not fallback and st["on_failure"] == "manual" and manual_for(req["snapshot"], st["owner_name"]):
            # Fall back to the item's ticket: the next run of this job opens it.
            await conn.execute(
                """UPDATE request_steps SET status = 'queued', error = $2,
                          job_tracking = coalesce(job_tracking, '{}') || '{"fallback": true}'
                    WHERE id = $1""", step_pk, failure.as_dict())
            await store.add_event(conn, req["id"], "step_status", step_id=st["step_id"],
                                  from_status="running", to_status="queued",
                                  detail={"fallback": "manual", "error": failure.as_dict()})
            await _enqueue_step(conn, step_pk)
            return
        await _set_step(conn, req, st, "failed", effects, error=failure.as_dict(),
                        detail={"error": failure.as_dict()})
        await settle(conn, req["id"], effects)
    effects.committed()


async def _step_done(pool: asyncpg.Pool, settings: Any, step_pk: int, attempt: int, result: StepResult,
                     poll_interval: float = 300.0) -> None:
    effects = Effects(settings)
    async with pool.acquire() as conn, conn.transaction():
        locked = await _lock(conn, step_pk)
        if locked is None:
            return
        req, st = locked
        await _end_attempt(conn, step_pk, attempt, "waiting_manual" if result.ticket else "completed")
        if st["status"] != "running" or req["status"] == "cancelled":
            return
        if result.ticket is not None:
            t = result.ticket
            ticket_type = "fallback" if (st["job_tracking"] or {}).get("fallback") else "fulfillment"
            await conn.execute(
                """INSERT INTO manual_tickets (request_id, step_pk, ticket_system, ticket_id, ticket_url,
                                               ticket_type)
                   VALUES ($1, $2, $3, $4, $5, $6)
                   ON CONFLICT (step_pk, ticket_type) DO UPDATE
                      SET ticket_id = EXCLUDED.ticket_id, ticket_url = EXCLUDED.ticket_url""",
                req["id"], step_pk, t.system, t.ticket_id, t.url, ticket_type)
            await _set_step(conn, req, st, "waiting_manual", effects, job_tracking={
                **(st["job_tracking"] or {}), "external_id": t.ticket_id, "tracking_url": t.url},
                detail={"ticket": t.ticket_id})
            await effects.ticket_opened(conn, req, st, t.system, t.ticket_id, t.url)
            await settle(conn, req["id"], effects)
            if t.system in POLLABLE:
                ticket_pk = await conn.fetchval(
                    "SELECT id FROM manual_tickets WHERE step_pk = $1 AND ticket_type = $2",
                    step_pk, ticket_type)
                await _enqueue_poll(conn, ticket_pk, poll_interval)
        else:
            await _set_step(conn, req, st, "completed", effects, outputs=result.outputs)
            await queue_ready(conn, req["id"])
            await settle(conn, req["id"], effects)
    effects.committed()


class TransitionError(Exception):
    """A control action does not apply to the request or step in its current state (409)."""


async def _locked_request(conn: asyncpg.Connection, request_pk: int) -> asyncpg.Record:
    """The request, locked for a control action; gone (purged by retention meanwhile) is a refusal."""
    req = await conn.fetchrow("SELECT * FROM service_requests WHERE id = $1 FOR UPDATE", request_pk)
    if req is None:
        raise TransitionError("the request no longer exists (it ended long ago and was purged)")
    return req


async def complete_step(pool: asyncpg.Pool, request_pk: int, step_id: str, outputs: dict[str, Any],
                        actor: str, *, settings: Any) -> None:
    """An operator marks a step done by hand (ticket resolved), giving its declared outputs."""
    effects = Effects(settings)
    async with pool.acquire() as conn, conn.transaction():
        req = await _locked_request(conn, request_pk)
        st = await store.get_step(conn, request_pk, step_id)
        if st is None:
            raise LookupError(step_id)
        if req["status"] in ("completed", "cancelled") or st["status"] not in (
                "waiting_manual", "failed", "running", "queued"):
            raise TransitionError(f"step {step_id} is {st['status']} (request {req['status']}); only a "
                                  "waiting, failed or unfinished step can be completed by hand")
        missing = [n for n in st["outputs_declared"] if n not in outputs]
        if missing:
            raise ValueError(f"the step declares output(s) {', '.join(missing)}; give them in 'outputs'")
        await conn.execute("UPDATE manual_tickets SET status = 'resolved', resolved_at = now()"
                           " WHERE step_pk = $1 AND status = 'open'", st["id"])
        await conn.execute("UPDATE jobs SET status = 'cancelled', finished_at = now()"
                           " WHERE queueing_lock = $1 AND status = 'todo'", _lock_key(st["id"]))
        await _set_step(conn, req, st, "completed", effects, actor=actor, outputs=outputs,
                        detail={"by_hand": True})
        await queue_ready(conn, request_pk, actor)
        await settle(conn, request_pk, effects, actor)
    effects.committed()


async def retry_step(pool: asyncpg.Pool, request_pk: int, step_id: str, actor: str, *,
                     settings: Any) -> None:
    """Run a failed step again (its automation, not a fallback ticket)."""
    effects = Effects(settings)
    async with pool.acquire() as conn, conn.transaction():
        req = await _locked_request(conn, request_pk)
        st = await store.get_step(conn, request_pk, step_id)
        if st is None:
            raise LookupError(step_id)
        if st["status"] != "failed" or req["status"] in ("completed", "cancelled"):
            raise TransitionError(f"step {step_id} is {st['status']} (request {req['status']}); only a "
                                  "failed step of an open request can be retried")
        await _set_step(conn, req, st, "queued", effects, actor=actor, job_tracking=None, error=None)
        await conn.execute("UPDATE request_steps SET completed_at = NULL WHERE id = $1", st["id"])
        await _enqueue_step(conn, st["id"])
        await settle(conn, request_pk, effects, actor)
    effects.committed()


async def cancel_request(pool: asyncpg.Pool, request_pk: int, actor: str, *, settings: Any) -> asyncpg.Record:
    """Cancel every unfinished step and the request; erase its secrets. Running steps are abandoned.

    A GitHub workflow run a step started is cancelled, and a Terraform pull request still
    open is closed, by jobs queued in this transaction.
    """
    effects = Effects(settings)
    async with pool.acquire() as conn, conn.transaction():
        req = await _locked_request(conn, request_pk)
        if req["status"] in ("completed", "cancelled"):
            raise TransitionError(f"request {req['request_id']} is already {req['status']}")
        for st in await store.get_steps(conn, request_pk):
            if st["status"] in OPEN_STEP:
                await _set_step(conn, req, st, "cancelled", effects, actor=actor)
                await github_runs.queue_cancel(conn, st)
                await terraform_file.queue_close(conn, st, req["request_id"])
                await conn.execute("UPDATE jobs SET status = 'cancelled', finished_at = now()"
                                   " WHERE queueing_lock = $1 AND status = 'todo'", _lock_key(st["id"]))
        row = await conn.fetchrow(
            """UPDATE service_requests SET status = 'cancelled', updated_at = now(), completed_at = now(),
                      secrets = NULL WHERE id = $1 RETURNING *""", request_pk)
        await store.add_event(conn, request_pk, "status", from_status=req["status"], to_status="cancelled",
                              actor=actor)
        await effects.status_changed(conn, row, req["status"], "cancelled", actor)
    effects.committed()
    return row


# Ticket systems whose state PAO can read back (polling is the fallback to their webhooks).
POLLABLE = {"jira": "app.requests.tickets.jira", "github": "app.requests.tickets.github",
            "servicenow": "app.requests.tickets.servicenow"}


async def _enqueue_poll(conn: asyncpg.Connection | asyncpg.Pool, ticket_pk: int, delay: float) -> None:
    await enqueue(conn, POLL_TASK, {"ticket": ticket_pk}, queueing_lock=f"request-ticket:{ticket_pk}",
                  delay=delay)


@task(POLL_TASK, max_attempts=3, retry_base=30.0)
async def poll_ticket(ctx: JobContext, ticket: int) -> dict[str, Any]:
    """Ask the ticket system whether the ticket is resolved; look again later if not."""
    import importlib

    row = await ctx.pool.fetchrow("SELECT * FROM manual_tickets WHERE id = $1", ticket)
    if row is None or row["status"] != "open" or row["ticket_system"] not in POLLABLE:
        return {"done": True}
    settings = request_settings(ctx.settings)
    module = importlib.import_module(POLLABLE[row["ticket_system"]])
    if await module.is_resolved(ctx.http, settings, row["ticket_id"], github=ctx.github):
        await resolve_ticket(ctx.pool, row["ticket_system"], row["ticket_id"], actor="poll",
                             settings=ctx.settings)
        return {"resolved": row["ticket_id"]}
    await _enqueue_poll(ctx.pool, ticket, settings.ticket_poll_interval)
    return {"open": row["ticket_id"]}


async def resolve_ticket(pool: asyncpg.Pool, system: str, ticket_id: str, actor: str, *,
                         settings: Any) -> list[str]:
    """A ticket was resolved: complete its step, unless the step must still be given outputs.

    A step that declares outputs waits for an operator's ``complete`` with them, since a
    ticket's resolution does not carry them. Returns the steps completed.
    """
    completed = []
    rows = await pool.fetch("SELECT id, request_id, step_pk FROM manual_tickets"
                            " WHERE ticket_system = $1 AND ticket_id = $2 AND status = 'open'",
                            system, ticket_id)
    for t in rows:
        effects = Effects(settings)
        async with pool.acquire() as conn, conn.transaction():
            req = await conn.fetchrow("SELECT * FROM service_requests WHERE id = $1 FOR UPDATE",
                                      t["request_id"])
            st = await conn.fetchrow("SELECT * FROM request_steps WHERE id = $1", t["step_pk"])
            done = await conn.fetchval("UPDATE manual_tickets SET status = 'resolved', resolved_at = now()"
                                       " WHERE id = $1 AND status = 'open' RETURNING id", t["id"])
            if done is None or st["status"] != "waiting_manual" or req["status"] == "cancelled":
                continue
            if st["outputs_declared"]:
                await store.add_event(conn, req["id"], "ticket_resolved", step_id=st["step_id"],
                                      actor=actor, detail={"ticket": ticket_id, "outputs_needed":
                                                           list(st["outputs_declared"])})
                continue
            await store.add_event(conn, req["id"], "ticket_resolved", step_id=st["step_id"], actor=actor,
                                  detail={"ticket": ticket_id})
            await _set_step(conn, req, st, "completed", effects, actor=actor, outputs={})
            await queue_ready(conn, req["id"], actor)
            await settle(conn, req["id"], effects, actor)
            completed.append(st["step_id"])
        effects.committed()
    return completed


@task(RESOLVE_TASK, max_attempts=5)
async def resolve_ticket_job(ctx: JobContext, system: str, ticket_id: str) -> dict[str, Any]:
    """A ticket system said the ticket is resolved (a webhook queued this)."""
    return {"completed": await resolve_ticket(ctx.pool, system, ticket_id, actor=system,
                                              settings=ctx.settings)}
