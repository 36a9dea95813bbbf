"""The sync engine against real git repositories and a real PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.git.catalog import GitCache
from app.sync.engine import sync_repository
from app.sync.source import CatalogSource, catalog_source
from tests.conftest import with_settings
from tests.sync_helpers import CatalogRepo, item_yaml


class CountingCache(GitCache):
    """A GitCache that remembers which blobs each sync asked for."""

    read: list[str]

    async def read_blobs(self, oids):  # type: ignore[override]
        oids = list(oids)
        self.read = getattr(self, "read", []) + oids
        return await super().read_blobs(oids)


@pytest.fixture
def repo(tmp_path: Path) -> CatalogRepo:
    return CatalogRepo(tmp_path / "repo")


@pytest.fixture
def source(settings, repo) -> CatalogSource:
    s = catalog_source(with_settings(settings, repo_url=repo.url))
    assert s is not None
    return s


@pytest.fixture
def cache(settings, source) -> CountingCache:
    return CountingCache(source, source.cache_dir(settings.data_dir))


async def sync(pool, source, cache, **kw):
    cache.read = []
    return await sync_repository(pool, source, cache, None, **kw)


async def items(pool):
    rows = await pool.fetch(
        "SELECT name, version, is_active, source_file_path FROM catalog_items ORDER BY name")
    return {r["name"]: (r["version"], r["is_active"], r["source_file_path"]) for r in rows}


async def test_seed_000_story_full_load_then_incremental_then_soft_delete(pool, repo, source, cache):
    assert await items(pool) == {}
    repo.write("README.md", "catalog\n")
    repo.write("catalog/databases/postgres-database.yaml", item_yaml("postgres-database"))
    repo.write("catalog/databases/mysql-database.yaml", item_yaml("mysql-database"))
    repo.write("catalog/compute/eks-container-app.yaml", item_yaml("eks-container-app"))
    first = repo.commit_push("first")

    r1 = await sync(pool, source, cache)
    assert (r1.mode, r1.status, r1.from_sha, r1.to_sha) == ("full", "completed", None, first)
    assert (r1.files_changed, r1.counts["items_added"]) == (3, 3)
    assert set(await items(pool)) == {"postgres-database", "mysql-database", "eks-container-app"}
    row = await pool.fetchrow("SELECT * FROM catalog_items WHERE name = 'mysql-database'")
    assert row["category"] == "databases" and row["last_seen_sha"] == first
    assert row["source_file_hash"].startswith("sha256:") and row["tags"] == ["database"]

    repo.write("catalog/storage/s3-bucket.yaml", item_yaml("s3-bucket"))
    repo.write("catalog/databases/postgres-database.yaml", item_yaml("postgres-database", "1.1.0"))
    second = repo.commit_push("second")
    r2 = await sync(pool, source, cache)
    assert (r2.mode, r2.from_sha, r2.to_sha, r2.files_changed) == ("incremental", first, second, 2)
    assert (r2.counts["items_added"], r2.counts["items_updated"]) == (1, 1)
    assert len(cache.read) == 2  # only the two changed blobs were read
    assert (await items(pool))["postgres-database"][0] == "1.1.0"

    repo.remove("catalog/databases/mysql-database.yaml")
    third = repo.commit_push("third")
    r3 = await sync(pool, source, cache)
    assert (r3.files_changed, r3.counts["items_removed"], r3.to_sha) == (1, 1, third)
    assert (await items(pool))["mysql-database"][1] is False

    runs = await pool.fetch("SELECT * FROM catalog_sync_runs ORDER BY id")
    assert [r["status"] for r in runs] == ["completed"] * 3
    assert [r["to_sha"] for r in runs] == [first, second, third]
    assert all(r["completed_at"] is not None and r["triggered_by"] == "manual" for r in runs)
    state = await pool.fetchrow("SELECT * FROM catalog_sync_state")
    assert state["last_processed_sha"] == third and state["last_run_id"] == runs[-1]["id"]

    # Nothing new: a no-op run that reads nothing.
    r4 = await sync(pool, source, cache)
    assert (r4.mode, r4.files_changed, cache.read) == ("noop", 0, [])


async def test_unchanged_content_is_not_rewritten(pool, repo, source, cache):
    repo.write("catalog/a/one.yaml", item_yaml("one"))
    repo.commit_push("one")
    await sync(pool, source, cache)
    before = await pool.fetchval("SELECT updated_at FROM catalog_items WHERE name = 'one'")
    repo.write("catalog/a/two.yaml", item_yaml("two"))
    repo.commit_push("two")
    # A forced full reconcile reads only blobs it has not seen.
    r = await sync(pool, source, cache, full=True)
    assert r.mode == "reconcile" and len(cache.read) == 1
    assert await pool.fetchval("SELECT updated_at FROM catalog_items WHERE name = 'one'") == before


async def test_force_push_reconciles_against_head(pool, repo, source, cache):
    repo.write("catalog/a/keep.yaml", item_yaml("keep"))
    base = repo.commit_push("base")
    repo.write("catalog/a/doomed.yaml", item_yaml("doomed"))
    repo.commit_push("soon rewritten")
    await sync(pool, source, cache)
    assert (await items(pool))["doomed"][1] is True

    repo.reset_hard(base)
    repo.write("catalog/a/fresh.yaml", item_yaml("fresh"))
    repo.commit("rewritten history")
    head = repo.push(force=True)
    r = await sync(pool, source, cache)
    assert (r.mode, r.to_sha) == ("reconcile", head)
    now = await items(pool)
    assert now["doomed"][1] is False and now["fresh"][1] is True and now["keep"][1] is True
    assert r.counts["items_added"] == 1 and r.counts["items_removed"] == 1


async def test_rename_keeps_the_same_item_at_its_new_path(pool, repo, source, cache):
    repo.write("catalog/databases/redis-cache.yaml", item_yaml("redis-cache"))
    repo.commit_push("add")
    await sync(pool, source, cache)
    item_id = await pool.fetchval("SELECT id FROM catalog_items WHERE name = 'redis-cache'")
    repo.move("catalog/databases/redis-cache.yaml", "catalog/caches/redis-cache.yaml")
    repo.commit_push("move")
    r = await sync(pool, source, cache)
    assert r.files_changed == 1 and r.counts["items_updated"] == 1 and r.counts["items_removed"] == 0
    row = await pool.fetchrow("SELECT * FROM catalog_items WHERE name = 'redis-cache'")
    assert row["id"] == item_id and row["is_active"]
    assert (row["source_file_path"], row["category"]) == ("catalog/caches/redis-cache.yaml", "caches")


async def test_broken_yaml_in_one_file_keeps_previous_version_and_syncs_the_rest(pool, repo, source, cache):
    for name in ("alpha", "beta", "gamma"):
        repo.write(f"catalog/x/{name}.yaml", item_yaml(name))
    repo.commit_push("three")
    await sync(pool, source, cache)

    repo.write("catalog/x/beta.yaml", 'name: "beta"\nversion: "2.0.0"\ntags: [unclosed\n')
    repo.write("catalog/x/gamma.yaml", item_yaml("gamma", "2.0.0"))
    repo.write("catalog/x/delta.yaml", "- just\n- a list\n")
    repo.commit_push("one broken")
    r = await sync(pool, source, cache)
    assert r.status == "completed_with_errors"
    now = await items(pool)
    assert now["beta"][:2] == ("1.0.0", True)  # previous active version kept
    assert now["gamma"][0] == "2.0.0" and "delta" not in now
    errors = await pool.fetch("SELECT * FROM catalog_sync_errors WHERE run_id = $1 ORDER BY path", r.run_id)
    assert [e["path"] for e in errors] == ["catalog/x/beta.yaml", "catalog/x/delta.yaml"]
    assert errors[0]["line"] >= 3 and "YAML" in errors[0]["message"]

    repo.write("catalog/x/beta.yaml", item_yaml("beta", "2.0.1"))
    repo.commit_push("fixed")
    r = await sync(pool, source, cache)
    assert r.status == "completed" and (await items(pool))["beta"][0] == "2.0.1"


async def test_two_files_with_one_name_the_later_path_is_the_error(pool, repo, source, cache):
    repo.write("catalog/a/first.yaml", item_yaml("shared", "1.0.0"))
    repo.write("catalog/b/second.yaml", item_yaml("shared", "9.0.0"))
    repo.commit_push("dupes")
    r = await sync(pool, source, cache)
    assert r.status == "completed_with_errors"
    assert [(e.path, e.code, e.line, e.col) for e in r.errors] == [("catalog/b/second.yaml", "PAO040", 1, 7)]
    assert (await items(pool))["shared"] == ("1.0.0", True, "catalog/a/first.yaml")

    # When the holder goes, the other declaration takes the name over.
    repo.remove("catalog/a/first.yaml")
    repo.commit_push("holder removed")
    r = await sync(pool, source, cache)
    assert r.status == "completed"
    assert (await items(pool))["shared"] == ("9.0.0", True, "catalog/b/second.yaml")


async def test_bundle_with_a_title_syncs_under_its_file_name(pool, repo, source, cache):
    repo.write("catalog/bundles/full-stack-web-app.yaml", '''\
        name: "Full Stack Web Application"
        version: "2.1.0"
        description: "Complete web application stack with database and monitoring"
        owner: "platform-solutions-team"
        tags: ["web-app", "full-stack", "solution"]
        bundle:
          required_items:
            - catalog_item: "eks-container-app"
              version: ">=1.2.0"
        ''')
    repo.commit_push("bundle")
    r = await sync(pool, source, cache)
    assert r.counts["bundles_added"] == 1 and r.counts["items_added"] == 0
    row = await pool.fetchrow("SELECT * FROM catalog_bundles")
    assert (row["name"], row["display_name"]) == ("full-stack-web-app", "Full Stack Web Application")
    assert row["bundle_definition"]["required_items"][0]["catalog_item"] == "eks-container-app"


async def test_a_deeply_nested_file_is_an_error_and_the_others_sync(pool, repo, source, cache):
    repo.write("catalog/x/alpha.yaml", item_yaml("alpha"))
    # Nested beyond Python's recursion limit: parsing raised, and the whole sync failed with it.
    repo.write("catalog/x/deep.yaml", "name: deep\nextra: " + "[" * 600 + "]" * 600 + "\n")
    repo.commit_push("deep")
    r = await sync(pool, source, cache)
    assert r.status == "completed_with_errors" and r.counts["items_added"] == 1
    [error] = await pool.fetch("SELECT * FROM catalog_sync_errors WHERE run_id = $1", r.run_id)
    assert error["path"] == "catalog/x/deep.yaml" and "nest" in error["message"]


def test_a_file_nested_fifty_thousand_deep_does_not_crash_the_process():
    # libyaml's composer recursed until the C stack overflowed: a segfault that took the
    # worker (and `pao serve` with it) down on every retry. Run it apart, so a crash fails one test.
    import subprocess
    import sys

    code = ("from app.catalog.parse import parse_catalog_file\n"
            "p = parse_catalog_file('catalog/x/deep.yaml', b'a: ' + b'[' * 50000 + b']' * 50000)\n"
            "print(p.ok, p.findings[0].code, p.findings[0].message)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parent.parent,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-500:]
    assert out.stdout.startswith("False PAO005") and "nest" in out.stdout


async def test_a_file_the_validator_cannot_finish_is_its_own_error(pool, repo, source, cache, monkeypatch):
    # A RecursionError escaped the validator and failed the sync job on every retry.
    from app.catalog import templates

    original = templates.analyze

    def blow_up_on_one_template(text: str) -> templates.TemplateInfo:
        if "poison" in text:
            raise RecursionError("maximum recursion depth exceeded")
        return original(text)

    monkeypatch.setattr(templates, "analyze", blow_up_on_one_template)
    repo.write("catalog/x/alpha.yaml", item_yaml("alpha"))
    repo.write("catalog/x/beta.yaml", item_yaml("beta").replace("Create {{ n }}", "{{ n }} poison"))
    chained = "{{ n" + ".b" * 3000 + " + 1 }}"  # the real one: Jinja2's find_all recursed
    repo.write("catalog/x/gamma.yaml", item_yaml("gamma").replace("Create {{ n }}", chained))
    repo.commit_push("one file the validator cannot finish")
    r = await sync(pool, source, cache)
    assert r.status == "completed_with_errors"
    assert set(await items(pool)) == {"alpha", "gamma"}
    [error] = await pool.fetch("SELECT * FROM catalog_sync_errors WHERE run_id = $1", r.run_id)
    assert (error["path"], error["code"], error["line"], error["col"]) == (
        "catalog/x/beta.yaml", "PAO099", 1, 1)


async def test_text_postgres_cannot_store_is_an_error_for_that_file_only(pool, repo, source, cache):
    repo.write("catalog/x/alpha.yaml", item_yaml("alpha"))
    # YAML's "\0" escape is a NUL character, which PostgreSQL text and jsonb cannot hold:
    # the insert failed, and with it every sync while the file stayed in the catalog.
    repo.write("catalog/x/beta.yaml", item_yaml("beta").replace('"beta service"', '"be\\0ta"'))
    # An unknown key's finding quotes the key, NUL and all.
    repo.write("catalog/x/gamma.yaml", item_yaml("gamma") + '"k\\0": 1\n')
    repo.commit_push("nul")
    r = await sync(pool, source, cache)
    assert r.status == "completed_with_errors"
    assert set(await items(pool)) == {"alpha"}
    errors = await pool.fetch("SELECT path, message FROM catalog_sync_errors WHERE run_id = $1", r.run_id)
    assert {e["path"] for e in errors} == {"catalog/x/beta.yaml", "catalog/x/gamma.yaml"}
    assert any("NUL" in e["message"] for e in errors if e["path"] == "catalog/x/beta.yaml")


async def test_a_file_name_that_is_not_utf8_is_an_error_and_the_others_sync(pool, repo, source, cache):
    import os

    repo.write("catalog/x/alpha.yaml", item_yaml("alpha"))
    (repo.work / "catalog" / "x").mkdir(parents=True, exist_ok=True)
    # git allows any bytes in a path; PostgreSQL text does not take them, so the sync failed.
    with open(os.fsencode(repo.work / "catalog" / "x") + b"/b\xffd.yaml", "wb") as f:
        f.write(item_yaml("bad").encode())
    repo.commit_push("odd name")
    r = await sync(pool, source, cache)
    assert r.status == "completed_with_errors" and set(await items(pool)) == {"alpha"}
    [error] = await pool.fetch("SELECT * FROM catalog_sync_errors WHERE run_id = $1", r.run_id)
    assert error["path"] == "catalog/x/b\\udcffd.yaml"
    # The code and message pao-cli validate gives the same file.
    assert (error["code"], error["line"], error["col"], error["message"]) == (
        "PAO001", 1, 1, "the file name is not UTF-8; rename it")
    r = await sync(pool, source, cache)  # the next sync is not stuck either
    assert r.mode == "noop"


async def test_values_past_what_postgresql_indexes_are_errors_of_their_file(pool, repo, source, cache):
    import random
    import string

    # An owner of 4,000 random letters exceeded the btree entry limit of the owner index,
    # and a long path the catalog_files key: the insert failed, and the sync with it.
    rng = random.Random(1)
    owner = "".join(rng.choice(string.ascii_letters) for _ in range(4000))
    repo.write("catalog/x/alpha.yaml", item_yaml("alpha"))
    repo.write("catalog/x/beta.yaml", item_yaml("beta", owner=owner))
    long_path = "catalog/" + "/".join(["d" * 200] * 6) + "/gamma.yaml"
    repo.write(long_path, item_yaml("gamma"))
    repo.commit_push("too long to index")
    r = await sync(pool, source, cache)
    assert r.status == "completed_with_errors" and set(await items(pool)) == {"alpha"}
    errors = {e.path: (e.code, e.line, e.col) for e in r.errors}
    assert errors == {"catalog/x/beta.yaml": ("PAO027", 4, 8), long_path: ("PAO027", 1, 1)}


async def test_pointing_pao_at_another_repository_or_branch_serves_only_that_catalog(
        pool, settings, tmp_path, repo, source, cache):
    # Say, the first-run example catalog, then the team's own repository, then back.
    repo.write("catalog/x/example.yaml", item_yaml("example"))
    repo.write("catalog/x/shared.yaml", item_yaml("shared", "1.0.0"))
    repo.commit_push("example catalog")
    await sync(pool, source, cache)

    own = CatalogRepo(tmp_path / "own")
    own.write("catalog/y/ours.yaml", item_yaml("ours"))
    own.write("catalog/y/shared.yaml", item_yaml("shared", "2.0.0"))
    own.commit_push("our catalog")
    own_source = catalog_source(with_settings(settings, repo_url=own.url))
    r = await sync(pool, own_source, CountingCache(own_source, own_source.cache_dir(settings.data_dir)))
    assert r.mode == "full"
    assert {n: v[:2] for n, v in (await items(pool)).items()} == {
        "example": ("1.0.0", False), "ours": ("1.0.0", True), "shared": ("2.0.0", True)}

    await sync(pool, source, cache)  # and back: the first catalog again, not a mix
    assert {n: v[:2] for n, v in (await items(pool)).items()} == {
        "example": ("1.0.0", True), "ours": ("1.0.0", False), "shared": ("1.0.0", True)}

    # Another branch of the same repository, then back to the first.
    repo.write("catalog/x/branch-only.yaml", item_yaml("branch-only"))
    repo.remove("catalog/x/example.yaml")
    repo.commit("a branch")
    repo.push(branch="next")
    next_source = catalog_source(with_settings(settings, repo_url=repo.url, repo_branch="next"))
    await sync(pool, next_source, GitCache(next_source, next_source.cache_dir(settings.data_dir)))
    assert {n for n, v in (await items(pool)).items() if v[1]} == {"branch-only", "shared"}
    await sync(pool, source, cache)
    assert {n for n, v in (await items(pool)).items() if v[1]} == {"example", "shared"}


async def test_a_file_renamed_and_broken_in_one_commit_keeps_the_previous_version(pool, repo, source, cache):
    text = item_yaml("redis-cache") + "".join(f"# note {i}\n" for i in range(20))  # still a rename
    repo.write("catalog/databases/redis-cache.yaml", text)
    repo.commit_push("add")
    await sync(pool, source, cache)
    repo.move("catalog/databases/redis-cache.yaml", "catalog/caches/redis-cache.yaml")
    repo.write("catalog/caches/redis-cache.yaml", text.replace('version: "1.0.0"', 'version: [1.1'))
    repo.commit_push("move, with a typo")
    r = await sync(pool, source, cache)
    assert r.status == "completed_with_errors" and r.files_changed == 1
    assert (await items(pool))["redis-cache"][:2] == ("1.0.0", True)  # not removed

    repo.write("catalog/caches/redis-cache.yaml", text.replace("1.0.0", "1.1.0"))
    repo.commit_push("fixed")
    await sync(pool, source, cache)
    assert (await items(pool))["redis-cache"] == ("1.1.0", True, "catalog/caches/redis-cache.yaml")


async def test_a_ref_lock_left_by_a_killed_git_does_not_block_later_syncs(pool, repo, source, cache):
    repo.write("catalog/a/one.yaml", item_yaml("one"))
    repo.commit_push("one")
    await sync(pool, source, cache)
    # git killed with its worker while updating the branch's ref leaves the lock behind;
    # every later fetch failed with "cannot lock ref", and the catalog never synced again.
    lock = cache.path / (cache.tracking_ref + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.write_text("")  # fresh: the retry comes seconds after the kill, and must not wait
    repo.write("catalog/a/two.yaml", item_yaml("two"))
    head = repo.commit_push("two")
    r = await sync(pool, source, cache)
    assert (r.to_sha, r.counts["items_added"]) == (head, 1)


async def test_a_number_json_cannot_hold_is_an_error_for_that_file_only(pool, repo, source, cache):
    repo.write("catalog/x/alpha.yaml", item_yaml("alpha"))
    # Valid YAML and a valid catalog item, but beyond 64 bits: encoding the document for
    # jsonb raised, and every sync failed while the file stayed in the catalog.
    repo.write("catalog/x/big.yaml", item_yaml("big").replace(
        'type: "string"', 'type: "integer"\n      default: 123456789012345678901234567890'))
    repo.commit_push("big")
    r = await sync(pool, source, cache)
    assert r.status == "completed_with_errors" and set(await items(pool)) == {"alpha"}
    [error] = await pool.fetch("SELECT path, message FROM catalog_sync_errors WHERE run_id = $1", r.run_id)
    assert error["path"] == "catalog/x/big.yaml" and "64-bit" in error["message"]


async def test_a_sync_pauses_the_garbage_collector_and_always_turns_it_back_on(
        pool, repo, source, cache):
    import gc

    class Watching(CountingCache):
        collector_on_while_reading: bool | None = None

        async def read_blobs(self, oids):  # type: ignore[override]
            self.collector_on_while_reading = gc.isenabled()
            return await super().read_blobs(oids)

    watching = Watching(source, cache.path)
    repo.write("catalog/a/one.yaml", item_yaml("one"))
    repo.commit_push("one")
    await sync(pool, source, watching)
    assert watching.collector_on_while_reading is False
    assert gc.isenabled()

    class Failing(Watching):
        async def read_blobs(self, oids):  # type: ignore[override]
            raise RuntimeError("disk gone")

    repo.write("catalog/a/two.yaml", item_yaml("two"))
    repo.commit_push("two")
    with pytest.raises(RuntimeError, match="disk gone"):
        await sync(pool, source, Failing(source, cache.path))
    assert gc.isenabled()


async def _catalog_tables(pool) -> dict[str, list[dict]]:
    """Every stored column of the catalog tables but ids and timestamps, in key order."""
    out = {}
    for table, key in (("catalog_items", "name"), ("catalog_bundles", "name"),
                       ("catalog_files", "path")):
        rows = await pool.fetch(f"SELECT * FROM {table} ORDER BY {key}")
        out[table] = [{k: v for k, v in r.items() if k not in ("id", "created_at", "updated_at")}
                      for r in rows]
    return out


async def test_big_writes_through_copy_store_exactly_what_array_writes_store(
        pool, repo, source, cache, monkeypatch):
    from app.sync import parsing, store

    root = Path(__file__).resolve().parent.parent / "examples"
    for path in sorted((root / "catalog").rglob("*.yaml")):  # items and a bundle
        repo.write(str(path.relative_to(root)), path.read_text())
    repo.write("catalog/x/broken.yaml", "name: [unclosed\n")
    repo.write("catalog/x/tabs.yaml", item_yaml("tabs", description="back\\\\slash\\ttab\\nline"))
    repo.write("catalog/x/twin.yaml", item_yaml("redis-cache"))  # a name held twice
    first = repo.commit_push("first")
    seen = []
    # Every write staged through COPY while the files are parsed in processes, chunk by
    # chunk; the same, parsed in one thread; no COPY at all.
    for copy_from, parallel_from in ((0, 5), (0, 10**9), (10**9, 10**9)):
        monkeypatch.setattr(store, "COPY_FROM", copy_from)
        monkeypatch.setattr(parsing, "PARALLEL_FROM", parallel_from)
        monkeypatch.setattr(parsing, "CHUNK_FILES", 2)
        await pool.execute("TRUNCATE catalog_items, catalog_bundles, catalog_files,"
                           " catalog_sync_state")
        await sync(pool, source, cache)
        repo.write("catalog/caching/redis-cache.yaml", item_yaml("redis-cache", "9.0.0"))
        update = repo.commit_push("update")
        await sync(pool, source, cache, full=True)  # existing rows updated on conflict
        tables = await _catalog_tables(pool)
        for rows in tables.values():  # the commits differ between the rounds, not their roles
            for r in rows:
                if "last_seen_sha" in r:
                    r["last_seen_sha"] = {first: "first", update: "update"}[r["last_seen_sha"]]
        seen.append(tables)
        repo.write("catalog/caching/redis-cache.yaml",
                   (root / "catalog/caching/redis-cache.yaml").read_text())
        first = repo.commit_push("back")
    assert seen[0]["catalog_items"] and seen[0]["catalog_bundles"]
    assert {r["last_seen_sha"] for r in seen[0]["catalog_items"]} == {"first", "update"}
    assert any(r["error"] for r in seen[0]["catalog_files"])
    assert any("\t" in r["description"] for r in seen[0]["catalog_items"])
    for other in seen[1:]:
        for table in seen[0]:
            for a, b in zip(seen[0][table], other[table], strict=True):
                assert a == b, {k: (a[k], b[k]) for k in a if a[k] != b[k]}


async def test_a_full_load_leaves_the_planner_statistics_of_the_catalog_it_wrote(
        pool, repo, source, cache):
    """Without them the planner sees empty tables and reads 10,000 files by nested loops
    (a PR check's read took seconds). The document columns, never searched, get none."""
    for i in range(60):
        repo.write(f"catalog/gen/item-{i:03d}.yaml", item_yaml(f"item-{i:03d}"))
    repo.commit_push("sixty items")
    await sync(pool, source, cache)
    sizes = dict(await pool.fetch(
        "SELECT relname, reltuples FROM pg_class WHERE relname IN ('catalog_items', 'catalog_files')"))
    assert sizes == {"catalog_items": 60, "catalog_files": 60}
    stats = {(r["tablename"], r["attname"]) for r in await pool.fetch(
        "SELECT tablename, attname FROM pg_stats WHERE tablename IN ('catalog_items', 'catalog_files')")}
    assert {("catalog_items", "name"), ("catalog_items", "owner"), ("catalog_files", "path")} <= stats
    assert not {a for t, a in stats if a in ("document", "presentation", "fulfillment")}
