"""Evaluating a pull request from a real git repository, and the check-run output it yields."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from app.catalog.parse import Finding
from app.checks import output
from app.checks.evaluate import Evaluation
from app.checks.task import evaluate_commits, repository_name
from app.git.catalog import RepoCache

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "catalog"
ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
       "GIT_COMMITTER_EMAIL": "t@example.com", "PATH": "/usr/bin:/bin:/usr/local/bin"}


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True,
                          env={**ENV, "HOME": str(cwd)}).stdout.strip()


@pytest.fixture
def origin(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    shutil.copytree(EXAMPLES, work / "catalog")
    (work / "README.md").write_text("catalog\n")
    git(work, "init", "-q", "-b", "main")
    git(work, "add", "-A")
    git(work, "commit", "-qm", "catalog")
    return work


def edit(work: Path, path: str, old: str, new: str) -> None:
    p = work / path
    text = p.read_text()
    assert old in text
    p.write_text(text.replace(old, new))


def open_pr(work: Path, number: int = 1) -> str:
    """Commit the working tree on a branch and publish it as refs/pull/N/head, like GitHub."""
    git(work, "checkout", "-q", "-B", f"pr{number}")
    git(work, "add", "-A")
    git(work, "commit", "-qm", "change", "--allow-empty")
    sha = git(work, "rev-parse", "HEAD")
    git(work, "update-ref", f"refs/pull/{number}/head", sha)
    git(work, "checkout", "-q", "main")
    return sha


async def check(tmp_path: Path, work: Path, head: str, number: int = 1) -> Evaluation:
    cache = RepoCache(tmp_path / "cache.git", str(work), None)
    await cache.ensure()
    await cache.fetch_pull(number, "main", None, head)
    base = await cache.merge_base(f"refs/pao/base/{number}", head)
    return await evaluate_commits(cache, base, head)


async def test_two_broken_files_are_reported_at_their_lines(tmp_path: Path, origin: Path) -> None:
    edit(origin, "catalog/databases/mysql-database.yaml", "{{ instance_size }}", "{{ instance_sise }}")
    edit(origin, "catalog/databases/mysql-database.yaml", '"1.0.0"', '"1.0.1"')
    edit(origin, "catalog/caching/redis-cache.yaml", "max_value: 5", "max_value: 6")  # no bump
    edit(origin, "README.md", "catalog", "docs")  # outside catalog/: ignored
    ev = await check(tmp_path, origin, open_pr(origin))
    assert ev.reported == ["catalog/caching/redis-cache.yaml", "catalog/databases/mysql-database.yaml"]
    got = [(f.path, f.line, f.col, f.code) for f in ev.all_findings]
    assert got == [("catalog/caching/redis-cache.yaml", 3, 10, "PAO050"),
                   ("catalog/databases/mysql-database.yaml", 35, 29, "PAO031")]
    assert output.conclusion(ev) == "failure"
    assert output.title(ev) == "2 errors, 0 warnings in 2 of 2 files"
    [body] = output.completion_requests(ev, head_sha="abc", completed_at="2026-01-01T00:00:00Z")
    assert body["conclusion"] == "failure" and body["status"] == "completed"
    assert [(a["path"], a["start_line"], a["start_column"], a["annotation_level"], a["title"])
            for a in body["output"]["annotations"]] == [
        ("catalog/caching/redis-cache.yaml", 3, 10, "failure", "PAO050"),
        ("catalog/databases/mysql-database.yaml", 35, 29, "failure", "PAO031")]
    assert "| `catalog/caching/redis-cache.yaml` (item) | ❌ | 1 | 0 | 0 |" in body["output"]["summary"]


async def test_no_catalog_change_is_neutral(tmp_path: Path, origin: Path) -> None:
    edit(origin, "README.md", "catalog", "docs")
    ev = await check(tmp_path, origin, open_pr(origin))
    assert not ev.has_changes
    assert output.conclusion(ev) == "neutral" and output.title(ev) == "No catalog changes"


async def test_removing_an_item_breaks_the_unchanged_bundle(tmp_path: Path, origin: Path) -> None:
    (origin / "catalog/caching/redis-cache.yaml").unlink()
    ev = await check(tmp_path, origin, open_pr(origin))
    assert ev.deleted == ["catalog/caching/redis-cache.yaml"]
    assert [(f.path, f.line, f.code) for f in ev.all_findings] == [
        ("catalog/bundles/full-stack-web-app.yaml", 16, "PAO041")]


async def test_rename_keeps_version_rule_and_fork_refs(tmp_path: Path, origin: Path) -> None:
    (origin / "catalog/cache").mkdir()
    (origin / "catalog/caching/redis-cache.yaml").rename(origin / "catalog/cache/redis-cache.yaml")
    ev = await check(tmp_path, origin, open_pr(origin, 7), 7)
    assert ev.reported == ["catalog/cache/redis-cache.yaml"] and ev.all_findings == []
    assert output.conclusion(ev) == "success"


def finding(i: int, severity: str = "error") -> Finding:
    return Finding("catalog/x/a.yaml", i + 1, 1, "PAO031", severity, "m" * 50)


def big(n: int) -> Evaluation:
    from app.catalog.parse import ParsedFile

    pf = ParsedFile("catalog/x/a.yaml", "item", "a", {}, [])
    return Evaluation(["catalog/x/a.yaml"], [], {"catalog/x/a.yaml": pf},
                      {"catalog/x/a.yaml": [finding(i, "warning" if i % 2 else "error") for i in range(n)]})


def test_annotations_go_50_per_request_and_stop_at_the_cap() -> None:
    bodies = output.completion_requests(big(120), completed_at="t")
    assert [len(b["output"].get("annotations", [])) for b in bodies] == [50, 50, 20]
    assert "conclusion" not in bodies[0] and bodies[-1]["conclusion"] == "failure"
    bodies = output.completion_requests(big(output.MAX_ANNOTATIONS + 30), completed_at="t")
    assert sum(len(b["output"]["annotations"]) for b in bodies) == output.MAX_ANNOTATIONS
    assert "30 findings beyond the first" in bodies[0]["output"]["summary"]
    # Errors are kept first when truncating.
    levels = [a["annotation_level"] for b in bodies for a in b["output"]["annotations"]]
    assert levels.count("failure") == (output.MAX_ANNOTATIONS + 30 + 1) // 2


def test_summary_stays_within_githubs_limit() -> None:
    text = output.summary(big(5000))
    assert len(text) <= output.TEXT_LIMIT and text.endswith("run `pao-cli validate` locally.")


def test_summary_stays_within_githubs_limit_in_bytes() -> None:
    # GitHub counts the summary in bytes ("summary exceeds a maximum bytesize of 65535"):
    # non-ASCII messages and the table's marks take several bytes a character.
    from app.catalog.parse import ParsedFile

    paths = [f"catalog/x/é{i}.yaml" for i in range(2000)]
    files = {p: ParsedFile(p, "item", None, {}, []) for p in paths}
    findings = {p: [Finding(p, 1, 1, "PAO031", "error", "modèle « inconnu » — " * 3)] for p in paths}
    ev = Evaluation(paths, [], files, findings)
    for text in (output.summary(ev), output.summary(big(5000))):
        assert len(text.encode("utf-8")) <= output.TEXT_LIMIT
    many = {p: [Finding(p, i + 1, 1, "PAO031", "error", "é" * 60) for i in range(2000)]
            for p in paths[:1]}
    text = output.summary(Evaluation(paths[:1], [], files, many))
    assert len(text.encode("utf-8")) <= output.TEXT_LIMIT
    assert text.endswith("run `pao-cli validate` locally.")


@pytest.mark.parametrize(("url", "name"), [
    ("https://github.com/Org/pao-repository.git", "org/pao-repository"),
    ("http://127.0.0.1:9/org/catalog", "org/catalog"),
    ("/srv/git/org/catalog.git", "org/catalog"),
    ("catalog", None),
])
def test_repository_name(url: str, name: str | None) -> None:
    assert repository_name(url) == name


async def test_a_small_parse_cache_only_costs_time(tmp_path: Path, origin: Path, monkeypatch) -> None:
    from app.checks import task
    from app.checks.evaluate import ParseCache

    monkeypatch.setattr(task, "_cache", ParseCache(size=2))  # evicts while the run works
    edit(origin, "catalog/caching/redis-cache.yaml", "max_value: 5", "max_value: 6")
    ev = await check(tmp_path, origin, open_pr(origin))
    assert [(f.path, f.code) for f in ev.all_findings] == [("catalog/caching/redis-cache.yaml", "PAO050")]
