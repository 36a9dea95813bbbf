"""Pure parts of the sync: git output parsing, change lists, the planner's rules, repository matching."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from app.catalog.parse import parse_catalog_file
from app.git.parse import RawChange, parse_cat_file_batch, parse_diff_raw, parse_ls_tree
from app.sync.changes import Change, changes_from_diff, changes_from_trees, files_changed
from app.sync.plan import EntryState, FileRecord, content_hash, plan_sync
from app.sync.source import catalog_source, push_matches
from tests.sync_helpers import item_yaml

A, B, C = "a" * 40, "b" * 40, "c" * 40


def test_parse_ls_tree_keeps_regular_file_blobs_only():
    out = (b"100644 blob " + A.encode() + b"\tcatalog/db/x.yaml\0"
           b"100644 blob " + B.encode() + b"\tcatalog/db/notes.md\0"
           b"160000 commit " + C.encode() + b"\tcatalog/sub.yaml\0"
           b"100644 blob " + C.encode() + b"\tcatalog/y.yml\0")
    assert parse_ls_tree(out) == {"catalog/db/x.yaml": A, "catalog/db/notes.md": B,
                                  "catalog/y.yml": C}


def test_parse_diff_raw_with_renames():
    out = (f":100644 100644 {A} {B} M\0catalog/m.yaml\0"
           f":000000 100644 {'0' * 40} {C} A\0catalog/new.yaml\0"
           f":100644 000000 {A} {'0' * 40} D\0catalog/gone.yaml\0"
           f":100644 100644 {A} {A} R100\0catalog/old.yaml\0catalog/moved.yaml\0").encode()
    assert parse_diff_raw(out) == [
        RawChange("M", "catalog/m.yaml", None, B, A),
        RawChange("A", "catalog/new.yaml", None, C, None),
        RawChange("D", "catalog/gone.yaml", None, None, A),
        RawChange("R", "catalog/moved.yaml", "catalog/old.yaml", A, A),
    ]


def test_renames_across_the_catalog_boundary_become_adds_or_drops():
    raw = [RawChange("R", "catalog/b.yaml", "catalog/a.yaml", A, A),
           RawChange("R", "catalog/c.txt", "catalog/c.yaml", B, B),
           RawChange("R", "catalog/d.yaml", "drafts/d.yaml", C, C)]
    changes = changes_from_diff(raw)
    assert changes == [Change("catalog/a.yaml", None), Change("catalog/b.yaml", A, "catalog/a.yaml"),
                       Change("catalog/c.yaml", None), Change("catalog/d.yaml", C)]
    assert files_changed(changes) == 3  # the rename counts once


def test_changes_from_trees_skip_unchanged_blobs():
    head = {"catalog/a.yaml": A, "catalog/b.yaml": C, "catalog/new.yaml": B}
    known = {"catalog/a.yaml": A, "catalog/b.yaml": B, "catalog/old.yaml": A}
    assert changes_from_trees(head, known) == [
        Change("catalog/b.yaml", C), Change("catalog/new.yaml", B), Change("catalog/old.yaml", None)]


def test_cat_file_batch_output_with_missing_objects():
    data = f"{A} blob 5\nhello\n{B} missing\n{C} blob 0\n\n".encode()
    assert parse_cat_file_batch(data) == {A: b"hello", C: b""}


def parsed(path: str, text: str):
    data = text.encode()
    return parse_catalog_file(path, data), content_hash(data)


def plan_for(changes, files, before=None, claimants=None, current=None):
    parsed_files, hashes = {}, {}
    for path, text in files.items():
        parsed_files[path], hashes[path] = parsed(path, text)
    return plan_sync(changes, parsed_files, hashes, before or {}, claimants or {}, current or {})


def test_new_files_are_added_and_their_records_written():
    plan = plan_for([Change("catalog/db/x.yaml", A)], {"catalog/db/x.yaml": item_yaml("x")})
    [up] = plan.upserts
    assert (up.kind, up.name, up.change, up.path) == ("item", "x", "added", "catalog/db/x.yaml")
    assert up.row()["category"] == "db" and up.row()["tags"] == ["database"]
    assert plan.file_upserts == [FileRecord("catalog/db/x.yaml", A, "item", "x")]


def test_unchanged_content_is_skipped():
    _, h = parsed("catalog/x.yaml", item_yaml("x"))
    plan = plan_for([Change("catalog/x.yaml", B)], {"catalog/x.yaml": item_yaml("x")},
                    before={"catalog/x.yaml": FileRecord("catalog/x.yaml", A, "item", "x")},
                    claimants={("item", "x"): [FileRecord("catalog/x.yaml", A, "item", "x")]},
                    current={("item", "x"): EntryState("catalog/x.yaml", h, True)})
    assert plan.upserts == [] and plan.deactivations == []


def test_deleted_file_deactivates_its_item():
    rec = FileRecord("catalog/x.yaml", A, "item", "x")
    plan = plan_sync([Change("catalog/x.yaml", None)], {}, {}, {"catalog/x.yaml": rec},
                     {("item", "x"): [rec]}, {("item", "x"): EntryState("catalog/x.yaml", "h", True)})
    assert plan.deactivations == [("item", "x")] and plan.file_deletes == ["catalog/x.yaml"]


def test_renaming_the_name_inside_a_file_retires_the_old_name():
    rec = FileRecord("catalog/x.yaml", A, "item", "old-name")
    plan = plan_for([Change("catalog/x.yaml", B)], {"catalog/x.yaml": item_yaml("new-name")},
                    before={"catalog/x.yaml": rec}, claimants={("item", "old-name"): [rec]},
                    current={("item", "old-name"): EntryState("catalog/x.yaml", "h", True)})
    assert plan.deactivations == [("item", "old-name")]
    assert [(u.name, u.change) for u in plan.upserts] == [("new-name", "added")]


def test_broken_file_keeps_its_name_and_the_previous_version():
    rec = FileRecord("catalog/x.yaml", A, "item", "x")
    plan = plan_for([Change("catalog/x.yaml", B)], {"catalog/x.yaml": "name: [oops\n"},
                    before={"catalog/x.yaml": rec}, claimants={("item", "x"): [rec]},
                    current={("item", "x"): EntryState("catalog/x.yaml", "h", True)})
    assert plan.upserts == [] and plan.deactivations == []
    [record] = plan.file_upserts
    assert record.identifier == "x" and record.error and record.blob_oid == B
    assert plan.errors and plan.errors[0].path == "catalog/x.yaml"


def test_a_reactivated_name_counts_as_added():
    plan = plan_for([Change("catalog/x.yaml", A)], {"catalog/x.yaml": item_yaml("x")},
                    current={("item", "x"): EntryState("catalog/old.yaml", "h", False)})
    assert [(u.name, u.change) for u in plan.upserts] == [("x", "added")]


@pytest.mark.parametrize("url,payload,expected", [
    ("https://github.com/Org/Repo.git", {"full_name": "org/repo"}, True),
    ("https://github.com/org/repo", {"clone_url": "https://github.com/org/repo.git"}, True),
    ("https://github.com/org/repo.git", {"full_name": "org/other"}, False),
    ("/srv/catalog", {"full_name": "org/repo"}, False),
])
def test_push_matching(url, payload, expected):
    source = catalog_source(SimpleNamespace(repo_url=url, repo_branch="main"))
    assert push_matches(source, payload) is expected


def test_local_paths_and_file_urls_are_one_repository(tmp_path):
    a = catalog_source(SimpleNamespace(repo_url=str(tmp_path / "cat"), repo_branch="main"))
    b = catalog_source(SimpleNamespace(repo_url=(tmp_path / "cat").as_uri(), repo_branch="main"))
    assert a.key == b.key and a.url.startswith("file://") and a.is_local
    assert a.cache_dir(tmp_path) == b.cache_dir(tmp_path)


def test_symlinks_are_not_catalog_files():
    out = b"120000 blob " + A.encode() + b"\tcatalog/link.yaml\0"
    assert parse_ls_tree(out) == {}
    raw = parse_diff_raw(f":100644 120000 {A} {B} T\0catalog/x.yaml\0".encode())
    assert changes_from_diff(raw) == [Change("catalog/x.yaml", None)]


def test_a_file_that_loses_a_name_keeps_pao040_in_its_record_until_it_takes_the_name():
    owner = FileRecord("catalog/a.yaml", A, "item", "x")
    files = {"catalog/a.yaml": item_yaml("x"), "catalog/b.yaml": item_yaml("x", "2.0.0")}
    _, h = parsed("catalog/a.yaml", files["catalog/a.yaml"])
    row = {("item", "x"): EntryState("catalog/a.yaml", h, True)}
    plan = plan_for([Change("catalog/b.yaml", B)], files,
                    claimants={("item", "x"): [owner]}, current=row)
    [error] = plan.errors
    # The finding pao-cli validate gives: PAO040 at the name.
    assert (error.path, error.code, error.line, error.col) == ("catalog/b.yaml", "PAO040", 1, 7)
    assert error.message == "item 'x' is already declared in catalog/a.yaml; rename one of them " \
                            "(identifiers are unique)"
    [lost] = plan.file_upserts
    assert (lost.path, lost.identifier, lost.error) == ("catalog/b.yaml", "x", error.message)
    assert plan.upserts == []
    # The holder goes: the sound file with the error takes the name, its error cleared.
    plan = plan_for([Change("catalog/a.yaml", None)], {"catalog/b.yaml": files["catalog/b.yaml"]},
                    before={"catalog/a.yaml": owner}, claimants={("item", "x"): [owner, lost]},
                    current=row)
    assert plan.errors == [] and plan.file_deletes == ["catalog/a.yaml"]
    assert plan.file_upserts == [FileRecord("catalog/b.yaml", B, "item", "x", None)]
    assert [(u.name, u.path, u.change) for u in plan.upserts] == [("x", "catalog/b.yaml", "updated")]


def test_an_entrys_category_is_its_directory_under_catalog():
    from app.sync.plan import category_of

    assert category_of("catalog/databases/mysql.yaml", "item") == "databases"
    assert category_of("catalog/cloud/aws/s3.yaml", "item") == "cloud/aws"
    assert category_of("catalog/top.yaml", "item") is None
    assert category_of("catalog/bundles/web/stack.yaml", "bundle") == "web"
    assert category_of("catalog/bundles/stack.yaml", "bundle") is None
