"""What changed in the catalog: git's tree and diff output turned into file changes.

Pure functions: they parse bytes git printed and compare path -> blob maps, so
they test without a repository.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from app.sync.source import is_catalog_path


@dataclass(frozen=True)
class RawChange:
    """One entry of ``git diff --raw -M``: status letter, paths and blob ids."""

    status: str  # A, M, D, R, T (type change), C (copy)
    path: str
    old_path: str | None
    oid: str | None  # the new blob; None when deleted
    old_oid: str | None


@dataclass(frozen=True)
class Change:
    """A catalog file to (re)read or drop. A rename is a drop of the old path and an add of the new."""

    path: str
    oid: str | None  # None: the file is gone
    renamed_from: str | None = None

    @property
    def deleted(self) -> bool:
        return self.oid is None


ZERO_OID = "0" * 40
# Symlinks and submodules are not catalog files, whatever their names.
NOT_FILES = (b"120000", b"160000")


def parse_ls_tree(data: bytes) -> dict[str, str]:
    """``git ls-tree -r -z`` output -> {path: blob id} for catalog YAML blobs."""
    files: dict[str, str] = {}
    for entry in data.split(b"\0"):
        if not entry:
            continue
        meta, _, path_bytes = entry.partition(b"\t")
        parts = meta.split()
        if len(parts) != 3 or parts[1] != b"blob" or parts[0] in NOT_FILES:
            continue
        path = path_bytes.decode("utf-8", "surrogateescape")
        if is_catalog_path(path):
            files[path] = parts[2].decode()
    return files


def parse_diff_raw(data: bytes) -> list[RawChange]:
    """``git diff --raw -z --no-abbrev -M`` output -> changes, in git's order."""
    out: list[RawChange] = []
    fields = data.split(b"\0")
    i = 0
    while i < len(fields):
        meta = fields[i]
        if not meta:
            i += 1
            continue
        # ":100644 100644 <old> <new> M" ; renames and copies carry two paths.
        parts = meta.lstrip(b":").split()
        old_oid, new_oid, status = parts[2].decode(), parts[3].decode(), parts[4].decode()[0]
        if parts[1] in NOT_FILES:
            new_oid = ZERO_OID  # became a symlink or submodule: no longer a catalog file
        if status in ("R", "C"):
            old_path = fields[i + 1].decode("utf-8", "surrogateescape")
            path = fields[i + 2].decode("utf-8", "surrogateescape")
            i += 3
        else:
            old_path = None
            path = fields[i + 1].decode("utf-8", "surrogateescape")
            i += 2
        out.append(RawChange(
            status=status, path=path, old_path=old_path,
            oid=None if status == "D" or new_oid == ZERO_OID else new_oid,
            old_oid=None if status == "A" or old_oid == ZERO_OID else old_oid,
        ))
    return out


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
