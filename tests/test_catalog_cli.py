"""pao-cli validate: the seed examples are valid, exit codes, output formats, --base, schemas."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml

from app.catalog import schema
from app.catalog.parse import parse_catalog_file, validate_catalog
from app.cli import main

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
SEEDS = ["catalog/databases/mysql-database.yaml", "catalog/databases/postgres-database.yaml",
         "catalog/compute/eks-container-app.yaml", "catalog/caching/redis-cache.yaml",
         "catalog/observability/application-monitoring.yaml", "catalog/bundles/full-stack-web-app.yaml"]


def test_seed_examples_are_valid_together() -> None:
    files = {p: parse_catalog_file(p, (EXAMPLES / p).read_bytes()) for p in SEEDS}
    assert all(pf.ok for pf in files.values()), {p: pf.findings for p, pf in files.items()}
    assert validate_catalog(files) == []
    assert {pf.identifier for pf in files.values()} == {
        "mysql-database", "postgres-database", "eks-container-app", "redis-cache",
        "application-monitoring", "full-stack-web-app"}
    # Seed 001's item reads back as the seed shows it.
    mysql = files[SEEDS[0]].record()
    assert mysql["presentation"]["fields"][1]["oneof"] == ["db.t3.micro", "db.t3.small", "db.t3.medium"]
    # Only the seed's title-as-name bundle draws a finding: the naming warning.
    assert [f.code for pf in files.values() for f in pf.findings] == ["PAO015"]


def test_examples_satisfy_the_generated_json_schema() -> None:
    for p in SEEDS:
        kind = "bundle" if "/bundles/" in p else "item"
        validator = jsonschema.Draft202012Validator(schema.json_schema(kind))
        assert list(validator.iter_errors(yaml.safe_load((EXAMPLES / p).read_text()))) == [], p


def test_committed_schema_and_spec_reference_are_up_to_date() -> None:
    for kind, name in schema.SCHEMA_FILES.items():
        committed = (ROOT / schema.SCHEMA_DIR / name).read_text(encoding="utf-8")
        assert committed == schema.schema_text(kind), "run: python -m app.catalog.schema"
    doc = (ROOT / schema.SPEC_DOC).read_text(encoding="utf-8")
    assert schema.render_doc(doc) == doc, "run: python -m app.catalog.schema"


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(EXAMPLES / "catalog", tmp_path / "catalog")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_valid_file_prints_seed_style_checks(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "catalog/databases/mysql-database.yaml"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[:5] == ["catalog/databases/mysql-database.yaml", "✓ Valid CatalogItem document",
                       "✓ All required fields present", "✓ Presentation fields properly defined",
                       "✓ Fulfillment template valid"]


def _break(repo: Path) -> None:
    p = repo / "catalog/databases/mysql-database.yaml"
    p.write_text(p.read_text().replace("{{ instance_size }}", "{{ instance_sise }}"))


def test_findings_exit_1_with_path_line_col(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _break(repo)
    assert main(["validate"]) == 1
    out = capsys.readouterr().out
    assert "catalog/databases/mysql-database.yaml:35:29: PAO031 template uses 'instance_sise'" in out


def test_json_format(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _break(repo)
    assert main(["validate", "--format", "json", "catalog"]) == 1
    body = json.loads(capsys.readouterr().out)
    bad = [f for f in body["files"] if not f["valid"]]
    assert [(f["path"], [(x["line"], x["col"], x["code"]) for x in f["findings"]]) for f in bad] == [
        ("catalog/databases/mysql-database.yaml", [(35, 29, "PAO031")])]
    assert body["summary"]["files"] == 6 and body["summary"]["error"] == 1


def test_github_format_and_strict(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--format", "github"]) == 0  # a warning alone passes
    out = capsys.readouterr().out
    assert out.startswith("::warning file=catalog/bundles/full-stack-web-app.yaml,line=1,col=7,"
                          "title=PAO015::name 'Full Stack Web Application' is a title")
    assert main(["validate", "--strict"]) == 1


def test_one_file_is_checked_with_its_catalog_as_context(repo: Path) -> None:
    # The bundle's references resolve because the rest of catalog/ is read too.
    assert main(["validate", "catalog/bundles/full-stack-web-app.yaml"]) == 0
    (repo / "catalog/compute/eks-container-app.yaml").unlink()
    assert main(["validate", "catalog/bundles/full-stack-web-app.yaml"]) == 1


def test_usage_errors_exit_2(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "no/such/file.yaml"]) == 2
    assert "no/such/file.yaml: no such file or directory" in capsys.readouterr().err
    assert main(["validate", "/dev/zero"]) == 2  # endless: it must not be read
    assert "/dev/zero: not a regular file" in capsys.readouterr().err
    assert main(["validate", "no\n::error::such.yaml"]) == 2
    assert "pao-cli: no\\n::error::such.yaml: no such file" in capsys.readouterr().err
    assert main(["validate", "--base", "main"]) == 2  # not a git repository


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True,
                   env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
                        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com",
                        "HOME": str(repo), "PATH": "/usr/bin:/bin:/usr/local/bin"})


def test_base_ref_enforces_version_bumps(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "catalog")
    p = repo / "catalog/caching/redis-cache.yaml"
    p.write_text(p.read_text().replace("max_value: 5", "max_value: 6"))
    assert main(["validate", "--base", "main"]) == 1
    assert "catalog/caching/redis-cache.yaml:3:10: PAO050 'redis-cache' changed but its version " \
           "is still 1.1.0" in capsys.readouterr().out
    p.write_text(p.read_text().replace('version: "1.1.0"', 'version: "1.2.0"'))
    assert main(["validate", "--base", "main"]) == 0
    assert main(["validate", "--base", "no-such-ref"]) == 2


def test_repository_root_means_its_catalog(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (repo / ".github/workflows").mkdir(parents=True)
    (repo / ".github/workflows/ci.yml").write_text("on: push\njobs: {}\n")
    assert main(["validate", "."]) == 0
    assert "6 files checked" in capsys.readouterr().out


HOSTILE_KEY = '"k\\n::warning file=x.yaml::injected\\r\\n\\u001b[2J\\u202e": 1\n'


def test_user_content_is_escaped_in_every_format(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import os

    # A key holding a newline and '::warning ...' became a workflow command when the
    # text format ran in GitHub Actions; so did a file named that way.
    p = repo / "catalog/databases/mysql-database.yaml"
    p.write_text(p.read_text() + HOSTILE_KEY)
    named = repo / "catalog/x/::error file=y.yaml::also injected\n::notice::more.yaml"
    named.parent.mkdir()
    named.write_text("name: x\n")
    for fmt in ("text", "github"):
        assert main(["validate", "--format", fmt]) == 1
        out = capsys.readouterr().out
        commands = [line for line in out.splitlines() if line.lstrip().startswith("::")]
        assert all(line.startswith(("::error file=catalog/", "::warning file=catalog/"))
                   for line in commands), commands
        assert "\x1b" not in out and "\u202e" not in out and "\r" not in out
        assert "k\\n::warning file=x.yaml::injected\\r\\n\\x1b[2J\\u202e" in out
    os.chdir(named.parent)  # (the fixture restores the directory) shown as given: '::error...'
    assert main(["validate", named.name]) == 1
    assert capsys.readouterr().out.startswith(
        "./::error file=y.yaml::also injected\\n::notice::more.yaml:1:1: PAO010")
    os.chdir(repo)
    assert main(["validate", "--format", "json"]) == 1
    body = json.loads(capsys.readouterr().out)
    [bad] = [f for f in body["files"] if f["path"].endswith("mysql-database.yaml")]
    assert "k\n::warning file=x.yaml::injected\r\n\x1b[2J\u202e" in bad["findings"][0]["message"]


def test_a_file_name_that_is_not_utf8_is_reported_not_a_crash(
        repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import os

    raw = os.fsencode(repo / "catalog/databases") + b"/caf\xe9.yaml"
    with open(raw, "wb") as fh:
        fh.write((repo / "catalog/databases/mysql-database.yaml").read_bytes().replace(
            b"mysql-database", b"cafe-database"))
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "catalog")
    for fmt in ("text", "json", "github"):
        # --base read the committed name as UTF-8: a traceback. Now as plain validate does:
        # PAO001, as the sync reports it (the catalog cannot store the path).
        assert main(["validate", "--format", fmt, "--base", "main"]) == 1
        out = capsys.readouterr().out
        assert "caf\\udce9.yaml" in out and "PAO001" in out
    assert main(["validate"]) == 1
    assert "catalog/databases/caf\\udce9.yaml:1:1: PAO001 the file name is not UTF-8; rename it" in \
        capsys.readouterr().out


def test_a_huge_file_is_not_read_whole(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # A 1 GiB file was read into memory before the size check; now reading stops at the
    # limit (the file is sparse: it costs no disk, and reading it whole takes seconds).
    huge = repo / "catalog/x/huge.yaml"
    huge.parent.mkdir()
    with huge.open("wb") as fh:
        fh.truncate(1 << 30)
    assert main(["validate", "catalog/x/huge.yaml"]) == 1
    out = capsys.readouterr().out
    assert "catalog/x/huge.yaml:1:1: PAO002 the file is larger than 262,144 bytes (256 KiB)" in out
    assert out.rstrip().endswith("1 file checked: 0 valid, 1 with errors; 1 error, 0 warnings, 0 notices")


def test_a_big_blob_at_the_base_is_pao002_and_the_rest_compare(
        repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    big = repo / "catalog/x/big.yaml"
    big.parent.mkdir()
    big.write_bytes(b"name: big\n" + b"#" * (2 << 20) + b"\n")
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "catalog")
    from app.catalog.cli import base_files, collect

    read, _, _ = collect(["catalog"])
    base = base_files("main", read)
    assert [f.code for f in base["catalog/x/big.yaml"].findings] == ["PAO002"]
    assert base["catalog/caching/redis-cache.yaml"].version == "1.1.0"
