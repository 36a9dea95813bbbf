"""Submission: read the catalog entries a request names, plan it, and store it in one transaction."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

from app import metrics
from app.requests import secrets, store, views
from app.requests.entries import Entries, EntryCache, read_entries
from app.requests.notices import Effects
from app.requests.parameters import Problem
from app.requests.plan import CatalogConflict, Plan, plan_bundle, plan_item
from app.requests.secrets import SecretKeyMissing


class UnknownEntry(Exception):
    """The request names an item or bundle the catalog does not have (or no longer has)."""


@dataclass
class Checked:
    plan: Plan | None
    problems: list[Problem]


def named(body: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The bundle and item names ``body`` asks for (only well-typed ones; ``check`` reports the rest)."""
    item_name, bundle_name = body.get("catalog_item"), body.get("catalog_bundle")
    if (item_name is None) == (bundle_name is None):
        return [], []
    return ([bundle_name] if isinstance(bundle_name, str) else [],
            [item_name] if isinstance(item_name, str) else [])


def check_entries(body: dict[str, Any], entries: Entries) -> Checked:
    """Plan ``body`` against ``entries`` (read for ``named(body)``); pure.

    Raises UnknownEntry or plan.CatalogConflict.
    """
    item_name, bundle_name = body.get("catalog_item"), body.get("catalog_bundle")
    if (item_name is None) == (bundle_name is None):
        return Checked(None, [Problem("catalog_item", "required",
                                      "give exactly one of catalog_item and catalog_bundle")])
    if bundle_name is not None:
        if not isinstance(bundle_name, str):
            return Checked(None, [Problem("catalog_bundle", "type", "expected a bundle name")])
        bundle = entries.bundles.get(bundle_name)
        if bundle is None:
            raise UnknownEntry(f"no bundle named {bundle_name!r} in the catalog")
        plan, problems = plan_bundle(body, bundle, entries.items)
        return Checked(plan, problems)
    if not isinstance(item_name, str):
        return Checked(None, [Problem("catalog_item", "type", "expected an item name")])
    item = entries.items.get(item_name)
    if item is None:
        raise UnknownEntry(f"no item named {item_name!r} in the catalog")
    plan, problems = plan_item(body, item)
    return Checked(plan, problems)


async def check(conn: asyncpg.Connection | asyncpg.Pool, body: dict[str, Any],
                cache: EntryCache | None = None) -> Checked:
    """Plan ``body`` against the current catalog; raises UnknownEntry or plan.CatalogConflict."""
    return check_entries(body, await read_entries(conn, *named(body), cache=cache))


@dataclass
class Submitted:
    row: asyncpg.Record
    created: bool  # False: an earlier submission with the same idempotency key
    same_body: bool = True


async def submit(pool: asyncpg.Pool, plan: Plan, *, requester: dict[str, Any], submitted_by: str,
                 secret_key: str | None, idempotency_key: str | None, body: dict[str, Any],
                 settings: Any) -> Submitted:
    """Store the planned request and start its first steps, or return the earlier one for this key.

    ``settings`` (the notification targets) notify a request with no step, which completes here.
    """
    from app.requests.executor import start_request

    digest = secrets.body_hash(secret_key, body) if idempotency_key else None
    if idempotency_key:
        earlier = await store.by_idempotency_key(pool, submitted_by, idempotency_key)
        if earlier is not None:
            return Submitted(earlier, False, earlier["body_hash"] == digest)
    sealed = secrets.encrypt(secret_key, plan.secrets)
    for _ in range(5):
        effects = Effects(settings)
        try:
            async with pool.acquire() as conn, conn.transaction():
                row = await store.insert_request(conn, plan, requester=requester, submitted_by=submitted_by,
                                                 secrets=sealed, idempotency_key=idempotency_key,
                                                 body_hash=digest)
                if row is None:  # a concurrent retry with the same key won
                    assert idempotency_key is not None
                    earlier = await store.by_idempotency_key(conn, submitted_by, idempotency_key)
                    assert earlier is not None
                    return Submitted(earlier, False, earlier["body_hash"] == digest)
                row = await start_request(conn, row, effects)
            metrics.observe_request_submitted()  # after the commit: a rolled-back one never counts
            effects.committed()
            return Submitted(row, True)
        except store.RequestIdTaken:
            continue  # nothing was written: draw another id
    raise RuntimeError("could not draw a unique request id")


Answer = tuple[int, dict[str, Any]]  # (HTTP status, JSON body) as the REST API answers


def plan_or_refusal(body: dict[str, Any], entries: Entries) -> Plan | Answer:
    """``body`` planned against ``entries``, or the API's refusal (404, 409, 422); pure."""
    try:
        checked = check_entries(body, entries)
    except UnknownEntry as exc:
        return 404, {"error": "not found", "detail": str(exc)}
    except CatalogConflict as exc:
        extra = {"current_version": exc.current_version} if exc.current_version else {}
        return 409, {"error": "conflict", "detail": str(exc), **extra}
    if checked.problems or checked.plan is None:
        return 422, {"error": "validation failed", "errors": [p.as_dict() for p in checked.problems]}
    return checked.plan


async def plan_answer(pool: asyncpg.Pool, body: dict[str, Any],
                      cache: EntryCache | None = None) -> Plan | Answer:
    """``body`` planned against the current catalog, or the API's refusal (404, 409, 422)."""
    return plan_or_refusal(body, await read_entries(pool, *named(body), cache=cache))


def stored_answer(done: Submitted, idempotency_key: str | None) -> Answer:
    """The answer to a stored submission: 201 with the request, or 409 for a key reused."""
    if not done.same_body:
        return 409, {"error": "conflict", "request_id": done.row["request_id"],
                     "detail": f"Idempotency-Key {idempotency_key!r} was used for another request body "
                     f"({done.row['request_id']}); use a new key for a new request"}
    return 201, views.created(done.row)


async def submit_answer(pool: asyncpg.Pool, body: dict[str, Any], *, requester: dict[str, Any],
                        submitted_by: str, secret_key: str | None, idempotency_key: str | None,
                        settings: Any, cache: EntryCache | None = None) -> Answer:
    """Check, plan and store ``body`` on its own: (status, JSON body) as ``POST /api/v1/requests`` answers.

    ``app.requests.batch.SubmissionWriter`` gives the same answers for submissions stored
    together; it stores one here when storing it with others failed.
    """
    plan = await plan_answer(pool, body, cache)
    if isinstance(plan, tuple):
        return plan
    try:
        done = await submit(pool, plan, requester=requester, submitted_by=submitted_by,
                            secret_key=secret_key, idempotency_key=idempotency_key, body=body,
                            settings=settings)
    except SecretKeyMissing as exc:
        return 503, {"error": "secret storage unavailable", "detail": str(exc)}
    return stored_answer(done, idempotency_key)
