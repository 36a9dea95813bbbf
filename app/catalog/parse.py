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

from collections.abc import Mapping

from app.catalog import crossfile, rules, spec
from app.catalog.model import (
    BUNDLES_DIR,
    CATALOG_DIR,
    YAML_SUFFIXES,
    Finding,
    ParsedFile,
    Reporter,
    category_for_path,
    crashed,
    file_stem,
    is_catalog_path,
    kind_for_path,
    unstorable_path,
)
from app.catalog.shape import check_shape
from app.catalog.yamlload import Mark, load

__all__ = ["BUNDLES_DIR", "CATALOG_DIR", "YAML_SUFFIXES", "Finding", "ParsedFile", "Reporter",
           "category_for_path", "file_stem", "is_catalog_path", "kind_for_path",
           "parse_catalog_file", "resolve_identifier", "validate_catalog"]


# The marks cross-file rules place findings at: the header keys and the bundle lists.
_CROSS_FILE_UNDER: frozenset[str | int] = frozenset({"bundle"})


def parse_catalog_file(path: str, data: bytes, *, keep_marks: bool = True) -> ParsedFile:
    """Check one catalog file on its own; never raises for bad content.

    The result keeps only the marks cross-file rules need, as plain Marks: the
    YAML node tree is released, so holding thousands of parsed files (the CLI,
    the checks' parse cache) costs little memory and no garbage-collector time.
    ``keep_marks=False`` keeps none (the sync, which runs no cross-file rules).

    Whatever fails while parsing or analysing the file is that file's finding (PAO099).
    """
    try:
        parsed = _parse(path, data)
        if parsed.loaded is not None:
            parsed.loaded = parsed.loaded.resolved(_CROSS_FILE_UNDER) if keep_marks else None
    except Exception as exc:  # a file's failure is its own finding, never its caller's
        return ParsedFile(path, kind_for_path(path), None, None, [crashed(path, "checking", exc)])
    return parsed


def _parse(path: str, data: bytes) -> ParsedFile:
    kind = kind_for_path(path)
    rep = Reporter(path, None)
    if (bad_path := unstorable_path(path)) is not None:
        return ParsedFile(path, kind, None, None, [bad_path])
    if len(data) > spec.MAX_FILE_BYTES:
        # Callers may stop reading one byte past the limit, so the size is not known here.
        rep.at(Mark(1, 1), "PAO002", f"the file is larger than {spec.MAX_FILE_BYTES:,} bytes "
               f"({spec.MAX_FILE_BYTES // 1024} KiB); split it or shorten templates")
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
        return ParsedFile(path, kind, None, None, rep.close(), loaded=loaded)
    doc = loaded.value
    if not isinstance(doc, dict):
        what = "empty" if doc is None else spec.type_name(doc)
        rep.add((), "PAO004", f"the document is {what}; a catalog {kind} is a mapping that "
                "starts with name:, version:, description:, owner:")
        return ParsedFile(path, kind, None, None, rep.close(), loaded=loaded)
    check_shape(rep, spec.shape_for(kind), doc, ())
    identifier, display_name = resolve_identifier(rep, path, doc)
    rules.check_file(rep, kind, doc)
    # A value the loader already reported (e.g. `.nan`, read as null) gets no second finding.
    loader_spots = {(p.mark.line, p.mark.col) for p in loaded.problems}
    if loader_spots:
        own = {(p.mark.line, p.mark.col, p.code, p.message) for p in loaded.problems}
        rep.findings = [f for f in rep.findings if (f.line, f.col) not in loader_spots
                        or (f.line, f.col, f.code, f.message) in own]
    return ParsedFile(path, kind, identifier, doc, rep.close(), display_name, loaded)


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


# -- cross-file rules ------------------------------------------------------------

def validate_catalog(
    files: Mapping[str, ParsedFile], *, base: Mapping[str, ParsedFile] | None = None
) -> list[Finding]:
    """Rules across files: unique identifiers, bundle references, and with ``base`` the
    version rule (a changed item must raise its version). Files are keyed by path."""
    findings = crossfile.check_catalog(files)
    if base is not None:
        findings += crossfile.check_versions(files, base)
    findings.sort(key=Finding.sort_key)
    return findings
