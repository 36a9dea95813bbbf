"""Generate the JSON Schemas and the reference part of docs/catalog-spec.md from ``spec``.

``python -m app.catalog.schema`` rewrites docs/schema/*.schema.json and the block
between the ``generated`` markers in docs/catalog-spec.md; a test fails when the
committed files differ from what this produces.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from app.catalog import spec

SCHEMA_DIR = Path("docs/schema")
SPEC_DOC = Path("docs/catalog-spec.md")
BEGIN, END = "<!-- generated: reference -->", "<!-- end generated -->"
SCHEMA_FILES = {"item": "catalog-item.schema.json", "bundle": "catalog-bundle.schema.json"}


def _shape(shape: spec.Shape) -> dict[str, Any]:
    if isinstance(shape, spec.Scalar):
        out: dict[str, Any] = {} if shape.type == "any" else {"type": shape.type}
        if shape.enum:
            out["enum"] = list(shape.enum)
        if shape.pattern:
            out["pattern"] = shape.pattern
        if shape.min_length:
            out["minLength"] = shape.min_length
        if shape.max_length:
            out["maxLength"] = shape.max_length
        return out
    if isinstance(shape, spec.ListOf):
        out = {"type": "array", "items": _shape(shape.item)}
        if shape.min_items:
            out["minItems"] = shape.min_items
        return out
    if isinstance(shape, spec.MapOf):
        return {"type": "object", "additionalProperties": _shape(shape.value)}
    out = {
        "type": "object",
        "title": shape.title,
        "properties": {k: {**_shape(key.shape), "description": key.doc} for k, key in shape.keys.items()},
        "additionalProperties": False,
    }
    required = [k for k, key in shape.keys.items() if key.required]
    if required:
        out["required"] = required
    if shape is spec.FIELD:
        out["allOf"] = _field_conditions()
    elif shape is spec.STEP:
        out["allOf"] = [
            {"if": {"properties": {"type": {"const": t}}, "required": ["type"]},
             "then": {"properties": {"config": _shape(cfg)}}}
            for t, cfg in spec.STEP_CONFIGS.items()
        ]
    return out


def _field_conditions() -> list[dict[str, Any]]:
    conditions = []
    for ftype, allowed in spec.TYPE_CONSTRAINTS.items():
        then: dict[str, Any] = {"properties": {k: False for k in spec.ALL_CONSTRAINTS if k not in allowed}}
        if ftype in ("selection", "multiselect"):
            then["required"] = ["oneof"]
            then["properties"]["oneof"] = {"type": "array", "minItems": 1, "uniqueItems": True}
        if ftype == "secret":
            then["properties"]["default"] = False
        conditions.append({"if": {"properties": {"type": {"const": ftype}}, "required": ["type"]},
                           "then": then})
    return conditions


def json_schema(kind: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a catalog item or bundle file."""
    body = _shape(spec.shape_for(kind))
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://pao.dev/schema/{SCHEMA_FILES[kind]}",
        **body,
        "description": "Generated from app/catalog/spec.py; the shape only. `pao-cli validate` "
                       "also applies the semantic rules (PAO0xx codes) in docs/catalog-spec.md.",
    }


def schema_text(kind: str) -> str:
    return json.dumps(json_schema(kind), indent=2, ensure_ascii=False) + "\n"


# -- the reference section of the spec document ------------------------------------

def _type_label(shape: spec.Shape) -> str:
    if isinstance(shape, spec.Scalar):
        if shape.enum:
            return " \\| ".join(f"`{e}`" for e in shape.enum)
        return shape.type
    if isinstance(shape, spec.ListOf):
        return f"list of {_type_label(shape.item)}"
    if isinstance(shape, spec.MapOf):
        return "mapping"
    return shape.title


def _objects(shape: spec.Shape, seen: dict[str, spec.Obj]) -> None:
    if isinstance(shape, spec.Obj):
        if shape.title in seen:
            return
        seen[shape.title] = shape
        for key in shape.keys.values():
            _objects(key.shape, seen)
    elif isinstance(shape, spec.ListOf):
        _objects(shape.item, seen)
    elif isinstance(shape, spec.MapOf):
        _objects(shape.value, seen)


def reference_markdown() -> str:
    seen: dict[str, spec.Obj] = {}
    for root in (spec.ITEM, spec.BUNDLE, *spec.STEP_CONFIGS.values()):
        _objects(root, seen)
    out = [BEGIN, "", "### Keys", ""]
    for title, obj in seen.items():
        out += [f"#### {title}", "", "| key | type | required | meaning |", "|---|---|---|---|"]
        for k, key in obj.keys.items():
            doc = key.doc.replace("|", "\\|")
            out.append(f"| `{k}` | {_type_label(key.shape)} | {'yes' if key.required else ''} | {doc} |")
        out.append("")
    out += ["### Constraints per field type", "", "| type | constraints |", "|---|---|"]
    for ftype, keys in spec.TYPE_CONSTRAINTS.items():
        out.append(f"| `{ftype}` | {', '.join(f'`{k}`' for k in keys) or '—'} |")
    out += ["", "### Rules", "", "| code | severity | rule |", "|---|---|---|"]
    for rule in spec.RULES:
        out.append(f"| {rule.code} | {rule.severity} | {rule.summary} |")
    out += ["", END]
    return "\n".join(out)


def render_doc(current: str) -> str:
    """``current`` with the generated block replaced (appended when absent)."""
    start, end = current.find(BEGIN), current.find(END)
    if start == -1 or end == -1:
        return current.rstrip() + "\n\n" + reference_markdown() + "\n"
    return current[:start] + reference_markdown() + current[end + len(END):]


def main(root: Path = Path()) -> int:
    (root / SCHEMA_DIR).mkdir(parents=True, exist_ok=True)
    for kind, name in SCHEMA_FILES.items():
        (root / SCHEMA_DIR / name).write_text(schema_text(kind), encoding="utf-8")
    doc = root / SPEC_DOC
    doc.write_text(render_doc(doc.read_text(encoding="utf-8") if doc.exists() else ""), encoding="utf-8")
    print(f"wrote {SCHEMA_DIR}/*.schema.json and the reference in {SPEC_DOC}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
