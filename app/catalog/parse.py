"""Parse and validate catalog files: the one validator behind the CLI, check runs and sync.

``parse_catalog_file(path, data)`` checks one file on its own and returns a
``ParsedFile`` (identifier, document, findings with 1-based line:col);
``validate_catalog(files)`` adds the rules that need every file (unique
identifiers, bundle references), and with ``base=`` the version-bump rule.

Naming rule: the identifier is ``name`` when ``name`` is a valid identifier
(lowercase letters, digits and hyphens, starting with a letter, at most 63
characters). Otherwise ``name`` is a human title: the identifier is the file's
stem (which must itself be valid) and ``display_name`` defaults to the title.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from app.catalog import spec
from app.catalog.yamlload import Loaded, Mark, load

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


class Reporter:
    """Collects findings for one file, placing each at a node's mark."""

    def __init__(self, path: str, loaded: Loaded | None):
        self.path = path
        self.loaded = loaded
        self.findings: list[Finding] = []

    def at(self, mark: Mark, code: str, message: str, severity: str | None = None) -> None:
        sev = severity or spec.RULES_BY_CODE[code].severity
        self.findings.append(Finding(self.path, mark.line, mark.col, code, sev, message))

    def add(self, path: tuple[str | int, ...], code: str, message: str, *, key: bool = False,
            severity: str | None = None) -> None:
        mark = self.loaded.at(path, key=key) if self.loaded is not None else Mark(1, 1)
        self.at(mark, code, message, severity)


def _cross_file_path(path: tuple[str | int, ...]) -> bool:
    """The marks cross-file rules place findings at: the header keys and the bundle lists."""
    return len(path) <= 1 or path[0] == "bundle"


def parse_catalog_file(path: str, data: bytes, *, keep_marks: bool = True) -> ParsedFile:
    """Check one catalog file on its own; never raises for bad content.

    The result keeps only the marks cross-file rules need, as plain Marks: the
    YAML node tree is released, so holding thousands of parsed files (the CLI,
    the checks' parse cache) costs little memory and no garbage-collector time.
    ``keep_marks=False`` keeps none (the sync, which runs no cross-file rules).
    """
    parsed = _parse(path, data)
    if parsed.loaded is not None:
        parsed.loaded = parsed.loaded.resolved(_cross_file_path) if keep_marks else None
    return parsed


def _parse(path: str, data: bytes) -> ParsedFile:
    kind = kind_for_path(path)
    rep = Reporter(path, None)
    if len(data) > spec.MAX_FILE_BYTES:
        rep.at(Mark(1, 1), "PAO002", f"the file has {len(data)} bytes, over the "
               f"{spec.MAX_FILE_BYTES} limit; split it or shorten templates")
        return ParsedFile(path, kind, None, None, rep.findings)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        rep.at(Mark(line, col), "PAO001", f"byte 0x{data[exc.start]:02x} is not UTF-8; "
               "save the file as UTF-8")
        return ParsedFile(path, kind, None, None, rep.findings)
    if text.startswith("\ufeff"):
        text = text[1:]
    loaded = load(text, max_nodes=spec.MAX_NODES, max_depth=spec.MAX_DEPTH)
    rep.loaded = loaded
    for p in loaded.problems:
        rep.at(p.mark, p.code, p.message)
    if loaded.fatal:
        return ParsedFile(path, kind, None, None, rep.findings, loaded=loaded)
    doc = loaded.value
    if not isinstance(doc, dict):
        what = "empty" if doc is None else spec.type_name(doc)
        rep.add((), "PAO004", f"the document is {what}; a catalog {kind} is a mapping that "
                "starts with name:, version:, description:, owner:")
        return ParsedFile(path, kind, None, None, rep.findings, loaded=loaded)

    from app.catalog import rules  # semantic rules build on the shape check

    check_shape(rep, spec.shape_for(kind), doc, ())
    identifier, display_name = resolve_identifier(rep, path, doc)
    rules.check_file(rep, kind, doc)
    # A value the loader already reported (e.g. `.nan`, read as null) gets no second finding.
    loader_spots = {(p.mark.line, p.mark.col) for p in loaded.problems}
    if loader_spots:
        own = {(p.mark.line, p.mark.col, p.code, p.message) for p in loaded.problems}
        rep.findings = [f for f in rep.findings if (f.line, f.col) not in loader_spots
                        or (f.line, f.col, f.code, f.message) in own]
    rep.findings.sort(key=Finding.sort_key)
    return ParsedFile(path, kind, identifier, doc, rep.findings, display_name, loaded)


