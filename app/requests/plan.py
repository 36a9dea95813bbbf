"""From a submission and the catalog entries it names to checked parameters and ordered steps; pure.

Steps are namespaced by the item (or bundle) they come from: ``eks-container-app.provision``.
An item with only ``fulfillment.manual`` is one step of type ``manual``. A bundle's own
``fulfillment.automation.steps`` may depend on item steps (``depends_on: [item.step]``) and
read their outputs as ``items.<item>.steps.<id>.outputs.<name>``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from app.catalog.semver import Constraint, Version
from app.requests.parameters import Problem, resolve

MANUAL = "manual"
ITEM_KEYS = {"catalog_item", "parameters", "version", "requester"}
BUNDLE_KEYS = {"catalog_bundle", "bundle_parameters", "item_parameters", "version", "requester"}


class CatalogConflict(Exception):
    """The catalog changed under the request (version moved, an item no longer fits its bundle)."""

    def __init__(self, message: str, current_version: str | None = None):
        super().__init__(message)
        self.current_version = current_version


@dataclass
class PlannedStep:
    step_id: str
    owner: str  # item or bundle name
    name: str
    type: str
    config: dict[str, Any]
    depends_on: list[str]
    outputs: list[str]
    on_failure: str

    def as_dict(self) -> dict[str, Any]:
        return {"step_id": self.step_id, "name": self.name, "type": self.type,
                "depends_on": self.depends_on, "outputs": self.outputs, "on_failure": self.on_failure}


@dataclass
class Plan:
    kind: str  # item or bundle
    name: str
    version: str
    bundle_values: dict[str, Any] = field(default_factory=dict)
    item_values: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Secret values by owner (an item's name, or the bundle's).
    secrets: dict[str, dict[str, Any]] = field(default_factory=dict)
    secret_fields: dict[str, list[str]] = field(default_factory=dict)
    steps: list[PlannedStep] = field(default_factory=list)
    snapshot: dict[str, Any] = field(default_factory=dict)


def _fields(entry: dict[str, Any], key: str) -> list[dict[str, Any]]:
    presentation = entry.get("presentation") or {}
    return [f for f in presentation.get(key) or [] if isinstance(f, dict)]


def _check_version(body: dict[str, Any], entry: dict[str, Any], kind: str) -> None:
    wanted = body.get("version")
    if wanted is not None and wanted != entry["version"]:
        raise CatalogConflict(f"version {wanted!r} of {kind} {entry['name']!r} is not the current one; "
                              f"the current version is {entry['version']}", entry["version"])


def _unknown_keys(body: dict[str, Any], allowed: set[str]) -> list[Problem]:
    return [Problem(k, "unknown", f"unknown key; expected {', '.join(sorted(allowed))}")
            for k in body if k not in allowed]


def plan_item(body: dict[str, Any], item: dict[str, Any]) -> tuple[Plan, list[Problem]]:
    """Plan a request for one item (``catalog_item``, ``parameters``)."""
    _check_version(body, item, "item")
    problems = _unknown_keys(body, ITEM_KEYS)
    resolved, found = resolve(_fields(item, "fields"), body.get("parameters"), "parameters")
    problems += found
    plan = Plan("item", item["name"], item["version"], item_values={item["name"]: resolved.values})
    _keep_secrets(plan, item["name"], resolved.secrets, _fields(item, "fields"))
    plan.steps = order(_item_steps(item))
    plan.snapshot = {"kind": "item", "name": item["name"], "version": item["version"],
                     "items": {item["name"]: _entry_snapshot(item)}, "enabled_items": [item["name"]]}
    return plan, problems


def plan_bundle(body: dict[str, Any], bundle: dict[str, Any],
                items: dict[str, dict[str, Any]]) -> tuple[Plan, list[Problem]]:
    """Plan a bundle request; ``items`` holds the current catalog entry of every item it lists."""
    _check_version(body, bundle, "bundle")
    problems = _unknown_keys(body, BUNDLE_KEYS)
    definition = bundle.get("bundle_definition") or {}
    members = [(e, True) for e in definition.get("required_items") or []] + \
              [(e, False) for e in definition.get("optional_items") or []]
    given_items = body.get("item_parameters") or {}
    if not isinstance(given_items, dict):
        problems.append(Problem("item_parameters", "type", "expected an object keyed by item name"))
        given_items = {}
    names = {e["catalog_item"] for e, _ in members}
    for name in given_items:
        if name not in names:
            problems.append(Problem(f"item_parameters.{name}", "unknown", f"the bundle has no item "
                                    f"{name!r}; its items: {', '.join(sorted(names))}"))
    resolved_bundle, found = resolve(_fields(bundle, "bundle_fields"), body.get("bundle_parameters"),
                                     "bundle_parameters")
    problems += found
    plan = Plan("bundle", bundle["name"], bundle["version"], bundle_values=resolved_bundle.values)
    _keep_secrets(plan, bundle["name"], resolved_bundle.secrets, _fields(bundle, "bundle_fields"))
    enabled: list[str] = []
    for entry, required in members:
        name = entry["catalog_item"]
        item = items.get(name)
        if item is None:
            raise CatalogConflict(f"the bundle lists item {name!r}, which is not in the catalog")
        constraint = entry.get("version") or "*"
        if not _fits(constraint, item["version"]):
            raise CatalogConflict(f"the bundle needs {name} {constraint}; the catalog has "
                                  f"{item['version']}")
        given = given_items.get(name)
        given = dict(given) if isinstance(given, dict) else given
        path = f"item_parameters.{name}"
        want = given.pop("enabled", None) if isinstance(given, dict) else None
        if want is not None and not isinstance(want, bool):
            problems.append(Problem(f"{path}.enabled", "type", "expected true or false"))
            continue
        if required and want is False:
            problems.append(Problem(f"{path}.enabled", "required_item",
                                    f"{name} is a required item of the bundle and cannot be disabled"))
            continue
        if not required and not (want if want is not None else entry.get("default_enabled", False)):
            continue
        enabled.append(name)
        resolved, found = resolve(_fields(item, "fields"), given, path, fixed=entry.get("parameters"))
        problems += found
        plan.item_values[name] = resolved.values
        _keep_secrets(plan, name, resolved.secrets, _fields(item, "fields"))
    steps: list[PlannedStep] = []
    for name in enabled:
        steps += _item_steps(items[name])
    steps += _bundle_steps(bundle, {s.step_id for s in steps}, names)
    plan.steps = order(steps)
    plan.snapshot = {
        "kind": "bundle", "name": bundle["name"], "version": bundle["version"],
        "bundle": {"presentation": bundle.get("presentation"), "fulfillment": bundle.get("fulfillment"),
                   "bundle_definition": definition},
        "items": {n: _entry_snapshot(items[n]) for n in enabled}, "enabled_items": enabled,
    }
    return plan, problems


def _fits(constraint: Any, version: Any) -> bool:
    """Whether ``version`` meets ``constraint``; texts (a catalog has few) are remembered."""
    if isinstance(constraint, str) and isinstance(version, str):
        return _fits_text(constraint, version)
    return _fits_uncached(constraint, version)


def _fits_uncached(constraint: Any, version: Any) -> bool:
    try:
        return Constraint.parse(constraint).allows(Version.parse(version))
    except ValueError:
        return False


_fits_text = functools.lru_cache(maxsize=1024)(_fits_uncached)


def _keep_secrets(plan: Plan, owner: str, secrets: dict[str, Any], fields: list[dict[str, Any]]) -> None:
    if secrets:
        plan.secrets[owner] = secrets
    names = [f["name"] for f in fields if f.get("type") == "secret"]
    if names:
        plan.secret_fields[owner] = names


def _entry_snapshot(entry: dict[str, Any]) -> dict[str, Any]:
    return {"version": entry["version"], "presentation": entry.get("presentation"),
            "fulfillment": entry.get("fulfillment")}


def _automation_steps(entry: dict[str, Any]) -> list[dict[str, Any]]:
    fulfillment = entry.get("fulfillment") or {}
    return [s for s in (fulfillment.get("automation") or {}).get("steps") or [] if isinstance(s, dict)]


def _item_steps(item: dict[str, Any]) -> list[PlannedStep]:
    name = item["name"]
    fulfillment = item.get("fulfillment") or {}
    steps = _automation_steps(item)
    if not steps:
        if fulfillment.get("manual"):
            return [PlannedStep(f"{name}.{MANUAL}", name, f"Manual fulfillment of {name}", MANUAL,
                                fulfillment["manual"], [], [], "fail")]
        return []
    return [PlannedStep(f"{name}.{s['id']}", name, s.get("name") or s["id"], s["type"],
                        s.get("config") or {}, [f"{name}.{d}" for d in s.get("depends_on") or []],
                        list(s.get("outputs") or []), s.get("on_failure") or "fail")
            for s in steps]


def _bundle_steps(bundle: dict[str, Any], item_steps: set[str], members: set[str]) -> list[PlannedStep]:
    """The bundle's own steps; a dependency on a disabled optional item's step is dropped."""
    name = bundle["name"]
    planned = []
    own = {s["id"] for s in _automation_steps(bundle)}
    for s in _automation_steps(bundle):
        deps = []
        for d in s.get("depends_on") or []:
            if d in own:
                deps.append(f"{name}.{d}")
            elif d in item_steps:
                deps.append(d)
            elif d.partition(".")[0] not in members:
                raise CatalogConflict(f"bundle step {s['id']!r} depends on {d!r}, which names no item "
                                      "of the bundle")
        planned.append(PlannedStep(f"{name}.{s['id']}", name, s.get("name") or s["id"], s["type"],
                                   s.get("config") or {}, deps, list(s.get("outputs") or []),
                                   s.get("on_failure") or "fail"))
    return planned


def order(steps: list[PlannedStep]) -> list[PlannedStep]:
    """Dependency order, keeping the catalog's order among independent steps.

    The validator refuses cycles and unknown ids; a dependency outside the plan is dropped.
    """
    ids = {s.step_id for s in steps}
    for s in steps:
        s.depends_on = [d for d in s.depends_on if d in ids]
    done: set[str] = set()
    ordered: list[PlannedStep] = []
    remaining = list(steps)
    while remaining:
        ready = [s for s in remaining if all(d in done for d in s.depends_on)]
        if not ready:
            raise CatalogConflict("steps depend on each other in a cycle: "
                                  + ", ".join(s.step_id for s in remaining))
        for s in ready:
            ordered.append(s)
            done.add(s.step_id)
        remaining = [s for s in remaining if s.step_id not in done]
    return ordered


def manual_for(snapshot: dict[str, Any], owner: str) -> dict[str, Any] | None:
    """The ``fulfillment.manual`` of a step's owner (an item, or the bundle) as planned."""
    entry = (snapshot.get("items") or {}).get(owner)
    if entry is None and owner == snapshot.get("name"):
        entry = snapshot.get("bundle")
    return ((entry or {}).get("fulfillment") or {}).get("manual")
