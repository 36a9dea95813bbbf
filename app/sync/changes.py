"""What changed in the catalog: git's tree and diff output turned into file changes.

Pure functions: they parse bytes git printed and compare path -> blob maps, so
they test without a repository.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from app.catalog.model import unstorable_path
from app.catalog.parse import is_catalog_path
from app.git.parse import RawChange


@dataclass(frozen=True)
class Change:
    """A catalog file to (re)read or drop. A rename is a drop of the old path and an add of the new."""

    path: str
    oid: str | None  # None: the file is gone
    renamed_from: str | None = None

    @property
    def deleted(self) -> bool:
        return self.oid is None


def changes_from_diff(raw: list[RawChange]) -> list[Change]:
    """Catalog file changes from a diff; renames in or out of the catalog become adds or drops."""
    changes: list[Change] = []
    for c in raw:
        if c.status == "R" and c.old_path is not None:
            old_in, new_in = is_catalog_path(c.old_path), is_catalog_path(c.path)
            if old_in:
                changes.append(Change(c.old_path, None))
            if new_in:
                changes.append(Change(c.path, c.oid, renamed_from=c.old_path if old_in else None))
        elif is_catalog_path(c.path):
            changes.append(Change(c.path, None if c.status == "D" else c.oid))
    return changes


def changes_from_trees(head: Mapping[str, str], known: Mapping[str, str]) -> list[Change]:
    """Changes that turn the ``known`` files (path -> blob) into ``head``'s; unchanged blobs are skipped."""
    changes = [Change(path, oid) for path, oid in head.items() if known.get(path) != oid]
    changes.extend(Change(path, None) for path in known if path not in head)
    changes.sort(key=lambda c: c.path)
    return changes


def files_changed(changes: list[Change]) -> int:
    """Files a user would say changed: a rename counts once."""
    renamed = {c.renamed_from for c in changes if c.renamed_from}
    return sum(1 for c in changes if not (c.deleted and c.path in renamed))


def split_unstorable(changes: list[Change]) -> tuple[list[Change], list[str]]:
    """Changes whose path PostgreSQL text can hold, and the paths of files present that it cannot.

    git allows any bytes in a path; bytes that are not UTF-8 arrive here as
    surrogate escapes, which a text column refuses, and a path longer than an index
    entry holds fails the insert (``app.catalog.model.unstorable_path``).
    """
    kept: list[Change] = []
    bad: list[str] = []
    for c in changes:
        if unstorable_path(c.path) is None:
            kept.append(c)
        elif not c.deleted:  # never recorded, so there is nothing to drop
            bad.append(c.path)
    return kept, bad