def resolve_identifier(rep: Reporter, path: str, doc: dict) -> tuple[str | None, str | None]:
    """Apply the naming rule; returns (identifier, display_name)."""
    name = doc.get("name")
    display = doc.get("display_name") if isinstance(doc.get("display_name"), str) else None
    if not isinstance(name, str) or not name:
        return None, display
    if spec.IDENTIFIER_RE.match(name):
        return name, display or name
    stem = file_stem(path)
    if not spec.IDENTIFIER_RE.match(stem):
        rep.add(("name",), "PAO016",
                f"name {name!r} is not an identifier and neither is the file name {stem!r}; "
                "use lowercase letters, digits and hyphens (e.g. name: "
                f"{_slug(name)!r}) and put the title in display_name")
        return None, display or name
    rep.add(("name",), "PAO015",
            f"name {name!r} is a title, so the identifier is the file name {stem!r}; "
            f"write name: {stem!r} and display_name: {name!r}")
    return stem, display or name


def _slug(text: str) -> str:
    out = "".join(c if c.isalnum() else "-" for c in text.lower().strip())
    out = "-".join(p for p in out.split("-") if p)
    return (out if out[:1].isalpha() else "x-" + out)[:63] or "item"


# -- shape check ----------------------------------------------------------------

def check_shape(rep: Reporter, shape: spec.Shape, value: Any, path: tuple[str | int, ...]) -> bool:
    """Check ``value`` against ``shape``; False when the type is wrong (children skipped)."""
    if isinstance(shape, spec.Obj):
        if not isinstance(value, dict):
            rep.add(path, "PAO011", f"{_where(path)} must be a mapping ({shape.title}), "
                    f"not {spec.type_name(value)}")
            return False
        for key, sub in value.items():
            known = shape.keys.get(key)
            if known is None:
                rep.add((*path, key), "PAO012", _unknown_key(key, shape), key=True)
                continue
            check_shape(rep, known.shape, sub, (*path, key))
        for key, known in shape.keys.items():
            if known.required and key not in value:
                rep.add(path, "PAO010", f"{shape.title} is missing required key '{key}': "
                        f"{known.doc}", key=bool(path))
        return True
    if isinstance(shape, spec.ListOf):
        if not isinstance(value, list):
            rep.add(path, "PAO011", f"{_where(path)} must be a list, not {spec.type_name(value)}")
            return False
        if len(value) < shape.min_items:
            rep.add(path, "PAO018", f"{_where(path)} must have at least {shape.min_items} entry")
        for i, item in enumerate(value):
            check_shape(rep, shape.item, item, (*path, i))
        return True
    if isinstance(shape, spec.MapOf):
        if not isinstance(value, dict):
            rep.add(path, "PAO011", f"{_where(path)} must be a mapping, not {spec.type_name(value)}")
            return False
        for key, sub in value.items():
            check_shape(rep, shape.value, sub, (*path, key))
        return True
    return _check_scalar(rep, shape, value, path)


def _check_scalar(rep: Reporter, shape: spec.Scalar, value: Any, path: tuple[str | int, ...]) -> bool:
    t = shape.type
    if t == "any":
        return True
    ok = (
        (t == "string" and isinstance(value, str))
        or (t == "boolean" and isinstance(value, bool))
        or (t == "integer" and isinstance(value, int) and not isinstance(value, bool))
        or (t == "number" and isinstance(value, int | float) and not isinstance(value, bool))
    )
    if not ok:
        hint = ""
        if t == "string" and isinstance(value, int | float) and not isinstance(value, bool):
            hint = f"; quote it: \"{value}\""
        elif t == "boolean" and isinstance(value, str):
            hint = "; write true or false without quotes"
        elif t in ("integer", "number") and isinstance(value, str):
            hint = "; write the number without quotes"
        rep.add(path, "PAO011", f"{_where(path)} must be {spec.describe(shape)}, "
                f"not {spec.type_name(value)}{hint}")
        return False
    if t == "string":
        if shape.min_length and not value.strip():
            rep.add(path, "PAO018", f"{_where(path)} must not be empty")
        elif shape.enum and value not in shape.enum:
            rep.add(path, "PAO017", f"{_where(path)} is {value!r}; use one of "
                    f"{', '.join(shape.enum)}{_did_you_mean(value, shape.enum)}")
    return True


def _where(path: tuple[str | int, ...]) -> str:
    if not path:
        return "the document"
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _did_you_mean(word: str, options: Any) -> str:
    import difflib

    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _unknown_key(key: str, shape: spec.Obj) -> str:
    hint = _did_you_mean(key, shape.keys)
    if not hint:
        hint = "; allowed keys: " + ", ".join(shape.keys)
    return f"unknown key '{key}' in {shape.title}{hint}"


# -- cross-file rules ------------------------------------------------------------

def validate_catalog(
    files: Mapping[str, ParsedFile], *, base: Mapping[str, ParsedFile] | None = None
) -> list[Finding]:
    """Rules across files: unique identifiers, bundle references, and with ``base`` the
    version rule (a changed item must raise its version). Files are keyed by path."""
    from app.catalog import crossfile

    findings = crossfile.check_catalog(files)
    if base is not None:
        findings += crossfile.check_versions(files, base)
    findings.sort(key=Finding.sort_key)
    return findings
