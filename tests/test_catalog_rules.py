"""Every rule code: a minimal file that breaks it, and the exact line:col reported."""

from __future__ import annotations

import textwrap

import pytest

from app.catalog import spec
from app.catalog.parse import ParsedFile, parse_catalog_file, validate_catalog

ITEM = "catalog/databases/demo.yaml"
BUNDLE = "catalog/bundles/demo-bundle.yaml"

HEADER = """\
name: demo
version: "1.0.0"
description: Demo item
owner: team
"""
MANUAL = """\
fulfillment:
  manual:
    system: email
    template:
      summary: "New {{ db }}"
      to: ops@example.com
"""


def y(text: str) -> bytes:
    return textwrap.dedent(text).encode()


def item(fields: str = "", fulfillment: str = MANUAL) -> bytes:
    """A valid item with the given field list (YAML under presentation.fields)."""
    body = HEADER + "presentation:\n  fields:\n    - name: db\n      type: string\n"
    return (body + textwrap.indent(fields, "    ") + fulfillment).encode()


def at(pf_or_findings, code: str) -> list[tuple[int, int]]:
    findings = pf_or_findings.findings if isinstance(pf_or_findings, ParsedFile) else pf_or_findings
    return [(f.line, f.col) for f in findings if f.code == code]


def test_the_base_document_is_valid() -> None:
    pf = parse_catalog_file(ITEM, item())
    assert pf.ok and pf.findings == [] and pf.identifier == "demo"


