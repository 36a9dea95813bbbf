"""PR checks read unchanged files from the synced catalog in PostgreSQL instead of parsing them.

Real git and PostgreSQL: the catalog is synced, the base branch moves on, a PR
changes files; the check with the synced state gives exactly the findings (and
lines) of a check that parses everything, while parsing only what it must.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from app.checks import task
from app.checks.evaluate import ParseCache
from app.config import Settings
from app.git.catalog import GitCache, RepoCache
from app.sync.engine import sync_repository
from app.sync.source import CatalogSource, catalog_source
from app.sync.store import load_synced_files
from tests.sync_helpers import CatalogRepo, git, item_yaml

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
BUNDLE = "catalog/bundles/full-stack-web-app.yaml"
POSTGRES = "catalog/databases/postgres-database.yaml"
REDIS = "catalog/caching/redis-cache.yaml"


def generated(i: int) -> str:
    return f"catalog/generated/item-{i:02d}.yaml"


async def check(tmp_path: Path, repo: CatalogRepo, head: str, synced: task.SyncedLookup | None,
                monkeypatch: pytest.MonkeyPatch) -> tuple[list[tuple], set[str]]:
    """A first check of PR 1 after a start: its findings and the paths it parsed."""
    monkeypatch.setattr(task, "_cache", ParseCache())  # a cold start
    cache = RepoCache(tmp_path / f"checks-{synced is not None}.git", repo.url, None)
    await cache.ensure()
    await cache.fetch_pull(1, "main", "feature", head)
    base = await cache.merge_base("refs/pao/base/1", head)
    ev = await task.evaluate_commits(cache, base, head, synced)
    parsed = {path for _, path in task._cache._items}
    return [(f.path, f.line, f.col, f.code) for f in ev.all_findings], parsed


async def push_and_sync(tmp_path: Path, pool, repo: CatalogRepo) -> CatalogSource:
    """Commit and push what ``repo`` holds, sync it into PostgreSQL; the catalog's source."""
    repo.commit_push("catalog")
    settings = Settings(repo_url=repo.url, data_dir=tmp_path / "data")
    source = catalog_source(settings)
    assert source is not None
    await sync_repository(pool, source, GitCache(source, source.cache_dir(settings.data_dir)), None)
    return source


def lookup(pool, repository: str) -> task.SyncedLookup:
    async def synced(paths: list[str]):
        return await load_synced_files(pool, repository, paths)
    return synced


async def test_unchanged_files_come_from_the_synced_catalog_with_the_same_findings(
        tmp_path, pool, monkeypatch):
    monkeypatch.setattr(task, "SYNCED_MIN_FILES", 1)
    repo = CatalogRepo(tmp_path / "repo")
    for p in sorted(EXAMPLES.rglob("*.yaml")):
        repo.write(p.relative_to(EXAMPLES).as_posix(), p.read_text())
    for i in range(12):
        repo.write(generated(i), item_yaml(f"item-{i:02d}"))
    source = await push_and_sync(tmp_path, pool, repo)

    # The base moves on after the sync: redis-cache's blob is no longer the synced one.
    redis = (repo.work / REDIS).read_text()
    repo.write(REDIS, redis.replace('version: "1.1.0"', 'version: "1.2.0"'))
    repo.commit_push("redis 1.2.0")
    # The PR removes an item the (unchanged) bundle needs, and edits one without a bump.
    git(repo.work, "checkout", "-q", "-b", "feature")
    repo.remove(POSTGRES)
    repo.write(generated(3), item_yaml("item-03", description="changed, same version"))
    head = repo.commit("feature")
    repo.push(branch="feature")

    parsing_all, parsed_all = await check(tmp_path, repo, head, None, monkeypatch)
    from_db, parsed = await check(tmp_path, repo, head, lookup(pool, source.key), monkeypatch)

    assert from_db == parsing_all
    # The bundle's finding sits on its reference's line, though the bundle came from the database.
    assert (BUNDLE, 13, 21, "PAO041") in from_db
    assert (generated(3), 2, 10, "PAO050") in from_db
    assert len(parsed_all) == 18
    # Parsed: the changed files (both versions; the removed one at base), the file the base
    # changed after the sync, and the bundle the evaluation reports (for its lines); the
    # other 14 came from PostgreSQL.
    assert parsed == {generated(3), POSTGRES, REDIS, BUNDLE}


@pytest.mark.parametrize("broken", [True, False])
async def test_synced_files_leave_out_files_with_errors_and_names_held_elsewhere(
        tmp_path, pool, broken):
    repo = CatalogRepo(tmp_path / "repo")
    repo.write(generated(1), item_yaml("item-01"))
    repo.write(generated(2), item_yaml("item-01") if not broken else "name: [unclosed\n")
    source = await push_and_sync(tmp_path, pool, repo)

    found = await load_synced_files(pool, source.key, [generated(1), generated(2)])

    # item-02.yaml is broken, or claims a name item-01.yaml holds: its row says nothing of it.
    assert list(found) == [generated(1)]
    assert found[generated(1)].identifier == "item-01"
    # An item comes as the outline cross-file rules read: its version and its fields' names.
    assert found[generated(1)].outline == {"version": "1.0.0", "presentation": {"fields": [{"name": "n"}]}}


async def test_a_file_sharing_a_name_with_a_changed_file_is_parsed_whole(tmp_path, pool, monkeypatch):
    """The version rule compares a changed item with the base's holder of its name, whole:
    a copy of an unchanged item under a new path is a duplicate name, not an unbumped change."""
    monkeypatch.setattr(task, "SYNCED_MIN_FILES", 1)
    repo = CatalogRepo(tmp_path / "repo")
    for i in range(6):
        repo.write(generated(i), item_yaml(f"item-{i:02d}"))
    source = await push_and_sync(tmp_path, pool, repo)
    git(repo.work, "checkout", "-q", "-b", "feature")
    repo.write("catalog/zz-copies/item-02.yaml", item_yaml("item-02"))
    head = repo.commit("copy item-02")
    repo.push(branch="feature")

    parsing_all, _ = await check(tmp_path, repo, head, None, monkeypatch)
    from_db, parsed = await check(tmp_path, repo, head, lookup(pool, source.key), monkeypatch)

    assert from_db == parsing_all
    assert [code for *_, code in from_db] == ["PAO040"]
    assert parsed == {"catalog/zz-copies/item-02.yaml", generated(2)}
