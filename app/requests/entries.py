"""The catalog entries submissions name: current rows, read in one query, kept per row version.

A submission plans against the active item or bundle it names (and a bundle's items). The
rows' presentation and fulfillment are the bulk of what is read; they change only when a
sync rewrites the row, which gives it a new ``xmin``. So the query asks only which rows are
current and their ``xmin`` (one round trip for a whole batch of submissions), and the full
rows come from ``EntryCache`` unless that row version was never read before.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import cachetools

# The current row version of every active bundle in $1, of every active item in $2, and
# of every active item those bundles list (lax jsonpath: a malformed definition lists none).
CURRENT_REVISIONS = """
SELECT 'bundle' AS kind, name, xmin::text AS rev FROM catalog_bundles
 WHERE name = ANY($1::text[]) AND is_active
UNION ALL
SELECT 'item', name, xmin::text FROM catalog_items
 WHERE is_active AND (name = ANY($2::text[]) OR name IN (
       SELECT jsonb_path_query(b.bundle_definition,
                               'lax $.required_items[*].catalog_item ? (@.type() == "string")') #>> '{}'
         FROM catalog_bundles b WHERE b.name = ANY($1::text[]) AND b.is_active
       UNION ALL
       SELECT jsonb_path_query(b.bundle_definition,
                               'lax $.optional_items[*].catalog_item ? (@.type() == "string")') #>> '{}'
         FROM catalog_bundles b WHERE b.name = ANY($1::text[]) AND b.is_active))
"""

FULL_ROWS = {
    "bundle": """SELECT name, version, presentation, fulfillment, bundle_definition, xmin::text AS rev
                   FROM catalog_bundles WHERE name = ANY($1::text[]) AND is_active""",
    "item": """SELECT name, version, presentation, fulfillment, xmin::text AS rev
                 FROM catalog_items WHERE name = ANY($1::text[]) AND is_active""",
}


class EntryCache:
    """Full catalog rows by (kind, name, xmin): a row version never changes, so never stale.

    Keep one per database (per pool): ``xmin`` values are only unique within a cluster.
    """

    def __init__(self, maxsize: int = 1024):
        self._rows: cachetools.LRUCache[tuple[str, str, str], dict[str, Any]] = \
            cachetools.LRUCache(maxsize=maxsize)

    def get(self, kind: str, name: str, rev: str) -> dict[str, Any] | None:
        return self._rows.get((kind, name, rev))

    def put(self, kind: str, row: dict[str, Any]) -> None:
        self._rows[(kind, row["name"], row["rev"])] = row


@dataclass
class Entries:
    """The active catalog rows by name (planning treats them as read-only)."""

    bundles: dict[str, dict[str, Any]] = field(default_factory=dict)
    items: dict[str, dict[str, Any]] = field(default_factory=dict)


async def read_entries(conn: asyncpg.Connection | asyncpg.Pool, bundles: Collection[str],
                       items: Collection[str], cache: EntryCache | None = None) -> Entries:
    """The active bundles named, their items, and the items named; one query when cached."""
    if not bundles and not items:
        return Entries()
    cache = cache if cache is not None else EntryCache()
    found = Entries()
    missing: dict[str, list[str]] = {"bundle": [], "item": []}
    for r in await conn.fetch(CURRENT_REVISIONS, list(bundles), list(items)):
        row = cache.get(r["kind"], r["name"], r["rev"])
        if row is None:
            missing[r["kind"]].append(r["name"])
        else:
            _found_in(found, r["kind"])[row["name"]] = row
    for kind, names in missing.items():
        if names:
            # The row may have moved on since the first query: its own xmin keys it.
            for r in await conn.fetch(FULL_ROWS[kind], names):
                row = dict(r)
                cache.put(kind, row)
                _found_in(found, kind)[row["name"]] = row
    return found


def _found_in(entries: Entries, kind: str) -> dict[str, dict[str, Any]]:
    return entries.bundles if kind == "bundle" else entries.items