# (code, path, content, expected line:col). Lines below count from 1 in ``content``;
# item() puts the first extra field line at line 9 (its keys at column 7; in fields
# given as "  key: v", continuing the 'db' field) and fulfillment after them.
CASES = [
    ("PAO001", ITEM, b"name: demo\ndescription: caf\xe9\n", (2, 17)),
    ("PAO002", ITEM, b"#" * (spec.MAX_FILE_BYTES + 1), (1, 1)),
    ("PAO003", ITEM, b"name: demo\nversion: [1.0\n", (3, 1)),
    ("PAO003", ITEM, b"name: a\n---\nname: b\n", (2, 1)),
    ("PAO004", ITEM, b"- just\n- a list\n", (1, 1)),
    ("PAO004", ITEM, b"# only a comment\n", (1, 1)),
    ("PAO005", ITEM, y("""\
        a: &a ["x","x","x","x","x","x","x","x","x","x"]
        b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]
        c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]
        d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]
        e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]
        """), (5, 1)),
    ("PAO005", ITEM, b"a: &a [1, *a]\n", (1, 4)),
    # Nesting deeper than spec.MAX_DEPTH collections: reported at the first one too deep
    # (the root mapping is the first; the 100th '[' is the 101st, at column 103).
    ("PAO005", ITEM, b"a: " + b"[" * 150 + b"]" * 150 + b"\n", (1, 103)),
    ("PAO005", ITEM, "".join(f"{' ' * i}k{i}:\n" for i in range(150)).encode() + b" " * 150 + b"x\n",
     (101, 101)),
    # Deep enough to overflow libyaml's recursive composer (a segfault) yet under the size cap.
    ("PAO005", ITEM, b"a: " + b"[" * 60000 + b"]" * 60000 + b"\n", (1, 103)),
    ("PAO006", ITEM, HEADER.encode() + b"owner: other\n" + MANUAL.encode(), (5, 1)),
    ("PAO007", ITEM, HEADER.encode() + b"1: one\n" + MANUAL.encode(), (5, 1)),
    ("PAO008", ITEM, HEADER.encode() + b"tags: [!!binary aGk=]\n" + MANUAL.encode(), (5, 8)),
    # PostgreSQL's text and jsonb cannot hold U+0000: the sync could not store it.
    ("PAO009", ITEM, HEADER.replace("description: Demo item", 'description: "Demo\\0item"').encode()
     + MANUAL.encode(), (3, 14)),
    ("PAO009", ITEM, HEADER.encode() + b'tags: {"a\\0": b}\n' + MANUAL.encode(), (5, 8)),
    ("PAO010", ITEM, b"name: demo\nversion: \"1.0.0\"\ndescription: d\n" + MANUAL.encode(), (1, 1)),
    ("PAO010", ITEM, item(fulfillment="fulfillment:\n  manual:\n    system: email\n"), (10, 3)),
    ("PAO011", ITEM, HEADER.encode() + b"tags: database\n" + MANUAL.encode(), (5, 7)),
    ("PAO011", ITEM, b"name: demo\nversion: 1.0\ndescription: d\nowner: o\n" + MANUAL.encode(), (2, 10)),
    # NaN and infinity are YAML floats but not JSON: the sync could not store them.
    ("PAO011", ITEM, item("- name: n\n  type: number\n  default: .nan\n"), (11, 16)),
    ("PAO011", ITEM, item("- name: n\n  type: number\n  max_value: .inf\n"), (11, 18)),
    ("PAO011", ITEM, HEADER.encode() + b"tags: [-.Inf]\n" + MANUAL.encode(), (5, 8)),
    ("PAO012", ITEM, HEADER.encode() + b"tgas: [a]\n" + MANUAL.encode(), (5, 1)),
    ("PAO012", ITEM, item("  help_txt: hi\n"), (9, 7)),
    ("PAO013", ITEM, item("- name: DB-Name\n  type: string\n"), (9, 13)),
    ("PAO014", ITEM, b"name: demo\nversion: \"1.0\"\ndescription: d\nowner: o\n" + MANUAL.encode(), (2, 10)),
    ("PAO015", "catalog/x/my-db.yaml", HEADER.replace("name: demo", "name: My DB").encode()
     + MANUAL.encode(), (1, 7)),
    ("PAO016", "catalog/x/My_DB.yaml", HEADER.replace("name: demo", "name: My DB").encode()
     + MANUAL.encode(), (1, 7)),
    ("PAO017", ITEM, item("- name: size\n  type: selektion\n"), (10, 13)),
    ("PAO018", ITEM, HEADER.replace("owner: team", "owner: ''").encode() + MANUAL.encode(), (4, 8)),
    ("PAO019", ITEM, HEADER.encode() + b"tags: [db, sql, db]\n" + MANUAL.encode(), (5, 17)),
    ("PAO020", ITEM, item("- name: db\n  type: integer\n"), (9, 13)),
    ("PAO021", ITEM, item("- name: n\n  type: integer\n  max_length: 3\n"), (11, 7)),
    ("PAO022", ITEM, item("- name: n\n  type: integer\n  min_value: 5\n  max_value: 1\n"), (11, 18)),
    ("PAO022", ITEM, item("- name: s\n  type: string\n  max_length: -1\n"), (11, 19)),
    ("PAO023", ITEM, item("- name: s\n  type: string\n  regexp: '^[a-z'\n"), (11, 15)),
    # A default that makes Python's re backtrack for minutes (30 chars: ~20 s, each more
    # doubles it) must neither hang the check nor be taken as valid.
    ("PAO025", ITEM, item("- name: s\n  type: string\n  regexp: '(a+)+$'\n"
                          "  default: '" + "a" * 40 + "b'\n"), (12, 16)),
    # ... and one that backtracks beyond any budget is reported on the regexp itself.
    ("PAO023", ITEM, item("- name: s\n  type: string\n  regexp: '(a|a)+$'\n"
                          "  default: '" + "a" * 40 + "b'\n"), (11, 15)),
    ("PAO024", ITEM, item("- name: s\n  type: selection\n  oneof: []\n"), (11, 14)),
    ("PAO024", ITEM, item("- name: s\n  type: selection\n"), (9, 7)),
    ("PAO024", ITEM, item("- name: s\n  type: multiselect\n  oneof: [a, b, a]\n"), (11, 21)),
    ("PAO025", ITEM, item("- name: s\n  type: selection\n  oneof: [a, b]\n  default: c\n"), (12, 16)),
    ("PAO025", ITEM, item("- name: s\n  type: string\n  max_length: 2\n  default: abc\n"), (12, 16)),
    ("PAO025", ITEM, item("- name: s\n  type: string\n  regexp: '^[a-z]+$'\n  default: A1\n"), (12, 16)),
    ("PAO025", ITEM, item("- name: n\n  type: integer\n  default: '3'\n"), (11, 16)),
    ("PAO025", ITEM, item("- name: m\n  type: multiselect\n  oneof: [a]\n  default: [b]\n"), (12, 16)),
    ("PAO026", ITEM, item("- name: pw\n  type: secret\n  default: hunter2\n"), (11, 7)),
    ("PAO030", ITEM, HEADER.encode() + MANUAL.replace("New {{ db }}", "New {{ db }").encode(), (9, 16)),
    ("PAO031", ITEM, item(fulfillment=MANUAL.replace("{{ db }}", "{{ dbname }}")), (13, 24)),
    ("PAO031", ITEM, item(fulfillment=MANUAL + "      body: |\n        Hello\n"
                          "        from {{ requester.name }}\n"), (17, 27)),
    ("PAO032", ITEM, HEADER.encode() + b"fulfillment: {}\n", (5, 1)),
    ("PAO033", ITEM, item(fulfillment="""\
fulfillment:
  automation:
    steps:
      - {id: a, type: HttpPost, config: {url: "https://x"}}
      - {id: a, type: HttpPost, config: {url: "https://y"}}
"""), (13, 14)),
    ("PAO034", ITEM, item(fulfillment="""\
fulfillment:
  automation:
    steps:
      - id: a
        type: HttpPost
        config: {url: "https://x"}
        depends_on: [b]
"""), (15, 22)),
    ("PAO035", ITEM, item(fulfillment="""\
fulfillment:
  automation:
    steps:
      - {id: a, type: HttpPost, config: {url: "https://x"}, depends_on: [c]}
      - {id: b, type: HttpPost, config: {url: "https://x"}, depends_on: [a]}
      - {id: c, type: HttpPost, config: {url: "https://x"}, depends_on: [b]}
"""), (12, 61)),
    ("PAO036", ITEM, item(fulfillment="""\
fulfillment:
  automation:
    steps:
      - id: a
        type: HttpPost
        on_failure: manual
        config: {url: "https://x"}
"""), (14, 21)),
    ("PAO012", ITEM, item(fulfillment="""\
fulfillment:
  automation:
    steps:
      - id: a
        type: GitHubWorkflow
        config: {repository: o/r, workflow: w.yml, branch: main}
"""), (14, 52)),
    ("PAO037", ITEM, HEADER.encode() + MANUAL.replace("system: email", "system: jira").encode(), (8, 5)),
    ("PAO038", ITEM, item(fulfillment="""\
fulfillment:
  automation:
    steps:
      - {id: a, type: HttpPost, config: {url: "https://x"}, outputs: [url]}
      - {id: b, type: HttpPost, config: {url: "{{ steps.a.outputs.url }}"}}
"""), (13, 57)),
    ("PAO043", BUNDLE, y("""\
        name: demo-bundle
        version: "1.0.0"
        description: d
        owner: o
        bundle:
          required_items:
            - catalog_item: demo
              version: ">=1.x"
        """), (8, 16)),
    ("PAO045", BUNDLE, y("""\
        name: demo-bundle
        version: "1.0.0"
        description: d
        owner: o
        bundle:
          required_items:
            - {catalog_item: demo, version: "*"}
          optional_items:
            - {catalog_item: demo, version: "*"}
        """), (9, 22)),
    ("PAO045", BUNDLE, y("""\
        name: demo-bundle
        version: "1.0.0"
        description: d
        owner: o
        bundle: {}
        """), (5, 1)),
]


