"""The request form, generated from an item's or bundle's ``presentation`` (pure: no I/O).

``build_form`` turns catalog fields into ``FormField``s a template renders as labelled
inputs, with hints, the submitted values kept, and the errors of a 422 answer
(``{"errors": [{"path", "code", "message"}]}``) placed on the fields they name.
``parse_submission`` turns the posted form back into typed values.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

# Catalog field type -> HTML input; selection and multiselect become <select>.
INPUT_TYPES = {"string": "text", "secret": "password", "integer": "number", "number": "number",
               "boolean": "checkbox", "selection": "select", "multiselect": "select",
               "json": "textarea"}


@dataclass
class FormField:
    """One input of the form, ready for the template."""

    # The HTML name, "<section>.<field>": "parameters.app_name", "item_parameters.redis-cache.enabled".
    name: str
    label: str
    widget: str  # text, password, number, checkbox, select, textarea
    required: bool
    hint: str | None
    placeholder: str | None
    attrs: dict[str, str]  # HTML constraint attributes: minlength, max, step, pattern...
    options: list[str] = field(default_factory=list)
    multiple: bool = False
    value: Any = None  # what the input shows: the submission, else the default
    errors: list[str] = field(default_factory=list)

    @property
    def input_id(self) -> str:
        return "f-" + self.name.replace(".", "-")


@dataclass
class Form:
    fields: list[FormField]
    errors: list[str]  # errors that name no field of this form

    @property
    def has_errors(self) -> bool:
        return bool(self.errors) or any(f.errors for f in self.fields)


def ordered(fields: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Fields with an ``order`` first (by it), then the others in file order (the spec's rule)."""
    listed = list(fields)
    with_order = [f for f in listed if isinstance(f.get("order"), int)]
    without = [f for f in listed if not isinstance(f.get("order"), int)]
    return sorted(with_order, key=lambda f: f["order"]) + without


def _attrs(spec: Mapping[str, Any]) -> dict[str, str]:
    kind = spec.get("type")
    attrs: dict[str, str] = {}
    if kind in ("string", "secret"):
        for key, attr in (("min_length", "minlength"), ("max_length", "maxlength")):
            if isinstance(spec.get(key), int):
                attrs[attr] = str(spec[key])
        # No HTML ``pattern``: the catalog's regexp is Python syntax, which browsers (JavaScript's
        # "v" mode) read differently or reject; the server checks it and the hint describes it.
    elif kind in ("integer", "number"):
        for key, attr in (("min_value", "min"), ("max_value", "max")):
            if isinstance(spec.get(key), int | float) and not isinstance(spec.get(key), bool):
                attrs[attr] = str(spec[key])
        attrs["step"] = "1" if kind == "integer" else "any"
    return attrs


def describe_constraints(spec: Mapping[str, Any]) -> str:
    """The field's constraints in words, for the catalog detail page."""
    parts: list[str] = []
    names = {"min_length": "at least {} characters", "max_length": "at most {} characters",
             "regexp": "matches {}", "min_value": "≥ {}", "max_value": "≤ {}",
             "min_items": "at least {} choices", "max_items": "at most {} choices"}
    for key, text in names.items():
        if key in spec:
            parts.append(text.format(spec[key]))
    if isinstance(spec.get("oneof"), list):
        parts.append("one of " + ", ".join(str(o) for o in spec["oneof"]))
    if "default" in spec:
        parts.append(f"default {json.dumps(spec['default'])}")
    return "; ".join(parts)


def _error_target(path: str, sections: Iterable[str]) -> tuple[str, str] | None:
    """(section, field) named by an error path such as ``/parameters/app_name``,
    ``bundle_parameters.solution_name``, ``item_parameters.redis-cache.cache_name`` or
    ``parameters.zones[0]``: the longest section the path starts with, then the field.
    A bare ``app_name`` gives ("", "app_name")."""
    dotted = ".".join(p for p in path.replace("/", ".").split(".") if p)
    for section in sorted(sections, key=len, reverse=True):
        if dotted.startswith(section + "."):
            return section, dotted[len(section) + 1:].split(".", 1)[0].split("[", 1)[0]
    if dotted and "." not in dotted:
        return "", dotted.split("[", 1)[0]
    return None


def section_of(f: FormField) -> str:
    """The section a field belongs to: its HTML name without the field's own name."""
    return f.name.rpartition(".")[0]


