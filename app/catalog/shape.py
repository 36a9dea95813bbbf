"""The shape check: a document against the mappings, lists and scalars of ``spec``."""

from __future__ import annotations

from typing import Any

from app.catalog import spec
from app.catalog.model import Reporter, did_you_mean


def check_shape(rep: Reporter, shape: spec.Shape, value: Any, path: tuple[str | int, ...]) -> bool:
    """Check ``value`` against ``shape``; False when the type is wrong (children skipped)."""
    if type(shape) is spec.Scalar:  # most values: straight to the scalar check
        return _check_scalar(rep, shape, value, path)
    if isinstance(shape, spec.Obj):
        if not isinstance(value, dict):
            rep.add(path, "PAO011", f"{_where(path)} must be a mapping ({shape.title}), "
                    f"not {spec.type_name(value)}")
            return False
        for key, sub in value.items():
            known = shape.keys.get(key)
            if known is None:
                rep.add((*path, key), "PAO012", _unknown_key(key, shape), key=True)
                continue
            check_shape(rep, known.shape, sub, (*path, key))
        for key, known in shape.keys.items():
            if known.required and key not in value:
                rep.add(path, "PAO010", f"{shape.title} is missing required key '{key}': "
                        f"{known.doc}", key=bool(path))
        return True
    if isinstance(shape, spec.ListOf):
        if not isinstance(value, list):
            rep.add(path, "PAO011", f"{_where(path)} must be a list, not {spec.type_name(value)}")
            return False
        if len(value) < shape.min_items:
            rep.add(path, "PAO018", f"{_where(path)} must have at least {shape.min_items} entry")
        for i, item in enumerate(value):
            check_shape(rep, shape.item, item, (*path, i))
        return True
    if isinstance(shape, spec.MapOf):
        if not isinstance(value, dict):
            rep.add(path, "PAO011", f"{_where(path)} must be a mapping, not {spec.type_name(value)}")
            return False
        for key, sub in value.items():
            check_shape(rep, shape.value, sub, (*path, key))
        return True
    return _check_scalar(rep, shape, value, path)


def _check_scalar(rep: Reporter, shape: spec.Scalar, value: Any, path: tuple[str | int, ...]) -> bool:
    t = shape.type
    if t == "any":
        return True
    if t == "string" and type(value) is str and not (shape.min_length or shape.max_length
                                                       or shape.enum):
        return True  # a plain string where one is wanted: nothing more to check
    ok = (
        (t == "string" and isinstance(value, str))
        or (t == "boolean" and isinstance(value, bool))
        or (t == "integer" and isinstance(value, int) and not isinstance(value, bool))
        or (t == "number" and isinstance(value, int | float) and not isinstance(value, bool))
    )
    if not ok:
        hint = ""
        if t == "string" and isinstance(value, int | float) and not isinstance(value, bool):
            hint = f"; quote it: \"{value}\""
        elif t == "boolean" and isinstance(value, str):
            hint = "; write true or false without quotes"
        elif t in ("integer", "number") and isinstance(value, str):
            hint = "; write the number without quotes"
        rep.add(path, "PAO011", f"{_where(path)} must be {spec.describe(shape)}, "
                f"not {spec.type_name(value)}{hint}")
        return False
    if t == "string":
        if shape.min_length and not value.strip():
            rep.add(path, "PAO018", f"{_where(path)} must not be empty")
        elif shape.max_length and len(value) > shape.max_length:
            rep.add(path, "PAO027", f"{_where(path)} has {len(value):,} characters, over the "
                    f"{shape.max_length:,} PAO stores; shorten it")
        elif shape.enum and value not in shape.enum:
            rep.add(path, "PAO017", f"{_where(path)} is {value!r}; use one of "
                    f"{', '.join(shape.enum)}{did_you_mean(value, shape.enum)}")
    return True


def _where(path: tuple[str | int, ...]) -> str:
    if not path:
        return "the document"
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _unknown_key(key: str, shape: spec.Obj) -> str:
    hint = did_you_mean(key, shape.keys)
    if not hint:
        hint = "; allowed keys: " + ", ".join(shape.keys)
    return f"unknown key '{key}' in {shape.title}{hint}"
