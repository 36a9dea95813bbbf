"""What a pull request does to the catalog: the findings on the files it changes.

Pure: given the parsed head catalog, the parsed base catalog and the PR's file
changes, say which files to report and what is wrong with them. Changed files get
every finding (their own, cross-file, version); unchanged files get only the
cross-file findings the change introduced (a bundle broken by a removed item).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field

from app.catalog.parse import Finding, ParsedFile, is_catalog_path, parse_catalog_file, validate_catalog


@dataclass(frozen=True)
class Change:
    status: str  # "A" added, "M" modified, "D" deleted, "R" renamed, "C" copied, "T" type change
    path: str  # the path at head (for deletions: the removed path)
    old_path: str | None = None  # renames and copies: the path at base


@dataclass
class Evaluation:
    reported: list[str]  # head paths with results, sorted
    deleted: list[str]
    files: dict[str, ParsedFile]
    findings: dict[str, list[Finding]] = field(default_factory=dict)

    @property
    def all_findings(self) -> list[Finding]:
        return [f for p in self.reported for f in self.findings.get(p, [])]

    def count(self, severity: str) -> int:
        return sum(1 for f in self.all_findings if f.severity == severity)

    @property
    def has_changes(self) -> bool:
        return bool(self.reported or self.deleted)


def catalog_changes(changes: list[Change]) -> list[Change]:
    """Only changes to catalog YAML files (a rename into catalog/ counts as an addition)."""
    out = []
    for c in changes:
        if is_catalog_path(c.path):
            out.append(c)
        elif c.old_path and is_catalog_path(c.old_path):
            out.append(Change("D", c.old_path))
    return out


def evaluate(head: Mapping[str, ParsedFile], base: Mapping[str, ParsedFile],
             changes: list[Change]) -> Evaluation:
    changes = catalog_changes(changes)
    changed = sorted({c.path for c in changes if c.status != "D" and c.path in head})
    deleted = sorted({c.path for c in changes if c.status == "D"})
    findings: dict[str, list[Finding]] = {p: list(head[p].findings) for p in changed}
    head_cross = validate_catalog(head, base=base)
    base_cross = {(f.path, f.code, f.message) for f in validate_catalog(base)}
    affected: set[str] = set()
    for f in head_cross:
        if f.path in findings:
            findings[f.path].append(f)
        elif (f.path, f.code, f.message) not in base_cross:
            findings.setdefault(f.path, []).append(f)
            affected.add(f.path)
    for fs in findings.values():
        fs.sort(key=Finding.sort_key)
    return Evaluation(sorted(set(changed) | affected), deleted, dict(head), findings)


class ParseCache:
    """Parsed files by (blob id, path): a blob's result never changes, so checks of
    successive pushes parse only the blobs that are new."""

    def __init__(self, size: int = 10_000):
        self.size = size
        self._items: OrderedDict[tuple[str, str], ParsedFile] = OrderedDict()

    def get(self, blob: str, path: str) -> ParsedFile | None:
        key = (blob, path)
        pf = self._items.get(key)
        if pf is not None:
            self._items.move_to_end(key)
        return pf

    def parse(self, blob: str, path: str, data: bytes) -> ParsedFile:
        pf = parse_catalog_file(path, data)
        self._items[(blob, path)] = pf
        while len(self._items) > self.size:
            self._items.popitem(last=False)
        return pf
