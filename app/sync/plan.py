"""Deciding what a sync writes, from the changed files and the relevant database state.

No I/O here. The engine gathers: the changes, the parsed new contents, the
file records those paths had, every file claiming a name those changes touch,
and the current item/bundle rows for those names. ``plan_sync`` returns the
rows to write and the errors to record.

Rules:
* A file that parses and validates claims its identifier (per kind: items and
  bundles are separate namespaces).
* A name belongs to the claiming file whose path sorts first; any other file
  claiming it is an error ("the later path"): PAO040 at its name, as
  ``pao-cli validate`` reports it, kept in its file record until it holds a name
  again or claims another.
* A file that stops parsing keeps the name it held (at its old path, when it
  was renamed in the same change), so the item keeps its
  previous active version, and the error is recorded.
* A name nobody claims any more becomes inactive (soft delete).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from app.catalog import crossfile
from app.catalog.parse import CATALOG_DIR, Finding, ParsedFile
from app.sync.changes import Change

NameKey = tuple[str, str]  # (kind, identifier)


@dataclass(frozen=True)
class FileRecord:
    """A catalog file as the database knows it (table ``catalog_files``)."""

    path: str
    blob_oid: str
    kind: str
    identifier: str | None
    error: str | None = None


@dataclass(frozen=True)
class EntryState:
    """An item's or bundle's current row, as far as planning needs it."""

    path: str
    content_hash: str
    is_active: bool


@dataclass(frozen=True)
class Upsert:
    kind: str
    name: str
    path: str
    content_hash: str
    document: dict[str, Any]
    change: str  # "added" or "updated"
    display_name: str | None = None

    def row(self) -> dict[str, Any]:
        """The column values for ``catalog_items`` / ``catalog_bundles``."""
        return entry_columns(self.kind, self.name, self.path, self.document, self.display_name)


@dataclass
class Plan:
    file_upserts: list[FileRecord] = field(default_factory=list)
    file_deletes: list[str] = field(default_factory=list)
    upserts: list[Upsert] = field(default_factory=list)
    deactivations: list[NameKey] = field(default_factory=list)
    errors: list[Finding] = field(default_factory=list)

    def count(self, kind: str, change: str) -> int:
        if change == "removed":
            return sum(1 for k, _ in self.deactivations if k == kind)
        return sum(1 for u in self.upserts if u.kind == kind and u.change == change)


def content_hash(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def affected_names(changes: list[Change], before: Mapping[str, FileRecord],
                   parsed: Mapping[str, ParsedFile]) -> set[NameKey]:
    """Names whose owner may change: held by a changed path before, or claimed by it now."""
    keys: set[NameKey] = set()
    for c in changes:
        old = before.get(c.path)
        if old is not None and old.identifier:
            keys.add((old.kind, old.identifier))
        new = parsed.get(c.path)
        if new is not None and new.identifier:
            keys.add((new.kind, new.identifier))
    return keys


def plan_sync(
    changes: list[Change],
    parsed: Mapping[str, ParsedFile],
    hashes: Mapping[str, str],
    before: Mapping[str, FileRecord],
    claimants: Mapping[NameKey, list[FileRecord]],
    current: Mapping[NameKey, EntryState],
) -> Plan:
    """The writes that bring the catalog tables to the state the changes describe.

    ``parsed``/``hashes``: the new content of every changed path that still
    exists, and of every unchanged claimant of an affected name.
    ``before``: the records changed paths had. ``claimants``: every recorded
    file claiming each affected name. ``current``: the rows of affected names.
    """
    plan = Plan()
    changed: dict[str, FileRecord | None] = {}
    records: dict[str, FileRecord] = {}  # file records to write, by path
    renamed_from = {c.path: c.renamed_from for c in changes if c.renamed_from}
    for c in sorted(changes, key=lambda c: c.path):
        if c.deleted:
            changed[c.path] = None
            if c.path in before:
                plan.file_deletes.append(c.path)
            continue
        p = parsed[c.path]
        assert c.oid is not None
        if p.ok and p.identifier:
            record = FileRecord(c.path, c.oid, p.kind, p.identifier)
        else:
            errors = [f for f in p.findings if f.severity == "error"] or [
                Finding(c.path, 1, 1, "name", "error", "no usable name")]
            plan.errors.extend(errors)
            # A file renamed and broken in one go keeps the name it held at its old path.
            old = before.get(c.path) or before.get(c.renamed_from or "")
            keep = old.identifier if old is not None and old.kind == p.kind else None
            record = FileRecord(c.path, c.oid, p.kind, keep, errors[0].message)
        changed[c.path] = record
        records[c.path] = record

    def sound(r: FileRecord) -> bool:
        """The file itself validates (a file that lost its name to another is sound)."""
        p = parsed.get(r.path)
        return p.ok and p.identifier is not None if p is not None else r.error is None

    changed_by_name: dict[NameKey, list[FileRecord]] = {}
    for r in changed.values():
        if r is not None and r.identifier:
            changed_by_name.setdefault((r.kind, r.identifier), []).append(r)
    keys = affected_names(changes, before, parsed)
    for key in sorted(keys):
        kind, name = key
        candidates = [r for r in claimants.get(key, []) if r.path not in changed]
        candidates += changed_by_name.get(key, [])
        candidates.sort(key=lambda r: r.path)
        row = current.get(key)
        owner: FileRecord | None = None
        for r in candidates:
            # A broken file may only hold on to a name it already serves.
            if sound(r) or (row is not None and row.is_active
                            and row.path in (r.path, renamed_from.get(r.path))):
                owner = r
                break
        for r in candidates:
            if not sound(r):
                continue
            # The file that lost the name records it as its error (listed by the sync
            # status for as long as it lasts), with the validator's code and place.
            finding = None
            if owner is not None and r is not owner:
                # Every claimant's content is read; without it the name alone places it at 1:1.
                pf = parsed.get(r.path) or ParsedFile(r.path, kind, name, None, [])
                finding = crossfile.duplicate_name(pf, owner.path)
            if finding is not None:
                plan.errors.append(finding)
            error = finding.message if finding is not None else None
            if r.error != error:
                records[r.path] = replace(r, error=error)
        if owner is None:
            if row is not None and row.is_active:
                plan.deactivations.append(key)
            continue
        if not sound(owner):
            continue  # keeps its previous active version
        new_hash = hashes.get(owner.path)
        unchanged = (row is not None and row.is_active and row.path == owner.path
                     and (new_hash is None or row.content_hash == new_hash))
        if unchanged:
            continue
        p = parsed.get(owner.path)
        if p is None or p.document is None or new_hash is None:
            raise ValueError(f"plan_sync: no parsed content for {owner.path}, which owns {kind} {name}")
        change = "updated" if row is not None and row.is_active else "added"
        plan.upserts.append(Upsert(kind, name, owner.path, new_hash, p.document, change,
                                   getattr(p, "display_name", None)))
    plan.file_upserts = [records[path] for path in sorted(records)]
    return plan


def category_of(path: str, kind: str) -> str | None:
    """The directory under ``catalog/`` (under ``catalog/bundles/`` for bundles), or None."""
    # git's paths are normalised (no '//', '.', or trailing '/'): a split is what PurePosixPath
    # would say, at a tenth of the cost (a fifth of writing a full load's rows).
    parts = path.split("/")[1:-1]
    if kind == "bundle" and parts and parts[0] == "bundles":
        parts = parts[1:]
    return "/".join(parts) or None


def entry_columns(kind: str, name: str, path: str, doc: dict[str, Any],
                  display_name: str | None = None) -> dict[str, Any]:
    """Columns of an item or bundle row from its parsed document."""
    title = doc.get("name")
    display = display_name or doc.get("display_name")
    if not isinstance(display, str):
        display = title if isinstance(title, str) and title != name else None
    tags = doc.get("tags")
    cols: dict[str, Any] = {
        "name": name,
        "display_name": display,
        "version": str(doc.get("version", "")),
        "description": str(doc.get("description", "")),
        "owner": str(doc.get("owner", "")),
        "tags": [str(t) for t in tags] if isinstance(tags, list) else [],
        "category": category_of(path, kind),
        "document": doc,
    }
    if kind == "bundle":
        bundle = doc.get("bundle")
        if not isinstance(bundle, dict):
            bundle = {k: doc[k] for k in ("required_items", "optional_items") if k in doc}
        cols["bundle_definition"] = bundle
    return cols


__all__ = ["CATALOG_DIR", "EntryState", "FileRecord", "Plan", "Upsert", "plan_sync"]