@pytest.mark.parametrize(("code", "path", "content", "where"), CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_rule_reports_at_the_exact_place(code: str, path: str, content: bytes,
                                         where: tuple[int, int]) -> None:
    pf = parse_catalog_file(path, content)
    places = at(pf, code)
    assert places, f"{code} not reported; got {pf.findings}"
    assert where in places, f"{code} at {places}, expected {where}; all: {pf.findings}"
    rule = spec.RULES_BY_CODE[code]
    assert all(f.severity == rule.severity for f in pf.findings if f.code == code)
    assert pf.ok is (rule.severity != "error" and all(f.severity != "error" for f in pf.findings))


# Nesting beyond spec.MAX_DEPTH, deep enough that a parser may give up first: libyaml
# (since 0.2.6) refuses 1,000 levels itself, older libyaml and pure-Python PyYAML recurse.
TOO_DEEP = [
    (b"a: " + b"[" * 1001 + b"]" * 1001 + b"\n", (1, 103)),  # under the pre-compose walk's bound
    (b"a: " + b"[" * 60000 + b"]" * 60000 + b"\n", (1, 103)),
    (b"- " * 1500 + b"x\n", (1, 201)),  # block sequences, all on one line
    (b"? " * 1500 + b"x\n", (1, 201)),  # block mappings (complex keys), all on one line
    # After a line break libyaml counts that Python's str.find('\n') would not: CR alone.
    (b"x: 1\ra: " + b"[" * 1001 + b"]" * 1001 + b"\n", (2, 103)),
]


@pytest.mark.parametrize("parser", ["libyaml", "pure-python"])
@pytest.mark.parametrize(("content", "where"), TOO_DEEP,
                         ids=["flow1001", "flow60000", "block-seq", "block-map", "after-cr"])
def test_nesting_too_deep_is_pao005_whichever_parser_reads_it(
        monkeypatch: pytest.MonkeyPatch, parser: str, content: bytes, where: tuple[int, int]) -> None:
    import yaml

    from app.catalog import yamlload

    if parser == "pure-python":
        monkeypatch.setattr(yamlload, "_Loader", yaml.SafeLoader)
    else:
        assert hasattr(yaml, "CSafeLoader"), "libyaml is not installed"
        assert issubclass(yamlload._Loader, yaml.CSafeLoader)
    pf = parse_catalog_file(ITEM, content)
    assert [(f.code, f.line, f.col) for f in pf.findings] == [("PAO005", *where)]
    assert "nests deeper than 100 levels" in pf.findings[0].message


def test_a_syntax_error_inside_deep_nesting_is_still_pao003() -> None:
    # The depth walk must not turn every error of a deeply nested file into PAO005.
    content = b"a: " + b"[" * 80 + b"x: y: z" + b"]" * 80 + b"\n"
    pf = parse_catalog_file(ITEM, content)
    assert [f.code for f in pf.findings] == ["PAO003"]


# Explicit tags PAO does not read, on any kind of node: they passed silently on lists
# and mappings, and a tag its value does not fit ('!!bool maybe') raised KeyError.
TAGGED = [
    ("tags: !custom [a, b]\n", "PAO008", (5, 7), "'!custom' on a list"),
    ("tags: !!omap [a]\n", "PAO008", (5, 7), "'!!omap' on a list"),
    ("x: !!python/object/apply:os.system {args: [ls]}\n", "PAO008", (5, 4),
     "'!!python/object/apply:os.system' on a mapping"),
    ("x: !!set {a, b}\n", "PAO008", (5, 4), "'!!set' on a mapping"),
    ("!custom x: 1\n", "PAO008", (5, 1), "'!custom' on a key"),
    ("tags: [!!bool maybe]\n", "PAO008", (5, 8), "'maybe' is not a valid !!bool"),
    ("tags: [!!int abc]\n", "PAO008", (5, 8), "'abc' is not a valid !!int"),
    ("tags: [!!timestamp abc]\n", "PAO008", (5, 8), "'abc' is not a valid !!timestamp"),
    # Beyond 64 bits the sync could not store it: the validator says so, at the number.
    ("tags: [123456789012345678901234567890]\n", "PAO011", (5, 8), "beyond the 64-bit integers"),
    ("tags: [" + "9" * 5000 + "]\n", "PAO011", (5, 8), "(5000 characters) is beyond the 64-bit"),
]


@pytest.mark.parametrize(("extra", "code", "where", "says"), TAGGED, ids=[t[3][:24] for t in TAGGED])
def test_a_tag_pao_does_not_read_is_reported_on_every_kind_of_node(
        extra: str, code: str, where: tuple[int, int], says: str) -> None:
    pf = parse_catalog_file(ITEM, (HEADER + extra + MANUAL).encode())
    [f] = [f for f in pf.findings if f.code == code]
    assert (f.line, f.col) == where and says in f.message and not pf.ok


def test_tags_pao_reads_are_accepted() -> None:
    extra = "tags: [!!str 12, ! plain]\nx-created: !!timestamp 2001-12-14\n"
    pf = parse_catalog_file(ITEM, (HEADER + extra + MANUAL).encode())
    assert not [f for f in pf.findings if f.code in ("PAO008", "PAO011")]
    assert pf.document is not None and pf.document["tags"] == ["12", "plain"]


def test_every_rule_code_has_a_test() -> None:
    tested = {c[0] for c in CASES} | {"PAO027", "PAO040", "PAO041", "PAO042", "PAO044", "PAO050", "PAO051",
                                      "PAO090", "PAO099"}  # PAO099: tests/test_catalog_isolation.py
    assert tested == set(spec.RULES_BY_CODE)


def test_unknown_key_suggests_the_closest_key() -> None:
    pf = parse_catalog_file(ITEM, HEADER.encode() + b"tgas: [a]\n" + MANUAL.encode())
    [f] = [f for f in pf.findings if f.code == "PAO012"]
    assert "did you mean 'tags'" in f.message


def test_duplicate_key_names_the_first_line() -> None:
    pf = parse_catalog_file(ITEM, HEADER.encode() + b"owner: other\n" + MANUAL.encode())
    [f] = [f for f in pf.findings if f.code == "PAO006"]
    assert "first at line 4" in f.message


def test_alias_bomb_is_cheap_and_fatal() -> None:
    pf = parse_catalog_file(ITEM, CASES[6][2])
    assert pf.document is None and not pf.ok


def test_title_name_uses_file_stem_and_display_name() -> None:
    pf = parse_catalog_file("catalog/bundles/full-stack-web-app.yaml", y("""\
        name: "Full Stack Web Application"
        version: "2.1.0"
        description: d
        owner: o
        bundle:
          required_items:
            - {catalog_item: demo, version: ">=1.0.0"}
        """))
    assert pf.ok and pf.kind == "bundle"
    assert pf.identifier == "full-stack-web-app"
    assert pf.record()["name"] == "full-stack-web-app"
    assert pf.record()["display_name"] == "Full Stack Web Application"


# -- cross-file rules ----------------------------------------------------------------

def catalog(**files: bytes) -> dict[str, ParsedFile]:
    return {p: parse_catalog_file(p, data) for p, data in files.items()}


BUNDLE_REF = y("""\
    name: demo-bundle
    version: "1.0.0"
    description: d
    owner: o
    bundle:
      required_items:
        - catalog_item: demo
          version: ">=2.0.0"
          parameters:
            dbb: x
    """)


def test_duplicate_identifier_reported_on_the_later_path() -> None:
    files = {"catalog/a/demo.yaml": parse_catalog_file("catalog/a/demo.yaml", item()),
             "catalog/b/demo.yaml": parse_catalog_file("catalog/b/demo.yaml", item())}
    findings = validate_catalog(files)
    assert [(f.path, f.line, f.col, f.code) for f in findings] == [("catalog/b/demo.yaml", 1, 7, "PAO040")]
    assert "catalog/a/demo.yaml" in findings[0].message


def test_bundle_reference_rules() -> None:
    files = {ITEM: parse_catalog_file(ITEM, item()), BUNDLE: parse_catalog_file(BUNDLE, BUNDLE_REF)}
    findings = validate_catalog(files)
    assert [(f.line, f.col, f.code) for f in findings] == [(8, 16, "PAO042"), (10, 9, "PAO044")]
    assert "did you mean 'db'" in findings[1].message


def test_bundle_reference_to_unknown_item() -> None:
    ref = BUNDLE_REF.replace(b"catalog_item: demo", b"catalog_item: dmeo")
    files = {ITEM: parse_catalog_file(ITEM, item()), BUNDLE: parse_catalog_file(BUNDLE, ref)}
    [f] = validate_catalog(files)
    assert (f.line, f.col, f.code) == (7, 21, "PAO041") and "did you mean 'demo'" in f.message


def test_version_rule_against_base() -> None:
    base = {ITEM: parse_catalog_file(ITEM, item())}
    changed = item("- name: extra\n  type: boolean\n")
    [f] = validate_catalog({ITEM: parse_catalog_file(ITEM, changed)}, base=base)
    assert (f.line, f.col, f.code) == (2, 10, "PAO050") and "1.0.1" in f.message
    bumped = changed.replace(b'"1.0.0"', b'"1.1.0"')
    assert validate_catalog({ITEM: parse_catalog_file(ITEM, bumped)}, base=base) == []
    lower = item().replace(b'"1.0.0"', b'"0.9.0"')
    [f] = validate_catalog({ITEM: parse_catalog_file(ITEM, lower)}, base=base)
    assert (f.line, f.col, f.code) == (2, 10, "PAO051")
    # A comment-only change needs no bump; a rename (new path, same name) is compared too.
    assert validate_catalog({ITEM: parse_catalog_file(ITEM, b"# hi\n" + item())}, base=base) == []
    moved = "catalog/other/demo.yaml"
    [f] = validate_catalog({moved: parse_catalog_file(moved, changed)}, base=base)
    assert f.code == "PAO050" and f.path == moved


# -- templates: the regular-expression fast path agrees with Jinja2's parser ----------------

TEMPLATES = [
    "Create {{ database_name }} for {{ requester.team }}",
    "{{ a | join(', ') }} and {{b|upper}}\n{{ steps.x.outputs.url }}",
    "line one\n  {{- name -}}\n{{ requester['team'] }}",
    "{% if a %}{{ b }}{% endif %}{{ c.d }}",
    "{% for x in items %}{{ x }}{% endfor %}{{ y }}",
    "{{ a }} {# comment {{ z }} #}",
    "{{ 'literal' }} {{ none }}",
    "resource \"x\" {\n  n = {{ n }}\n}\n",
]


@pytest.mark.parametrize("text", TEMPLATES)
def test_template_fast_path_matches_jinja(text: str) -> None:
    from app.catalog import templates

    slow = templates._analyze_jinja(text)
    fast = templates._analyze_simple(text)
    assert slow.error is None
    if fast is not None:
        assert dict(fast.names) == dict(slow.names)
        assert sorted(fast.filters) == sorted(slow.filters)
        assert sorted(set(fast.chains)) == sorted(set(slow.chains))
    assert dict(templates.analyze(text).names) == dict(slow.names)


def test_unknown_filter_is_reported_with_a_suggestion() -> None:
    fields = "presentation:\n  fields:\n    - {name: db, type: string}\n"
    pf = parse_catalog_file(ITEM, (HEADER + fields + MANUAL.replace("{{ db }}", "{{ db | uper }}")).encode())
    [f] = [f for f in pf.findings if f.code == "PAO030"]
    assert (f.line, f.col) == (12, 29) and "did you mean 'upper'" in f.message


def test_unknown_test_is_reported_like_an_unknown_filter() -> None:
    # Jinja2 refuses to compile `x is nosuchtest`, so the template would fail when the
    # request is fulfilled; the check must catch it as it catches unknown filters.
    fields = "presentation:\n  fields:\n    - {name: db, type: string}\n"
    summary = "{% if db is nosuchtest %}New{% endif %}"
    pf = parse_catalog_file(ITEM, (HEADER + fields + MANUAL.replace("New {{ db }}", summary)).encode())
    [f] = [f for f in pf.findings if f.code == "PAO030"]
    assert (f.line, f.col) == (12, 29) and "unknown test 'nosuchtest'" in f.message
    ok = MANUAL.replace("New {{ db }}", "{% if db is defined %}New{% endif %}")
    assert parse_catalog_file(ITEM, (HEADER + fields + ok).encode()).ok


def test_a_template_nested_beyond_jinjas_recursion_is_pao030_not_a_crash() -> None:
    # Jinja2's parser recurses ~15 frames per parenthesis: 100 of them overflow Python's stack.
    summary = "{{ " + "(" * 100 + "db" + ")" * 100 + " }}"
    fields = "presentation:\n  fields:\n    - {name: db, type: string}\n"
    pf = parse_catalog_file(ITEM, (HEADER + fields + MANUAL.replace("New {{ db }}", summary)).encode())
    [f] = [f for f in pf.findings if f.code == "PAO030"]
    assert (f.line, f.col) == (12, 16) and "nests too deeply" in f.message


def test_the_validator_modules_import_each_other_as_a_tree() -> None:
    # parse, rules and crossfile imported each other (lazily, to dodge the cycle): a
    # change in one could break an import elsewhere. Shared types live in a leaf module.
    import ast
    import graphlib
    from pathlib import Path

    package = Path(__file__).resolve().parent.parent / "app" / "catalog"
    graph: dict[str, set[str]] = {}
    for module in package.glob("*.py"):
        deps = graph.setdefault(module.stem, set())
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "app.catalog":
                deps.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("app.catalog."):
                deps.add(node.module.split(".")[2])
    assert graph["parse"] >= {"rules", "crossfile", "model"}
    list(graphlib.TopologicalSorter(graph).static_order())  # raises CycleError on a cycle


@pytest.mark.parametrize("layout", ["one line", "one per line"])
def test_findings_are_capped_per_file_with_a_closing_count(layout: str) -> None:
    # 13,000 unknown template variables in a 256 KiB file: each finding re-split the
    # file to find its line (8 s), and the report listed all 13,000.
    names = [f"v{i}" for i in range(13000)]
    if layout == "one line":
        summary = '      summary: "' + "".join(f"{{{{ {n} }}}}" for n in names) + '"\n'
    else:
        summary = "      summary: |\n" + "".join(f"        {{{{ {n} }}}}\n" for n in names)
    text = HEADER + "presentation:\n  fields:\n    - {name: db, type: string}\n" + \
        MANUAL.replace('      summary: "New {{ db }}"\n', summary)
    assert len(text.encode()) <= spec.MAX_FILE_BYTES
    pf = parse_catalog_file(ITEM, text.encode())
    assert len(pf.findings) == spec.MAX_FINDINGS_PER_FILE + 1
    *shown, last = pf.findings
    assert [f.message.split("'")[1] for f in shown] == names[:spec.MAX_FINDINGS_PER_FILE]
    assert shown == sorted(shown, key=lambda f: (f.line, f.col))
    if layout == "one line":
        assert (shown[0].line, shown[0].col) == (12, 20) and shown[1].col == 20 + len("{{ v0 }}")
    else:
        assert [(f.line, f.col) for f in shown[:2]] == [(13, 12), (14, 12)]
    assert (last.code, last.severity, (last.line, last.col)) == ("PAO090", "error", (shown[-1].line,
                                                                                    shown[-1].col))
    assert last.message.startswith("12900 more findings in this file (12900 errors) beyond the first 100")


def test_the_closing_count_carries_the_worst_severity_it_stands_for() -> None:
    from app.catalog.model import Reporter
    from app.catalog.yamlload import Mark

    rep = Reporter(ITEM, None, limit=1)
    rep.at(Mark(3, 1), "PAO031", "shown")
    rep.at(Mark(1, 1), "PAO019", "a warning, counted")
    rep.at(Mark(2, 1), "PAO019", "another")
    [shown, closing] = rep.close()
    assert shown.message == "shown"
    assert (closing.code, closing.severity, closing.line) == ("PAO090", "warning", 3)
    assert closing.message.startswith("2 more findings in this file (2 warnings)")


def test_a_long_list_without_aliases_is_told_it_is_too_long_not_about_aliases() -> None:
    pf = parse_catalog_file(ITEM, HEADER.encode() + b"tags: [" + b"t," * 30000 + b"t]\n")
    [f] = pf.findings
    assert f.code == "PAO005" and "alias" not in f.message
    assert "more than 20,000 values" in f.message
    # Where the count passes the limit: the header's 4 values, the root, the list, then tags.
    assert (f.line, f.col) == (5, 8 + 2 * (spec.MAX_NODES - 6))
    # Aliases that expand past the limit still hear about aliases.
    [bomb] = parse_catalog_file(ITEM, CASES[6][2]).findings
    assert "aliases expand" in bomb.message


HOSTILE_REGEXPS = [
    ("(" * 2000 + ")" * 2000, "does not compile (RecursionError)"),  # re's parser recursed
    ("a{99999999999999999999}", "does not compile (OverflowError)"),
    # The regex module took forever to compile these (it expands counted repeats).
    ("((a{1000}){1000}){1000}", "multiply to 1,000,000,000 copies"),
    ("(?:x|y{20000})", "multiply to 20,001 copies"),
    ("a" * 5000, "5,000 characters, over the 4,096 limit"),
]


@pytest.mark.parametrize(("regexp", "says"), HOSTILE_REGEXPS, ids=[s for _, s in HOSTILE_REGEXPS])
def test_a_regexp_that_cannot_be_compiled_safely_is_pao023(regexp: str, says: str) -> None:
    import json

    pf = parse_catalog_file(ITEM, item(f"  regexp: {json.dumps(regexp)}\n  default: abc\n"))
    [f] = [f for f in pf.findings if f.code in ("PAO023", "PAO099")]
    assert (f.code, f.line, f.col) == ("PAO023", 9, 15) and says in f.message


def test_a_regexp_with_modest_repetition_still_checks_the_default() -> None:
    pf = parse_catalog_file(ITEM, item('  regexp: "(?:ab{2}){3}"\n  default: abbabbabb\n'))
    assert pf.ok, pf.findings
    pf = parse_catalog_file(ITEM, item('  regexp: "(?:ab{2}){3}"\n  default: abb\n'))
    assert [f.code for f in pf.findings] == ["PAO025"]


def test_a_bundles_reference_findings_are_capped_with_a_closing_count() -> None:
    # Each unknown reference is compared with every item for a suggestion: 5,000 of them
    # in a catalog of 1,000 items took 18 s, and all 5,000 were listed.
    refs = "".join(f"    - {{catalog_item: zz-{i}}}\n" for i in range(150))
    bundle = (HEADER.replace("name: demo", "name: demo-bundle") + "bundle:\n  required_items:\n" + refs)
    files = {BUNDLE: parse_catalog_file(BUNDLE, bundle.encode()), ITEM: parse_catalog_file(ITEM, item())}
    findings = validate_catalog(files)
    assert [f.code for f in findings] == ["PAO041"] * spec.MAX_FINDINGS_PER_FILE + ["PAO090"]
    assert (findings[0].line, findings[0].col) == (7, 22)
    assert findings[-1].message.startswith("50 more findings in this file (50 errors)")


def test_repeated_choices_are_found_among_many_and_equal_numbers_match() -> None:
    choices = ", ".join(f"c{i}" for i in range(5000))
    pf = parse_catalog_file(ITEM, item(f"  type: multiselect\n  oneof: [{choices}, c7, 1, 1.0, true]\n"
                                       "  default: [c1, c4999, nope]\n"))
    assert [(f.code, f.message) for f in pf.findings if f.code in ("PAO024", "PAO025")] == [
        ("PAO024", "choice 'c7' is listed twice"), ("PAO024", "choice 1.0 is listed twice"),
        ("PAO025", "default ['c1', 'c4999', 'nope'] has 'nope', which is not one of the choices "
                   "[" + ", ".join(f"'c{i}'" for i in range(10)) + ", ... (4994 more)]; change "
                   "the default or the constraint")]


def test_long_templates_are_not_kept_in_the_template_cache() -> None:
    # The cache held up to 8,192 texts of any length: 2 GiB for a repository of big templates.
    from app.catalog import templates

    long_text = "{{ db }} " + "x" * 100_000
    before = templates._analyze_cached.cache_info().currsize
    assert templates.analyze(long_text).names == (("db", 1),)
    assert templates._analyze_cached.cache_info().currsize == before
    templates.analyze("{{ short_and_recurring }}")
    assert templates._analyze_cached.cache_info().currsize == before + 1


def test_an_owner_or_a_path_too_long_to_store_is_pao027() -> None:
    pf = parse_catalog_file(ITEM, item().replace(b"owner: team", b"owner: " + b"t" * 201))
    [f] = pf.findings
    assert (f.code, f.line, f.col) == ("PAO027", 4, 8) and "201 characters, over the 200" in f.message
    assert parse_catalog_file(ITEM, item().replace(b"owner: team", b"owner: " + b"t" * 200)).ok
    deep = "catalog/" + "d" * 1010 + "/x.yaml"
    [f] = parse_catalog_file(deep, item()).findings
    assert (f.code, f.line, f.col) == ("PAO027", 1, 1) and "1,025 bytes, over the 1,024" in f.message


def test_scalars_read_the_same_whether_their_tag_was_resolved_before_or_not() -> None:
    # The loader remembers plain scalars' tags by text and quoting: a value seen before
    # (in this or an earlier file) must read exactly as a fresh yaml.safe_load reads it.
    import yaml

    from app.catalog import spec, yamlload

    values = ["yes", "no", "on", "true", "1", "0x1f", "0o17", "1_000", "1.5", ".inf", "1e3",
              "~", "null", "", "2024-01-31", "text", "-x", "+1", "0b101", "1:30"]
    text = "".join(f"p{i}: {v}\nq{i}: '{v}'\n" for i, v in enumerate(values))
    yamlload._SCALAR_TAGS.clear()
    first = yamlload.load(text, max_nodes=spec.MAX_NODES).value
    again = yamlload.load(text, max_nodes=spec.MAX_NODES).value
    assert yamlload._SCALAR_TAGS, "nothing was remembered"
    assert first == again
    expected = yaml.safe_load(text)
    expected["p14"] = "2024-01-31"  # PAO keeps dates as written
    expected["p9"] = None  # .inf is PAO011 (JSON has no infinity)
    assert first == expected