def build_form(sections: Mapping[str, Iterable[Mapping[str, Any]]], *,
               submitted: Mapping[str, Any] | None = None,
               errors: Iterable[Mapping[str, Any]] = ()) -> Form:
    """The form for ``sections`` (``{"parameters": [...]}``; a bundle: ``{"bundle_parameters": [...],
    "item_parameters.<item>": [...], ...}``), each field's HTML name ``<section>.<field>``.

    ``submitted`` maps HTML names to what was posted (kept in the inputs, never for
    secrets); ``errors`` are the ``errors`` of a 422 answer, each shown on its field
    or, when it names none of them, above the form.
    """
    submitted = submitted or {}
    form_fields: list[FormField] = []
    by_key: dict[tuple[str, str], FormField] = {}
    for section, specs in sections.items():
        for spec in ordered(specs):
            name = str(spec.get("name", ""))
            kind = str(spec.get("type", "string"))
            html_name = f"{section}.{name}"
            widget = INPUT_TYPES.get(kind, "text")
            value = submitted.get(html_name, spec.get("default"))
            if kind == "boolean" and submitted:
                value = html_name in submitted  # a browser posts nothing for an unticked checkbox
            if kind == "secret":
                value = None  # a secret is never echoed back into the page
            elif kind == "json" and value is not None and not isinstance(value, str):
                value = json.dumps(value, indent=2)
            options = [str(o) for o in spec.get("oneof") or []]
            if kind == "multiselect" and value is not None and not isinstance(value, list):
                value = [value]
            f = FormField(
                name=html_name, label=str(spec.get("label") or name), widget=widget,
                required=bool(spec.get("required")) and kind != "boolean",
                hint=spec.get("help_text"), placeholder=spec.get("placeholder"),
                attrs=_attrs(spec), options=options, multiple=kind == "multiselect", value=value,
            )
            form_fields.append(f)
            by_key[(section, name)] = f
    loose: list[str] = []
    for problem in errors:
        message = str(problem.get("message") or problem.get("code") or "invalid")
        target = _error_target(str(problem.get("path") or ""), sections.keys())
        found = by_key.get(target) if target else None
        if found is None and target is not None and not target[0]:
            # An error on a bare "app_name": the one field with that name, if unique.
            matches = [f for (s, n), f in by_key.items() if n == target[1]]
            found = matches[0] if len(matches) == 1 else None
        if found is not None:
            found.errors.append(message)
        else:
            path = problem.get("path")
            loose.append(f"{path}: {message}" if path else message)
    return Form(form_fields, loose)


def parse_submission(sections: Mapping[str, Iterable[Mapping[str, Any]]],
                     posted: Mapping[str, Any]) -> tuple[dict[str, dict[str, Any]], list[dict[str, str]]]:
    """Typed values per section from a posted form, and the problems found on the way.

    Only type conversion happens here (a number that is not one, JSON that does not
    parse); the constraints are the server's to check, so its 422 is the one truth.
    ``posted`` maps names to a string, or to a list of strings for multiselects.
    """
    values: dict[str, dict[str, Any]] = {}
    problems: list[dict[str, str]] = []
    for section, specs in sections.items():
        out: dict[str, Any] = {}
        for spec in specs:
            name = str(spec.get("name", ""))
            kind = spec.get("type", "string")
            raw = posted.get(f"{section}.{name}")
            path = f"{section}.{name}"
            if kind == "boolean":
                out[name] = raw is not None and raw not in ("", "false", "off")
                continue
            if kind == "multiselect":
                chosen = raw if isinstance(raw, list) else ([raw] if raw else [])
                if chosen:
                    out[name] = chosen
                continue
            if isinstance(raw, list):
                raw = raw[-1] if raw else None
            if raw is None or raw == "":
                continue  # left empty: the server applies the default or says it is required
            if kind == "integer":
                try:
                    out[name] = int(raw)
                except ValueError:
                    problems.append({"path": path, "code": "type", "message": "enter a whole number"})
            elif kind == "number":
                try:
                    number = float(raw)
                    if not math.isfinite(number):  # "nan", "inf", "1e999": no number to store
                        raise ValueError(raw)
                    out[name] = number
                except ValueError:
                    problems.append({"path": path, "code": "type", "message": "enter a number"})
            elif kind == "json":
                try:
                    out[name] = json.loads(raw)
                except (ValueError, RecursionError) as exc:  # RecursionError: nested too deep
                    problems.append({"path": path, "code": "json", "message": f"not valid JSON: {exc}"})
            else:
                out[name] = raw
        values[section] = out
    return values, problems
