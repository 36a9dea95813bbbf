"""Pure rules: OneDev project names, ref maps and their digests, timeouts and disk needs."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime

# OneDev's project name rule, a Java pattern: there \w is ASCII only, hence re.ASCII.
NAME_RE = re.compile(r"^\w[\w\-.]*$", re.ASCII)
_BAD = re.compile(r"[^\w\-.]+", re.ASCII)


def project_name(template: str, owner: str, repo: str) -> str:
    """The template filled in and sanitised to OneDev's ``\\w[\\w-.]*``."""
    name = _BAD.sub("-", template.format(owner=owner, repo=repo))
    name = re.sub(r"-{2,}", "-", name)
    # The first character must be a word character: drop leading '-' and '.'.
    name = name.lstrip("-.")
    if not name:
        name = "repo"
    # ".git" at the end would make the clone URL ambiguous.
    if name.lower().endswith(".git"):
        name = name[:-4] + "-git"
    assert NAME_RE.match(name), name
    return name


def timestamped(name: str, now: datetime) -> str:
    """``name`` with the date (seed 002) and time appended, for the append_timestamp policy."""
    return f"{name}-{now:%Y%m%d%H%M%S}"


def project_path(parent: str | None, name: str) -> str:
    return f"{parent}/{name}" if parent else name


def mirrored_refs(show_ref_output: str) -> dict[str, str]:
    """``git for-each-ref`` lines ``<sha> <ref>`` -> {ref: sha} for branches and tags only."""
    refs: dict[str, str] = {}
    for line in show_ref_output.splitlines():
        parts = line.strip().split(" ", 1)
        if len(parts) != 2:
            continue
        sha, ref = parts
        if ref.startswith(("refs/heads/", "refs/tags/")):
            refs[ref] = sha
    return refs


def refs_digest(refs: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(refs, sort_keys=True).encode()).hexdigest()


def changed_refs(before: dict[str, str], after: dict[str, str]) -> int:
    """How many refs a push updates, creates or deletes to turn ``before`` into ``after``."""
    keys = set(before) | set(after)
    return sum(1 for k in keys if before.get(k) != after.get(k))


def git_timeout(base: float, size_kb: int) -> float:
    """Per-command timeout: the base, plus the base again per GB of repository."""
    return base * (1 + size_kb / (1024 * 1024))


def disk_needed(size_kb: int) -> int:
    """Bytes to keep free before cloning: twice GitHub's size (packs while indexing) + 64 MB."""
    return 2 * size_kb * 1024 + 64 * 1024 * 1024
