"""Pure rules: OneDev project names and ownership marks, ref maps and their digests, the refs
OneDev's receive hook cannot take, timeouts and disk needs."""

from __future__ import annotations

import hashlib
import json
import re

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


def suffixed(name: str, github_repo_id: int) -> str:
    """The second choice of name when ``name`` holds another repository's mirror: the same
    for every attempt (so a retry finds its own project), distinct per GitHub repository."""
    return f"{name}-{github_repo_id}"


def description(full_name: str, github_repo_id: int) -> str:
    """The description PAO gives the projects it creates: it names the GitHub repository by
    id, so PAO recognises its own project even when the database forgot it."""
    return f"Synced from GitHub: {full_name} (repository id {github_repo_id})"


_MARK = re.compile(r"^Synced from GitHub: (?P<name>\S+)(?: \(repository id (?P<id>\d+)\))?$")


def described_owner(text: object) -> int | str | None:
    """Whose mirror a project's description says it is: a GitHub repository id, the full
    name (older descriptions carry no id), or None when PAO did not create it."""
    m = _MARK.match(text) if isinstance(text, str) else None
    if m is None:
        return None
    return int(m["id"]) if m["id"] else m["name"]


# OneDev's receive hook forwards ref names un-encoded in a form body: one of these
# characters in a ref name makes OneDev refuse the whole push.
_HOOK_UNSAFE = re.compile(r"[+&=%]")


def hook_unsafe(ref: str) -> bool:
    """True for a ref OneDev may refuse; such refs are pushed one by one."""
    return bool(_HOOK_UNSAFE.search(ref))


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
