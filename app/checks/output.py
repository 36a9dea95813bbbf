"""The check run's conclusion, title, Markdown summary and annotation batches.

GitHub's limits: ``output.summary`` and ``output.text`` hold at most 65,535
bytes of UTF-8 (the docs say characters; the API counts bytes), ``title`` 255 in
practice, and one request carries at most 50 annotations (more are added by
further PATCH requests). Past ``MAX_ANNOTATIONS``
the rest are left out with a note in the summary: a PR with thousands of findings
needs the local ``pao-cli validate``, not thousands of inline comments.
"""

from __future__ import annotations

from typing import Any

from app.catalog.parse import Finding
from app.catalog.report import plural, printable
from app.checks.evaluate import Evaluation

CHECK_NAME = "PAO catalog"
ANNOTATIONS_PER_REQUEST = 50
MAX_ANNOTATIONS = 500
TEXT_LIMIT = 65_535
TITLE_LIMIT = 255
MESSAGE_LIMIT = 4_000  # an annotation message; GitHub allows 64 KB, nobody reads that
LEVELS = {"error": "failure", "warning": "warning", "notice": "notice"}


def conclusion(ev: Evaluation) -> str:
    if not ev.has_changes:
        return "neutral"
    return "failure" if ev.count("error") else "success"


def title(ev: Evaluation) -> str:
    if not ev.has_changes:
        return "No catalog changes"
    errors, warnings = ev.count("error"), ev.count("warning")
    files = len(ev.reported)
    bad = sum(1 for p in ev.reported if any(f.severity == "error" for f in ev.findings.get(p, [])))
    if errors:
        text = (f"{plural(errors, 'error')}, {plural(warnings, 'warning')} in "
                f"{bad} of {plural(files, 'file')}")
    elif warnings:
        text = f"{plural(files, 'file')} valid, {plural(warnings, 'warning')}"
    else:
        text = f"{plural(files, 'catalog file')} valid" if files else "Catalog files removed"
    return text[:TITLE_LIMIT]


def summary(ev: Evaluation, *, omitted: int = 0, head_sha: str = "", limit: int = TEXT_LIMIT) -> str:
    """Markdown: a table of files with counts, then each file's findings, within ``limit``."""
    if not ev.has_changes:
        return "This pull request changes no files under `catalog/`; nothing to validate."
    head = [f"Validated the catalog files this pull request changes"
            f"{f' at `{head_sha[:12]}`' if head_sha else ''}, with the whole catalog as context.", ""]
    head += ["| file | result | errors | warnings | notices |", "|---|---|---|---|---|"]
    for path in ev.reported:
        fs = ev.findings.get(path, [])
        counts = {s: sum(1 for f in fs if f.severity == s) for s in ("error", "warning", "notice")}
        mark = "❌" if counts["error"] else ("⚠️" if counts["warning"] else "✅")
        kind = ev.files[path].kind if path in ev.files else "item"
        head.append(f"| `{_md(path)}` ({kind}) | {mark} | {counts['error']} | {counts['warning']} "
                    f"| {counts['notice']} |")
    for path in ev.deleted:
        head.append(f"| `{_md(path)}` | deleted | | | |")
    tail = []
    if omitted:
        tail = ["", f"> {plural(omitted, 'finding')} beyond the first {MAX_ANNOTATIONS} are not "
                "annotated; run `pao-cli validate` locally to see them all."]
    body: list[str] = []
    for path in ev.reported:
        fs = ev.findings.get(path, [])
        if not fs:
            continue
        body += ["", f"### `{_md(path)}`", ""]
        body += [f"- {f.line}:{f.col} **{f.code}** {f.severity}: {_md(f.message)}" for f in fs]
    return _fit("\n".join(head), body, "\n".join(tail), limit)


def _fit(head: str, body: list[str], tail: str, limit: int) -> str:
    """``head`` (intro and file table) then ``body`` lines, cut at a line with a note when
    they would pass ``limit`` UTF-8 bytes: GitHub counts the summary in bytes."""
    note = "\n\n> Summary truncated to GitHub's size limit; run `pao-cli validate` locally."
    reserve = _size(tail) + _size(note) + 1
    first, *rest = head.split("\n")
    kept, used, cut = [first], _size(first), False
    for line in [*rest, *body]:
        if used + 1 + _size(line) + reserve > limit:
            cut = True
            break
        kept.append(line)
        used += 1 + _size(line)
    text = "\n".join(kept) + (note if cut else "")
    if tail:
        text += "\n" + tail
    return clip(text, limit)


def _size(text: str) -> int:
    return len(text.encode("utf-8"))


def clip(text: str, limit: int) -> str:
    """At most ``limit`` UTF-8 bytes, never splitting a character."""
    data = text.encode("utf-8")
    return text if len(data) <= limit else data[:limit].decode("utf-8", errors="ignore")


def _md(text: str) -> str:
    """User text for one line of the Markdown summary (escaped as every report format is)."""
    return printable(text).replace("|", "\\|")


def annotations(ev: Evaluation, *, max_total: int = MAX_ANNOTATIONS) -> tuple[list[dict[str, Any]], int]:
    """Annotations for every finding (errors first when truncating), and how many were left out."""
    ordered = sorted(ev.all_findings, key=lambda f: (_rank(f), f.sort_key()))
    kept = sorted(ordered[:max_total], key=Finding.sort_key)
    return [annotation(f) for f in kept], max(0, len(ordered) - max_total)


def _rank(f: Finding) -> int:
    return {"error": 0, "warning": 1}.get(f.severity, 2)


def annotation(f: Finding) -> dict[str, Any]:
    return {
        "path": f.path,
        "start_line": f.line,
        "end_line": f.line,
        # Columns are allowed only when the annotation is on one line, which ours are.
        "start_column": f.col,
        "end_column": f.col,
        "annotation_level": LEVELS.get(f.severity, "notice"),
        "title": f.code,
        "message": f.message[:MESSAGE_LIMIT],
    }


def batches(items: list[dict[str, Any]], size: int = ANNOTATIONS_PER_REQUEST) -> list[list[dict[str, Any]]]:
    return [items[i:i + size] for i in range(0, len(items), size)] or [[]]


def completion_requests(ev: Evaluation, *, head_sha: str = "", completed_at: str,
                        already_sent: int = 0) -> list[dict[str, Any]]:
    """The PATCH bodies that finish a check run: annotation batches, the last one completing it.

    ``already_sent``: annotations the run already holds from an earlier attempt (GitHub
    appends each PATCH's annotations, so resending them would show every finding twice).
    """
    notes, omitted = annotations(ev)
    notes = notes[already_sent:]
    out_title, out_summary = title(ev), summary(ev, omitted=omitted, head_sha=head_sha)
    bodies: list[dict[str, Any]] = []
    for batch in batches(notes):
        output: dict[str, Any] = {"title": out_title, "summary": out_summary}
        if batch:
            output["annotations"] = batch
        bodies.append({"output": output})
    bodies[-1].update({"status": "completed", "conclusion": conclusion(ev), "completed_at": completed_at})
    return bodies
