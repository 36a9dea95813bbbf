"""Parsers for the git output the caches read in bulk; pure functions, no I/O."""

from __future__ import annotations

from dataclasses import dataclass

ZERO_OID = "0" * 40
# Symlinks and submodules are not files, whatever their names.
NOT_FILES = (b"120000", b"160000")


@dataclass(frozen=True)
class RawChange:
    """One entry of ``git diff --raw -M``: status letter, paths and blob ids."""

    status: str  # A, M, D, R, T (type change), C (copy)
    path: str
    old_path: str | None
    oid: str | None  # the new blob; None when deleted
    old_oid: str | None


def parse_ls_tree(data: bytes) -> dict[str, str]:
    """``git ls-tree -r -z`` output -> {path: blob id} for regular files."""
    files: dict[str, str] = {}
    for entry in data.split(b"\0"):
        if not entry:
            continue
        meta, _, path_bytes = entry.partition(b"\t")
        parts = meta.split()
        if len(parts) != 3 or parts[1] != b"blob" or parts[0] in NOT_FILES:
            continue
        files[path_bytes.decode("utf-8", "surrogateescape")] = parts[2].decode()
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
            new_oid = ZERO_OID  # became a symlink or submodule: no longer a file
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


def parse_cat_file_batch(data: bytes) -> dict[str, bytes]:
    """Parse ``git cat-file --batch`` output: ``<oid> <type> <size>\\n<content>\\n`` repeated."""
    blobs: dict[str, bytes] = {}
    pos = 0
    end = len(data)
    while pos < end:
        nl = data.index(b"\n", pos)
        header = data[pos:nl].split()
        if len(header) == 2 and header[1] == b"missing":
            pos = nl + 1
            continue
        oid, size = header[0].decode(), int(header[2])
        start = nl + 1
        blobs[oid] = data[start:start + size]
        pos = start + size + 1
    return blobs
