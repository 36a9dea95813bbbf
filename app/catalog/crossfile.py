"""Rules that need the whole catalog: unique identifiers, bundle references, version bumps."""

from __future__ import annotations

from collections.abc import Mapping

from app.catalog import spec
from app.catalog.model import Finding, ParsedFile, Reporter, did_you_mean, guarded
from app.catalog.semver import Constraint, Version

# Where a duplicate identifier is reported: the file's name (its value's mark).
NAME: tuple[str, ...] = ("name",)


def _finding(pf: ParsedFile, path: tuple[str | int, ...], code: str, message: str,
             *, key: bool = False) -> Finding:
    mark = pf.mark(path, key=key)
    return Finding(pf.path, mark.line, mark.col, code, spec.RULES_BY_CODE[code].severity, message)


def index(files: Mapping[str, ParsedFile], kind: str) -> dict[str, ParsedFile]:
    """identifier -> file for one kind; on duplicates the first path (sorted) wins."""
    out: dict[str, ParsedFile] = {}
    for path in sorted(files):
        pf = files[path]
        if pf.kind == kind and pf.identifier is not None and pf.identifier not in out:
            out[pf.identifier] = pf
    return out


def duplicate_name(pf: ParsedFile, owner_path: str) -> Finding:
    """PAO040 on ``pf``, whose identifier the file at ``owner_path`` (sorting first) holds.

    The sync records the same finding when it gives a name to one of two files.
    """
    return _finding(pf, NAME, "PAO040",
                    f"{pf.kind} '{pf.identifier}' is already declared in {owner_path}; "
                    "rename one of them (identifiers are unique)")


def check_catalog(files: Mapping[str, ParsedFile]) -> list[Finding]:
    findings: list[Finding] = []
    for kind in ("item", "bundle"):
        owners = index(files, kind)
        for path in sorted(files):
            pf = files[path]
            if pf.kind != kind or pf.identifier is None:
                continue
            first = owners[pf.identifier]
            if first is not pf:
                findings.append(duplicate_name(pf, first.path))
    items = index(files, "item")
    for path in sorted(files):
        pf = files[path]
        if pf.kind == "bundle" and pf.document is not None:
            findings += guarded(pf.path, "checking the references of",
                                lambda pf=pf: _check_bundle(pf, items))
    return findings


def _check_bundle(pf: ParsedFile, items: dict[str, ParsedFile]) -> list[Finding]:
    """A bundle's references, at most ``spec.MAX_FINDINGS_PER_FILE`` findings and a count
    of the rest (a suggestion costs a comparison with every item: 5,000 unknown
    references in a catalog of 1,000 items took 18 s)."""
    rep = Reporter(pf.path, pf.loaded)
    section = pf.document.get("bundle") if pf.document else None
    if not isinstance(section, dict):
        return []
    for group in ("required_items", "optional_items"):
        entries = section.get(group)
        if not isinstance(entries, list):
            continue
        for i, entry in enumerate(entries):
            if not isinstance(entry, dict) or not isinstance(entry.get("catalog_item"), str):
                continue
            where = ("bundle", group, i)
            ref = entry["catalog_item"]
            target = items.get(ref)
            if target is None and rep.full:
                rep.drop("PAO041")
            elif target is None:
                rep.add((*where, "catalog_item"), "PAO041",
                        f"no catalog item named '{ref}'{did_you_mean(ref, items)}; add the item "
                        "or fix the reference")
            else:
                for f in _check_reference(pf, where, entry, target):
                    rep.keep(f)
    return rep.close()


def _check_reference(pf: ParsedFile, where: tuple[str | int, ...], entry: dict,
                     target: ParsedFile) -> list[Finding]:
    findings: list[Finding] = []
    constraint_text = entry.get("version")
    if isinstance(constraint_text, str) and target.version:
        try:
            constraint = Constraint.parse(constraint_text)
            current = Version.parse(target.version)
        except ValueError:
            pass  # reported per file (PAO043 / PAO014)
        else:
            if not constraint.allows(current):
                findings.append(_finding(
                    pf, (*where, "version"), "PAO042",
                    f"'{target.identifier}' is at version {current} ({target.path}), which "
                    f"'{constraint_text}' excludes; change the constraint or the item's version"))
    params = entry.get("parameters")
    if isinstance(params, dict) and target.document is not None:
        fields = (target.document.get("presentation") or {}).get("fields") \
            if isinstance(target.document.get("presentation"), dict) else None
        names = {f.get("name") for f in fields or [] if isinstance(f, dict)}
        for key in params:
            if key not in names:
                hint = did_you_mean(key, sorted(n for n in names if isinstance(n, str)))
                findings.append(_finding(
                    pf, (*where, "parameters", key), "PAO044",
                    f"'{target.identifier}' has no field '{key}'{hint}; parameters set the "
                    "item's own fields", key=True))
    return findings


def check_versions(files: Mapping[str, ParsedFile], base: Mapping[str, ParsedFile]) -> list[Finding]:
    """A changed item or bundle must raise its version above the base; lower is an error."""
    findings: list[Finding] = []
    for kind in ("item", "bundle"):
        before = index(base, kind)
        for path in sorted(files):
            pf = files[path]
            if pf.kind != kind or pf.identifier is None or pf.document is None:
                continue
            old = before.get(pf.identifier)
            # The same file at base and head (a PR's unchanged files) has nothing to compare.
            if old is not None and old is not pf:
                findings += guarded(pf.path, "comparing the version of",
                                    lambda pf=pf, old=old: _check_version(pf, old))
    return findings


def _check_version(pf: ParsedFile, old: ParsedFile) -> list[Finding]:
    if old.document is None or not old.version or not pf.version:
        return []
    try:
        new_v, old_v = Version.parse(pf.version), Version.parse(old.version)
    except ValueError:
        return []
    if new_v < old_v:
        return [_finding(
            pf, ("version",), "PAO051",
            f"version {new_v} is lower than {old_v} on the base; versions only go up "
            f"(use {old_v.bump_patch()} or higher)")]
    if new_v == old_v and pf.document != old.document:
        return [_finding(
            pf, ("version",), "PAO050",
            f"'{pf.identifier}' changed but its version is still {old_v}; bump it "
            f"(e.g. {old_v.bump_patch()} for a fix, a minor or major bump for new or "
            "breaking fields)")]
    return []
