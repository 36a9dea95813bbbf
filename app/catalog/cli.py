"""``pao-cli validate``: check catalog files locally, in CI, or from a pre-commit hook.

Exit codes: 0 valid, 1 findings (errors, or warnings with ``--strict``), 2 usage or
I/O error. Files inside a ``catalog/`` directory are validated with the whole
catalog as context (bundle references, unique names), but only the named files
are reported.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO

from app.catalog import report, spec
from app.catalog.parse import (
    CATALOG_DIR,
    YAML_SUFFIXES,
    Finding,
    ParsedFile,
    parse_catalog_file,
    validate_catalog,
)

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """A path that does not exist, an unreadable file, a bad --base: exit 2."""


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("validate", help="validate catalog YAML files",
                       description="Validate catalog items and bundles (default: ./catalog).")
    p.add_argument("paths", nargs="*", metavar="PATH", help="files or directories")
    p.add_argument("--format", choices=("text", "json", "github"), default="text",
                   help="text (default), json, or github (workflow commands for Actions)")
    p.add_argument("--base", metavar="GIT_REF",
                   help="compare with this git ref: changed items must raise their version")
    p.add_argument("--strict", action="store_true", help="warnings fail too")
    p.set_defaults(func=cmd_validate)


def _catalog_root(path: Path) -> Path | None:
    """The directory that contains the ``catalog`` directory ``path`` is in, if any."""
    for parent in path.resolve().parents:
        if parent.name == CATALOG_DIR:
            return parent.parent
    return None


def _yaml_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.is_file() and p.name.endswith(YAML_SUFFIXES))


def collect(paths: list[str]) -> tuple[dict[str, Path], set[str], dict[str, str]]:
    """Files to read (catalog path -> file), the ones to report, and display names."""
    targets: list[Path] = []
    for raw in paths or [CATALOG_DIR]:
        p = Path(raw)
        if p.is_dir():
            # A repository root means its catalog/, not every YAML file (workflows...).
            inside = _catalog_root(p / "x") is not None  # p is catalog/ or below it
            scan = p / CATALOG_DIR if not inside and (p / CATALOG_DIR).is_dir() else p
            targets.extend(_yaml_files(scan))
        elif p.is_file():
            targets.append(p)
        else:
            what = "not a regular file" if p.exists() else "no such file or directory"
            raise UsageError(f"{raw}: {what}")
    read: dict[str, Path] = {}
    reported: set[str] = set()
    display: dict[str, str] = {}
    roots: set[Path] = set()
    for t in targets:
        root = _catalog_root(t)
        if root is None:
            rel = t.as_posix()
        else:
            rel = t.resolve().relative_to(root).as_posix()
            roots.add(root)
        read[rel] = t
        reported.add(rel)
        display[rel] = os.path.relpath(t) if t.is_absolute() else t.as_posix()
    for root in roots:  # context: the rest of each catalog
        for extra in _yaml_files(root / CATALOG_DIR):
            rel = extra.relative_to(root).as_posix()
            read.setdefault(rel, extra)
    return read, reported, display


def read_limited(file: Path) -> bytes:
    """The file's bytes, stopping one past the size limit: a 1 GiB file costs 256 KiB and
    is PAO002 all the same."""
    try:
        with file.open("rb") as fh:
            return fh.read(spec.MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise UsageError(f"{file}: {exc.strerror}") from None


def parse_all(read: dict[str, Path]) -> dict[str, ParsedFile]:
    return {rel: parse_catalog_file(rel, read_limited(file)) for rel, file in read.items()}


def _git(args: list[str], cwd: Path | str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(["git", *args], cwd=cwd, input=stdin, capture_output=True, check=False)
    except OSError as exc:
        raise UsageError(f"--base needs git: {exc.strerror}") from None


def base_files(ref: str, read: dict[str, Path]) -> dict[str, ParsedFile]:
    """The catalog as of git ``ref``, for the version rule; reads blobs in one batch.

    Paths are bytes in git; like the files on disk they become ``str`` through the
    file-system encoding (undecodable bytes kept as surrogate escapes), so a committed
    file whose name is not UTF-8 is compared, not a crash.
    """
    here = next(iter(read.values())).resolve().parent if read else Path.cwd()
    found = _git(["rev-parse", "--show-toplevel"], here)
    if found.returncode != 0:
        raise UsageError("--base needs the files to be in a git repository")
    top = os.fsdecode(found.stdout.rstrip(b"\n"))
    cat_root = _catalog_root(next(iter(read.values())))
    prefix = Path(os.path.relpath(cat_root, top)).as_posix() if cat_root else "."
    prefix = "" if prefix == "." else prefix + "/"
    listing = _git(["ls-tree", "-r", "-z", "--full-tree", ref, "--", f"{prefix}{CATALOG_DIR}"], top)
    if listing.returncode != 0:
        raise UsageError(f"--base {ref}: {listing.stderr.decode(errors='replace').strip()}")
    entries = []
    for rec in listing.stdout.split(b"\0"):
        if not rec:
            continue
        meta, name = rec.split(b"\t", 1)
        path = os.fsdecode(name)
        if meta.split()[1] == b"blob" and path.endswith(YAML_SUFFIXES):
            entries.append((meta.split()[2].decode(), path[len(prefix):]))
    blobs = read_blobs(top, [sha for sha, _ in entries])
    return {rel: parse_catalog_file(rel, data) for (_, rel), data in zip(entries, blobs, strict=True)}


def read_blobs(cwd: str, shas: list[str], limit: int = spec.MAX_FILE_BYTES + 1) -> list[bytes]:
    """Blob contents via one ``git cat-file --batch`` process, each cut at ``limit`` bytes
    as it streams in (a blob of 1 GiB is not held in memory)."""
    if not shas:
        return []
    try:
        proc = subprocess.Popen(["git", "cat-file", "--batch"], cwd=cwd, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    except OSError as exc:
        raise UsageError(f"--base needs git: {exc.strerror}") from None
    assert proc.stdin is not None and proc.stdout is not None
    # Blob ids go in from a thread: git answers while it reads, and both pipes could fill.
    feeder = threading.Thread(target=_feed, args=(proc.stdin, shas), daemon=True)
    feeder.start()
    blobs = []
    try:
        for sha in shas:
            header = proc.stdout.readline().split()
            if len(header) != 3:
                raise UsageError(f"--base: git cannot read blob {sha}")
            size = int(header[2])
            blobs.append(proc.stdout.read(min(size, limit)))
            _skip(proc.stdout, size - min(size, limit) + 1)  # the rest, and the newline
    finally:
        proc.stdout.close()
        proc.kill()
        proc.wait()
        feeder.join()
    return blobs


def _feed(pipe: IO[bytes], shas: list[str]) -> None:
    try:
        pipe.write("".join(f"{sha}\n" for sha in shas).encode())
        pipe.close()
    except OSError:
        pass  # git went away: the reader reports it


def _skip(stream: IO[bytes], n: int) -> None:
    while n > 0:
        chunk = stream.read(min(n, 1 << 16))
        if not chunk:
            return
        n -= len(chunk)


def cmd_validate(args: argparse.Namespace) -> int:
    try:
        read, reported, display = collect(args.paths)
        if not read:
            print("pao-cli: no catalog files (*.yaml, *.yml) found", file=sys.stderr)
            return EXIT_USAGE
        files = parse_all(read)
        base = base_files(args.base, read) if args.base else None
    except UsageError as exc:
        print(f"pao-cli: {report.printable(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    findings: dict[str, list[Finding]] = {p: list(files[p].findings) for p in reported}
    for f in validate_catalog(files, base=base):
        if f.path in reported:
            findings[f.path].append(f)
    for fs in findings.values():
        fs.sort(key=Finding.sort_key)
    shown = {p: files[p] for p in reported}
    render = {"text": report.text, "json": report.as_json, "github": report.github}[args.format]
    print(render(shown, findings, display))
    severities = {f.severity for fs in findings.values() for f in fs}
    failing = "error" in severities or (args.strict and "warning" in severities)
    return EXIT_FINDINGS if failing else EXIT_OK
