"""Render validation results: text (seed 001 style), JSON, and GitHub workflow commands.

Paths, keys and values in findings are the catalog author's text. Every format
escapes them so that one finding is one line of output, and nothing in a file can
write a line of its own (a key holding a newline and ``::warning ...`` would be a
workflow command when the text format runs in GitHub Actions), move the terminal's
cursor or reverse the text's direction.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict

from app.catalog.model import Finding, ParsedFile

# Control characters (C0, DEL, C1), YAML's and Unicode's other line breaks, bidirectional
# controls and lone surrogates (undecodable file names).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069"
                     "\ud800-\udfff]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def printable(text: str) -> str:
    """``text`` with every character in ``_UNSAFE`` written as a backslash escape."""
    return _UNSAFE.sub(lambda m: _NAMED.get(m.group()) or (
        f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100 else f"\\u{ord(m.group()):04x}"), text)


def _line_start(shown: str) -> str:
    """A path to begin a text line with: never a workflow command's ``::``."""
    return "./" + shown if shown.lstrip().startswith("::") else shown


def plural(n: int, word: str) -> str:
    """``1 file``, ``2 files``."""
    return f"{n} {word}{'' if n == 1 else 's'}"


def counts(findings: Iterable[Finding]) -> dict[str, int]:
    out = {"error": 0, "warning": 0, "notice": 0}
    for f in findings:
        out[f.severity] = out.get(f.severity, 0) + 1
    return out


def text(files: Mapping[str, ParsedFile], findings: Mapping[str, list[Finding]],
         display: Mapping[str, str]) -> str:
    """Per file: the ✓ lines when clean, else ``path:line:col: CODE message`` lines."""
    lines: list[str] = []
    for path in sorted(files):
        pf = files[path]
        shown = _line_start(printable(display.get(path, path)))
        mine = findings.get(path, [])
        if not mine:
            lines.append(shown)
            lines.extend(_check_marks(pf))
            continue
        for f in mine:
            sev = "" if f.severity == "error" else f"{f.severity}: "
            lines.append(f"{shown}:{f.line}:{f.col}: {f.code} {sev}{printable(f.message)}")
    total = counts(f for fs in findings.values() for f in fs)
    bad = sum(1 for p in files if any(f.severity == "error" for f in findings.get(p, [])))
    lines.append(f"{plural(len(files), 'file')} checked: {len(files) - bad} valid, {bad} with "
                 f"errors; {plural(total['error'], 'error')}, {plural(total['warning'], 'warning')}, "
                 f"{plural(total['notice'], 'notice')}")
    return "\n".join(lines)


def _check_marks(pf: ParsedFile) -> list[str]:
    doc = pf.document or {}
    kind = "CatalogBundle" if pf.kind == "bundle" else "CatalogItem"
    out = [f"✓ Valid {kind} document", "✓ All required fields present"]
    if "presentation" in doc:
        out.append("✓ Presentation fields properly defined")
    if pf.kind == "bundle":
        out.append("✓ Bundle items resolve to catalog items")
    if isinstance(doc.get("fulfillment"), dict):
        f = doc["fulfillment"]
        if "manual" in f:
            out.append("✓ Fulfillment template valid")
        if "automation" in f:
            out.append("✓ Automation steps valid")
    return out


def as_json(files: Mapping[str, ParsedFile], findings: Mapping[str, list[Finding]],
            display: Mapping[str, str]) -> str:
    body = {
        "files": [
            {
                "path": display.get(p, p),
                "catalog_path": p,
                "kind": files[p].kind,
                "identifier": files[p].identifier,
                "valid": not any(f.severity == "error" for f in findings.get(p, [])),
                "findings": [{**asdict(f), "path": display.get(p, p)} for f in findings.get(p, [])],
            }
            for p in sorted(files)
        ],
        "summary": counts(f for fs in findings.values() for f in fs) | {"files": len(files)},
    }
    # JSON escapes control characters itself; a lone surrogate (a file name that is not
    # UTF-8) becomes its JSON escape instead of an encoding error at print time.
    return json.dumps(body, indent=2, ensure_ascii=False).encode("utf-8", "backslashreplace").decode()


def _escape_data(s: str) -> str:
    return s.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(s: str) -> str:
    return _escape_data(s).replace(":", "%3A").replace(",", "%2C")


def github(files: Mapping[str, ParsedFile], findings: Mapping[str, list[Finding]],
           display: Mapping[str, str]) -> str:
    """GitHub Actions workflow commands (``::error file=..,line=..::msg``) that annotate a PR."""
    lines: list[str] = []
    for path in sorted(files):
        for f in findings.get(path, []):
            level = {"error": "error", "warning": "warning"}.get(f.severity, "notice")
            props = ",".join([
                f"file={_escape_property(printable(display.get(path, path)))}",
                f"line={f.line}", f"col={f.col}", f"title={_escape_property(f.code)}",
            ])
            lines.append(f"::{level} {props}::{_escape_data(printable(f.message))}")
    total = counts(f for fs in findings.values() for f in fs)
    lines.append(f"{plural(len(files), 'file')} checked: {plural(total['error'], 'error')}, "
                 f"{plural(total['warning'], 'warning')}")
    return "\n".join(lines)
