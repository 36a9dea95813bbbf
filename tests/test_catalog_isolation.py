"""Whatever goes wrong while checking one file is that file's finding, never its caller's.

Each stage of parsing and analysis is made to blow up in turn: the file gets PAO099
at 1:1, the other files are checked as usual, and nothing raises to the caller (the
CLI, the check run, the sync).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from app.catalog import crossfile, parse, rules, templates, yamlload
from app.catalog.parse import ParsedFile, parse_catalog_file, validate_catalog
from app.cli import main

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
ITEM = "catalog/databases/mysql-database.yaml"
OTHER = "catalog/databases/postgres-database.yaml"
BUNDLE = "catalog/bundles/full-stack-web-app.yaml"
SEEDS = [ITEM, OTHER, "catalog/compute/eks-container-app.yaml", "catalog/caching/redis-cache.yaml",
         "catalog/observability/application-monitoring.yaml", BUNDLE]


def seed(path: str) -> bytes:
    return (EXAMPLES / path).read_bytes()


def _raise(*args: object, **kwargs: object) -> None:
    raise RecursionError("maximum recursion depth exceeded")


# (object, attribute): every stage parse_catalog_file goes through, in order.
PARSE_STAGES = [
    (parse, "load"),  # the YAML loader
    (yamlload._Converter, "mapping"),  # nodes to values
    (parse, "check_shape"),
    (parse, "resolve_identifier"),
    (rules, "check_file"),
    (templates, "analyze"),
    (rules, "_locate"),  # placing a finding inside a template
    (yamlload.Loaded, "resolved"),  # keeping the marks cross-file rules need
]


@pytest.mark.parametrize(("owner", "attr"), PARSE_STAGES, ids=[a for _, a in PARSE_STAGES])
def test_a_stage_that_blows_up_is_that_files_finding(
        monkeypatch: pytest.MonkeyPatch, owner: object, attr: str) -> None:
    broken = ITEM.replace("{{ instance_size }}", "{{ instance_sise }}")  # so _locate runs
    data = seed(ITEM).replace(b"{{ instance_size }}", b"{{ instance_sise }}")
    with monkeypatch.context() as m:
        m.setattr(owner, attr, _raise)
        pf = parse_catalog_file(broken, data)
    assert not pf.ok and pf.document is None and pf.identifier is None
    [f] = pf.findings
    assert (f.code, f.line, f.col, f.severity) == ("PAO099", 1, 1, "error")
    assert "RecursionError" in f.message and "could not finish" in f.message
    # The other files are checked as usual, with the broken one among them.
    files = {broken: pf, OTHER: parse_catalog_file(OTHER, seed(OTHER)),
             BUNDLE: parse_catalog_file(BUNDLE, seed(BUNDLE))}
    assert files[OTHER].ok and files[OTHER].findings == []
    assert [f.code for f in files[BUNDLE].findings] == ["PAO015"]
    cross = validate_catalog(files)
    assert {f.path for f in cross} == {BUNDLE} and {f.code for f in cross} == {"PAO041"}


CROSS_STAGES = [(crossfile, "_check_bundle"), (crossfile, "_check_reference"), (crossfile, "_check_version")]


@pytest.mark.parametrize(("owner", "attr"), CROSS_STAGES, ids=[a for _, a in CROSS_STAGES])
def test_a_cross_file_stage_that_blows_up_is_that_files_finding(
        monkeypatch: pytest.MonkeyPatch, owner: object, attr: str) -> None:
    files = {p: parse_catalog_file(p, seed(p)) for p in SEEDS}
    base = {p: parse_catalog_file(p, seed(p).replace(b'version: "1.0.0"', b'version: "0.9.0"'))
            for p in SEEDS}
    assert validate_catalog(files, base=base) == []
    original = getattr(owner, attr)

    def blow_up_on_the_bundle(pf: ParsedFile, *args: object) -> object:
        if pf.path == BUNDLE:
            _raise()
        return original(pf, *args)

    monkeypatch.setattr(owner, attr, blow_up_on_the_bundle)
    findings = validate_catalog(files, base=base)
    assert [(f.path, f.code) for f in findings] == [(BUNDLE, "PAO099")]


def test_a_deeply_chained_template_expression_is_checked_not_crashed() -> None:
    # Jinja2 parses `a.b.b...` and `a + a + ...` without trouble, but its find_all
    # recursed once per link: a RecursionError outside the guarded parse.
    chained = "{{ database_name" + ".b" * 3000 + " + 1 }}"
    summed = "{{ " + " + ".join(["database_name"] * 3000) + " }}"
    for expression in (chained, summed):
        data = seed(ITEM).replace(b"{{ instance_size }}", expression.encode())
        pf = parse_catalog_file(ITEM, data)
        assert pf.ok, pf.findings


def test_one_file_the_validator_cannot_finish_does_not_stop_the_cli(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copytree(EXAMPLES / "catalog", tmp_path / "catalog")
    monkeypatch.chdir(tmp_path)
    original = templates.analyze

    def blow_up_on_one_template(text: str) -> templates.TemplateInfo:
        if "instance_size" in text:
            _raise()
        return original(text)

    monkeypatch.setattr(templates, "analyze", blow_up_on_one_template)
    assert main(["validate", ITEM, OTHER]) == 1
    out = capsys.readouterr().out
    assert f"{ITEM}:1:1: PAO099 PAO could not finish checking this file (RecursionError)" in out
    assert f"{OTHER}\n✓ Valid CatalogItem document" in out
    assert out.rstrip().endswith("2 files checked: 1 valid, 1 with errors; 1 error, 0 warnings, 0 notices")
