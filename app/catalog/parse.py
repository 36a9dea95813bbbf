"""Minimal stand-in for the catalog validator (the full one lands from branch ``checks``).

Same interface: ``parse_catalog_file`` parses one file, ``validate_catalog``
applies cross-file rules.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath

import yaml

try:
    _Loader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover
    _Loader = yaml.SafeLoader

IDENTIFIER = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
REQUIRED = ("name", "version", "description", "owner")


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    col: int
    code: str
    severity: str
    message: str


@dataclass
class ParsedFile:
    path: str
    kind: str
    identifier: str | None
    document: dict | None
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(f.severity == "error" for f in self.findings)


def _kind(path: str) -> str:
    return "bundle" if "/bundles/" in f"/{path}" else "item"


def parse_catalog_file(path: str, data: bytes) -> ParsedFile:
    kind = _kind(path)
    try:
        doc = yaml.load(data, Loader=_Loader)  # noqa: S506  (safe loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 1
        col = mark.column + 1 if mark else 1
        problem = getattr(exc, "problem", None) or str(exc)
        return ParsedFile(path, kind, None, None,
                          [Finding(path, line, col, "yaml", "error", f"invalid YAML: {problem}")])
    if not isinstance(doc, dict):
        return ParsedFile(path, kind, None, None,
                          [Finding(path, 1, 1, "not-mapping", "error", "a catalog file is a mapping")])
    findings = [Finding(path, 1, 1, "required", "error", f"missing required field '{k}'")
                for k in REQUIRED if doc.get(k) in (None, "")]
    name = doc.get("name")
    identifier = None
    if isinstance(name, str) and name:
        if IDENTIFIER.match(name):
            identifier = name
        else:
            identifier = PurePosixPath(path).stem
            if not IDENTIFIER.match(identifier):
                findings.append(Finding(path, 1, 1, "name", "error",
                                        f"file name {identifier!r} is not a valid identifier"))
                identifier = None
    return ParsedFile(path, kind, identifier, doc, findings)


def validate_catalog(files: Mapping[str, ParsedFile]) -> list[Finding]:
    return []
