"""What the validator's parts share: findings, parsed files, catalog paths, the Reporter.

A leaf of ``app.catalog``: the loader, the rules, the cross-file rules and the
entry point (``parse.py``) all build on it, and it imports none of them.
"""

from __future__ import annotations

import difflib
import logging
import posixpath
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from app.catalog import spec
from app.catalog.yamlload import Loaded, Mark

log = logging.getLogger(__name__)

CATALOG_DIR = "catalog"
BUNDLES_DIR = "catalog/bundles"
YAML_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class Finding:
    """One problem at a place in a file; line and col are 1-based."""

    path: str
    line: int
    col: int
    code: str
    severity: str  # "error" | "warning" | "notice"
    message: str

    def sort_key(self) -> tuple[str, int, int, str]:
        return (self.path, self.line, self.col, self.code)


@dataclass
class ParsedFile:
    path: str  # repository-relative, e.g. catalog/databases/mysql-database.yaml
    kind: str  # "item" or "bundle" (files under catalog/bundles/ are bundles)
    identifier: str | None  # the name the API uses
    document: dict | None  # the parsed mapping, None when unusable
    findings: list[Finding]
    display_name: str | None = None
    loaded: Loaded | None = field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        """No error-severity findings."""
        return not any(f.severity == "error" for f in self.findings)

    @property
    def version(self) -> str | None:
        v = (self.document or {}).get("version")
        return v if isinstance(v, str) else None

    @property
    def category(self) -> str | None:
        """The directory under catalog/ (``databases``), None for files directly in it."""
        return category_for_path(self.path)

    def mark(self, path: tuple[str | int, ...], *, key: bool = False) -> Mark:
        if self.loaded is None:
            return Mark(1, 1)
        return self.loaded.at(path, key=key)

    def record(self) -> dict[str, Any]:
        """The normalized mapping to store: identifier as ``name``, ``display_name`` and
        ``tags`` defaulted, ``category`` from the path."""
        doc = dict(self.document or {})
        doc["name"] = self.identifier
        doc["display_name"] = self.display_name
        doc.setdefault("tags", [])
        doc["category"] = self.category
        return doc


def kind_for_path(path: str) -> str:
    return "bundle" if path.startswith(BUNDLES_DIR + "/") else "item"


def category_for_path(path: str) -> str | None:
    parts = path.split("/")
    if len(parts) >= 3 and parts[0] == CATALOG_DIR:
        return parts[1]
    return None


def is_catalog_path(path: str) -> bool:
    """True for ``catalog/**/*.yaml`` and ``*.yml``: the files PAO reads."""
    return path.startswith(CATALOG_DIR + "/") and path.endswith(YAML_SUFFIXES)


def file_stem(path: str) -> str:
    base = posixpath.basename(path)
    for suffix in YAML_SUFFIXES:
        if base.endswith(suffix):
            return base[: -len(suffix)]
    return base


_SEVERITY_RANK = {"error": 0, "warning": 1, "notice": 2}


class Reporter:
    """Collects findings for one file, placing each at a node's mark.

    At most ``spec.MAX_FINDINGS_PER_FILE`` are kept; the rest are only counted (so a file
    with 13,000 unknown template variables costs no more than one with a hundred), and
    ``close()`` sums them up in one PAO090 finding.
    """

    def __init__(self, path: str, loaded: Loaded | None, limit: int = spec.MAX_FINDINGS_PER_FILE):
        self.path = path
        self.loaded = loaded
        self.limit = limit
        self.findings: list[Finding] = []
        self.dropped: dict[str, int] = {}  # severity -> findings counted, not kept

    @property
    def full(self) -> bool:
        """No room for another finding: callers may skip the work of placing and wording it."""
        return len(self.findings) >= self.limit

    def drop(self, code: str, severity: str | None = None) -> None:
        """Count a finding there is no room for."""
        sev = severity or spec.RULES_BY_CODE[code].severity
        self.dropped[sev] = self.dropped.get(sev, 0) + 1

    def at(self, mark: Mark, code: str, message: str, severity: str | None = None) -> None:
        if self.full:
            self.drop(code, severity)
            return
        sev = severity or spec.RULES_BY_CODE[code].severity
        self.findings.append(Finding(self.path, mark.line, mark.col, code, sev, message))

    def add(self, path: tuple[str | int, ...], code: str, message: str, *, key: bool = False,
            severity: str | None = None) -> None:
        if self.full:
            self.drop(code, severity)
            return
        mark = self.loaded.at(path, key=key) if self.loaded is not None else Mark(1, 1)
        self.at(mark, code, message, severity)

    def keep(self, finding: Finding) -> None:
        """Keep a finding made elsewhere (cross-file rules), or count it when full."""
        if self.full:
            self.drop(finding.code, finding.severity)
        else:
            self.findings.append(finding)

    def close(self) -> list[Finding]:
        """The findings in file order, closed by PAO090 when some were only counted."""
        self.findings.sort(key=Finding.sort_key)
        if self.dropped:
            n = sum(self.dropped.values())
            worst = min(self.dropped, key=_SEVERITY_RANK.__getitem__)
            what = ", ".join(f"{k} {sev}{'s' if k != 1 else ''}" for sev, k in sorted(
                self.dropped.items(), key=lambda kv: _SEVERITY_RANK[kv[0]]))
            last = self.findings[-1] if self.findings else Finding(self.path, 1, 1, "", "", "")
            self.findings.append(Finding(
                self.path, last.line, last.col, "PAO090", worst,
                f"{n} more finding{'s' if n != 1 else ''} in this file ({what}) beyond the first "
                f"{self.limit}; fix these and validate again"))
        return self.findings


def unstorable_path(path: str) -> Finding | None:
    """The finding for a file path the catalog database cannot hold, None for the others:
    PAO001 for a name that is not UTF-8 (surrogate escapes from the file system or git),
    PAO027 for one past ``spec.MAX_PATH_BYTES`` (an index entry's limit)."""
    try:
        size = len(path.encode("utf-8"))
    except UnicodeEncodeError:
        return Finding(path, 1, 1, "PAO001", "error", "the file name is not UTF-8; rename it")
    if size > spec.MAX_PATH_BYTES:
        return Finding(path, 1, 1, "PAO027", "error", f"the file's path has {size:,} bytes, over "
                       f"the {spec.MAX_PATH_BYTES:,} PAO stores; use shorter directory and file names")
    return None


def did_you_mean(word: str, options: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``options``, or ``""``."""
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


_TRACE_FRAMES = 12


def crashed(path: str, stage: str, exc: Exception) -> Finding:
    """The finding for a file the validator could not finish: an error of that file only.

    Whatever goes wrong while parsing or analysing one file (a RecursionError in a
    library, a bug in a rule) must not fail the sync, the check run or the CLI for the
    other files. The traceback goes to the log for PAO's maintainers.
    """
    # The innermost frames only: a RecursionError's traceback has thousands.
    trace = "".join(traceback.format_exception(exc, limit=-_TRACE_FRAMES))
    log.error("validator failed on %s while %s: %s", path, stage, trace.rstrip())
    return Finding(path, 1, 1, "PAO099", "error",
                   f"PAO could not finish {stage} this file ({type(exc).__name__}); simplify "
                   "it (deep nesting, very long expressions), and report it to PAO's "
                   "maintainers if it looks ordinary")


def guarded(path: str, stage: str, check: Callable[[], list[Finding]]) -> list[Finding]:
    """``check()``'s findings, or the ``crashed`` finding of ``path`` if it raises."""
    try:
        return check()
    except Exception as exc:  # any failure is this file's finding (see crashed)
        return [crashed(path, stage, exc)]
