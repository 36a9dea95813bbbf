"""Per-file rules beyond the shape check: fields, constraints, templates, steps, bundle lists.

Each function reports through a ``Reporter`` (``app.catalog.model``), which
places a finding at the YAML mark of the value (or key) it is about. Rules only
look at values of the right type; the shape check has already reported the rest.
"""

from __future__ import annotations

import functools
import re
import re._constants as sre_constants
import re._parser as sre_parser
import warnings
from collections.abc import Callable
from typing import Any

import regex

from app.catalog import spec, templates
from app.catalog.model import Reporter, did_you_mean
from app.catalog.semver import Constraint
from app.catalog.shape import check_shape
from app.catalog.yamlload import Mark

Path = tuple[str | int, ...]


def check_file(rep: Reporter, kind: str, doc: dict) -> None:
    """Apply the per-file semantic rules to a document whose shape was checked."""
    _check_header(rep, doc)
    presentation = doc.get("presentation") if isinstance(doc.get("presentation"), dict) else {}
    list_key = "bundle_fields" if kind == "bundle" else "fields"
    fields = _check_fields(rep, ("presentation", list_key), presentation.get(list_key))
    fulfillment = doc.get("fulfillment")
    if kind == "bundle":
        _check_bundle_items(rep, doc.get("bundle"))
        if isinstance(fulfillment, dict):
            _check_fulfillment(rep, fulfillment, fields, bundle=True)
        return
    if isinstance(fulfillment, dict):
        _check_fulfillment(rep, fulfillment, fields)


# -- header ------------------------------------------------------------------------

def _check_header(rep: Reporter, doc: dict) -> None:
    version = doc.get("version")
    if isinstance(version, str) and not spec.SEMVER_RE.match(version):
        rep.add(("version",), "PAO014", f"version {version!r} is not a semantic version; write "
                "MAJOR.MINOR.PATCH such as \"1.0.0\"")
    tags = doc.get("tags")
    if isinstance(tags, list):
        seen: set[Any] = set()
        for i, tag in enumerate(tags):
            if isinstance(tag, str) and tag in seen:
                rep.add(("tags", i), "PAO019", f"tag {tag!r} is listed twice; remove the repeat")
            seen.add(tag if isinstance(tag, str) else id(tag))


# -- fields ------------------------------------------------------------------------

def _check_fields(rep: Reporter, path: Path, fields: Any) -> dict[str, dict]:
    """Check a field list; returns the well-named fields by name."""
    by_name: dict[str, dict] = {}
    if not isinstance(fields, list):
        return by_name
    for i, f in enumerate(fields):
        if not isinstance(f, dict):
            continue
        fpath = (*path, i)
        name = f.get("name")
        if isinstance(name, str):
            if not spec.FIELD_NAME_RE.match(name):
                rep.add((*fpath, "name"), "PAO013", f"field name {name!r} must be lowercase "
                        "letters, digits and underscores, starting with a letter (it is a "
                        f"template variable), e.g. {_snake(name)!r}")
            elif name in by_name:
                rep.add((*fpath, "name"), "PAO020", f"a field named {name!r} already exists; "
                        "field names are unique within a form")
            else:
                by_name[name] = f
        _check_field(rep, fpath, f)
    return by_name


def _snake(text: str) -> str:
    out = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    return out if out[:1].isalpha() else "f_" + out


def _check_field(rep: Reporter, fpath: Path, f: dict) -> None:
    ftype = f.get("type")
    if ftype not in spec.TYPE_CONSTRAINTS:
        return  # reported by the shape check
    allowed = spec.TYPE_CONSTRAINTS[ftype]
    for key in spec.ALL_CONSTRAINTS:
        if key in f and key not in allowed:
            fits = [t for t, keys in spec.TYPE_CONSTRAINTS.items() if key in keys]
            rep.add((*fpath, key), "PAO021", f"'{key}' does not apply to a {ftype} field (only to "
                    f"{', '.join(fits)}); remove it or change the type", key=True)
    for low, high in (("min_length", "max_length"), ("min_value", "max_value"),
                      ("min_items", "max_items")):
        lo, hi = f.get(low), f.get(high)
        if low in allowed and _num(lo) and _num(hi) and lo > hi:
            rep.add((*fpath, low), "PAO022", f"{low} {lo} is greater than {high} {hi}; swap them "
                    "or fix one")
        for key, v in ((low, lo), (high, hi)):
            if key in allowed and key != "min_value" and key != "max_value" and _num(v) and v < 0:
                rep.add((*fpath, key), "PAO022", f"{key} is {v}; a length or count cannot be "
                        "negative")
    pattern = None
    if "regexp" in allowed and isinstance(f.get("regexp"), str):
        pattern, problem = compile_regexp(f["regexp"])
        if problem is not None:
            rep.add((*fpath, "regexp"), "PAO023", problem)
    if ftype in ("selection", "multiselect"):
        oneof = f.get("oneof")
        if "oneof" not in f:
            rep.add(fpath, "PAO024", f"a {ftype} field needs 'oneof' with its choices")
        elif isinstance(oneof, list):
            if not oneof:
                rep.add((*fpath, "oneof"), "PAO024", "oneof is empty; list at least one choice")
            seen = _Seen()
            for i, choice in enumerate(oneof):
                if seen.add(choice):
                    rep.add((*fpath, "oneof", i), "PAO024", f"choice {choice!r} is listed twice")
    if "default" in f:
        if ftype == "secret":
            rep.add((*fpath, "default"), "PAO026", "a secret field cannot have a default: "
                    "secrets are typed by the requester and never stored in the catalog",
                    key=True)
        else:
            try:
                problem = default_problem(ftype, f, f["default"], pattern)
            except RegexpTooSlow:
                rep.add((*fpath, "regexp"), "PAO023", "regexp takes too long to match its own "
                        f"default (over {MATCH_BUDGET} s): nested repetition such as (a+)+ or "
                        "(a|a)+ backtracks catastrophically; simplify the pattern")
                problem = None
            if problem:
                rep.add((*fpath, "default"), "PAO025", f"default {_quoted(f['default'])} {problem}; "
                        "change the default or the constraint")


# A field's regexp checks one input line. Longer patterns, or counted repetitions that
# multiply past this, took the regex module seconds to compile, or forever when nested
# ('((a{1000}){1000}){1000}'): compiling cannot be interrupted, so they are refused.
MAX_REGEXP_LENGTH = 4096
# re warns (FutureWarning, on stderr) about '[[' or '--' in sets that a later Python may
# read differently; the author's pattern is checked as today's Python reads it.
warnings.filterwarnings("ignore", message="Possible (nested set|set difference|set intersection|"
                        "set symmetric difference|set union)", category=FutureWarning)
MAX_REGEXP_EXPANSION = 10_000


@functools.lru_cache(maxsize=2048)
def compile_regexp(text: str) -> tuple[re.Pattern[str] | None, str | None]:
    """``text`` compiled, or None and why not (PAO023's message).

    Cached by text: fields repeat their patterns across a catalog, and measuring a
    pattern's expansion (``re``'s parser) was a tenth of a full load's validation.
    """
    if len(text) > MAX_REGEXP_LENGTH:
        return None, (f"regexp has {len(text):,} characters, over the {MAX_REGEXP_LENGTH:,} "
                      "limit; a field's pattern checks one value: shorten it")
    try:
        pattern = re.compile(text)
        expansion = _expansion(re._parser.parse(text))  # type: ignore[attr-defined]
    except re.error as exc:
        pos = f" at position {exc.pos}" if exc.pos is not None else ""
        return None, (f"regexp does not compile: {exc.msg}{pos}; escape special characters "
                      "or fix the brackets")
    except (RecursionError, OverflowError, MemoryError) as exc:
        return None, (f"regexp does not compile ({type(exc).__name__}): too many nested groups "
                      "or too large a repetition count; simplify it")
    if expansion > MAX_REGEXP_EXPANSION:
        return None, (f"regexp repeats too much: its counted repetitions ({{n}}, {{n,m}}) multiply "
                      f"to {expansion:,} copies, over {MAX_REGEXP_EXPANSION:,}; simplify it")
    return pattern, None


def _expansion(parsed: Any) -> int:
    """How many copies of its atoms a regex engine that expands counted repeats makes."""
    total = 0
    for op, av in parsed:
        name = str(op)
        if name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            low, high, sub = av
            count = low if high == re._constants.MAXREPEAT else high  # type: ignore[attr-defined]
            total += max(count, 1) * _expansion(sub)
        elif name == "SUBPATTERN":
            total += _expansion(av[3])
        elif name == "BRANCH":
            total += sum(_expansion(sub) for sub in av[1])
        elif name in ("ASSERT", "ASSERT_NOT"):
            total += _expansion(av[1])
        elif name == "ATOMIC_GROUP":
            total += _expansion(av)
        else:
            total += 1
        if total > MAX_REGEXP_EXPANSION:
            return total  # enough to refuse; stop before the numbers grow huge
    return total


def _quoted(value: Any, limit: int = 80) -> str:
    """``repr(value)``, cut at ``limit`` characters: a message quotes a value, not a file."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text):,} characters)"


def _choices(oneof: list[Any], shown: int = 10) -> str:
    """``oneof`` for a message, the first ``shown`` choices of a long list and a count."""
    if len(oneof) <= shown:
        return repr(oneof)
    return "[" + ", ".join(map(repr, oneof[:shown])) + f", ... ({len(oneof) - shown} more)]"


class _Seen:
    """Membership in linear time for YAML values: a set for the hashable ones (a list
    test made a oneof of 19,000 choices take seconds), equality for lists and mappings."""

    def __init__(self, values: list[Any] = ()) -> None:  # type: ignore[assignment]
        self.hashable: set[tuple[type, Any]] = set()
        self.others: list[Any] = []
        for v in values:
            self.add(v)

    def add(self, value: Any) -> bool:
        """Add ``value``; True if it was already there."""
        if isinstance(value, list | dict):
            found = value in self.others
            self.others.append(value)
            return found
        key = (type(value) if not isinstance(value, int | float) or isinstance(value, bool)
               else float, value)  # 1 == 1.0, as the list test had it; True is not 1
        found = key in self.hashable
        self.hashable.add(key)
        return found

    def __contains__(self, value: Any) -> bool:
        if isinstance(value, list | dict):
            return value in self.others
        key = (type(value) if not isinstance(value, int | float) or isinstance(value, bool)
               else float, value)
        return key in self.hashable


def _num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


# Seconds a default may take to match its regexp. Python's re has no time limit and
# backtracks exponentially on patterns like (a+)+$, which would hang a check or a sync;
# the regex module matches those quickly and stops at a timeout on the rest.
MATCH_BUDGET = 0.25


class RegexpTooSlow(Exception):
    """Matching the regexp took longer than MATCH_BUDGET."""


@functools.lru_cache(maxsize=512)
def _bounded(pattern: str) -> regex.Pattern[str] | None:
    """``pattern`` compiled by the regex module; None when it refuses re's syntax.

    Remembered: regex's own cache costs more than the match (a request checks every field).
    """
    try:
        return regex.compile(pattern)
    except regex.error:
        return None


# What a pattern may hold and still match in linear time without a clock: anchors, literals,
# character classes, and at most one repeat of a single one of those.
_ATOMS = {sre_constants.LITERAL, sre_constants.NOT_LITERAL, sre_constants.ANY, sre_constants.IN}
_REPEATS = {sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT,
            getattr(sre_constants, "POSSESSIVE_REPEAT", sre_constants.MAX_REPEAT)}


@functools.lru_cache(maxsize=512)
def _linear(pattern: str) -> bool:
    """Whether ``pattern`` surely matches in time linear in the value: no groups, alternation,
    look-around or back-reference, and at most one repeat (of one character or class).

    Backtracking blows up only with nested or several competing repeats, so such a pattern
    needs no time limit. It is most catalogs' kind (``^[a-z][a-z0-9-]*$``), and the limit's
    clock costs two system calls a match.
    """
    try:
        parsed = sre_parser.parse(pattern)
    except (re.error, RecursionError, OverflowError):
        return False
    repeats = 0
    for op, arg in parsed:
        if op in _REPEATS:
            repeats += 1
            inner = list(arg[2])
            if repeats > 1 or len(inner) != 1 or inner[0][0] not in _ATOMS:
                return False
        elif op not in _ATOMS and op != sre_constants.AT:
            return False
    return True


def fullmatch(pattern: re.Pattern[str], value: str) -> bool:
    """``pattern.fullmatch(value)``, bounded in time (raises RegexpTooSlow)."""
    if _linear(pattern.pattern):
        return pattern.fullmatch(value) is not None
    compiled = _bounded(pattern.pattern)
    if compiled is None:
        return True  # re's syntax the regex module refuses: cannot be checked safely
    try:
        return compiled.fullmatch(value, timeout=MATCH_BUDGET) is not None
    except TimeoutError:
        raise RegexpTooSlow from None


def default_problem(ftype: str, f: dict, value: Any, pattern: re.Pattern[str] | None) -> str | None:
    """Why ``value`` is not acceptable for field ``f`` of type ``ftype``; None if it is."""
    if ftype in ("string", "secret"):
        if not isinstance(value, str):
            return f"is {spec.type_name(value)}, not a string"
        lo, hi = f.get("min_length"), f.get("max_length")
        if _num(lo) and len(value) < lo:
            return f"is shorter than min_length {lo}"
        if _num(hi) and len(value) > hi:
            return f"is longer than max_length {hi}"
        if pattern is not None and not fullmatch(pattern, value):
            return f"does not match regexp {pattern.pattern!r}"
        return None
    if ftype in ("integer", "number"):
        ok = (isinstance(value, int) and not isinstance(value, bool)) if ftype == "integer" else _num(value)
        if not ok:
            return f"is {spec.type_name(value)}, not {'an integer' if ftype == 'integer' else 'a number'}"
        lo, hi = f.get("min_value"), f.get("max_value")
        if _num(lo) and value < lo:
            return f"is below min_value {lo}"
        if _num(hi) and value > hi:
            return f"is above max_value {hi}"
        return None
    if ftype == "boolean":
        return None if isinstance(value, bool) else f"is {spec.type_name(value)}, not true/false"
    oneof = f.get("oneof") if isinstance(f.get("oneof"), list) else None
    if ftype == "selection":
        if oneof is not None and value not in oneof:
            return f"is not one of the choices {_choices(oneof)}"
        return None
    if ftype == "multiselect":
        if not isinstance(value, list):
            return f"is {spec.type_name(value)}, not a list of choices"
        choices = _Seen(oneof or [])
        bad = [v for v in value if oneof is not None and v not in choices]
        if bad:
            return f"has {bad[0]!r}, which is not one of the choices {_choices(oneof)}"
        lo, hi = f.get("min_items"), f.get("max_items")
        if _num(lo) and len(value) < lo:
            return f"has fewer than min_items {lo} choices"
        if _num(hi) and len(value) > hi:
            return f"has more than max_items {hi} choices"
    return None


# -- fulfillment -------------------------------------------------------------------

def _check_fulfillment(rep: Reporter, fulfillment: dict, fields: dict[str, dict], *,
                       bundle: bool = False) -> None:
    manual = fulfillment.get("manual")
    automation = fulfillment.get("automation")
    if manual is None and automation is None:
        rep.add(("fulfillment",), "PAO032", "fulfillment needs 'manual' (a ticket), 'automation' "
                "(steps) or both", key=True)
    if isinstance(manual, dict):
        _check_manual(rep, manual, fields)
    steps = automation.get("steps") if isinstance(automation, dict) else None
    if isinstance(steps, list):
        _check_steps(rep, steps, fields, has_manual=isinstance(manual, dict), bundle=bundle)


def _check_manual(rep: Reporter, manual: dict, fields: dict[str, dict]) -> None:
    template = manual.get("template")
    if not isinstance(template, dict):
        return
    system = manual.get("system")
    for key in spec.MANUAL_TEMPLATE_KEYS.get(system, ()) if isinstance(system, str) else ():
        if key not in template:
            rep.add(("fulfillment", "manual", "template"), "PAO037",
                    f"a {system} ticket template needs '{key}'; add it under template", key=True)
    scope = TemplateScope(set(fields), steps={})
    for tpath, text in _strings(template, ("fulfillment", "manual", "template")):
        _check_template(rep, tpath, text, scope)


# A bundle step may depend on an item's step: <item>.<step id>.
ITEM_STEP_RE = re.compile(r"^[a-z][a-z0-9-]{0,62}\.[a-z][a-z0-9_-]{0,62}$")


def _check_steps(rep: Reporter, steps: list, fields: dict[str, dict], *, has_manual: bool,
                 bundle: bool = False) -> None:
    base = ("fulfillment", "automation", "steps")
    ids: dict[str, int] = {}
    for i, step in enumerate(steps):
        if not isinstance(step, dict) or not isinstance(step.get("id"), str):
            continue
        sid = step["id"]
        if not spec.STEP_ID_RE.match(sid):
            rep.add((*base, i, "id"), "PAO013", f"step id {sid!r} must be lowercase letters, digits, "
                    "'_' or '-', starting with a letter")
        if sid in ids:
            rep.add((*base, i, "id"), "PAO033", f"step id {sid!r} is already used by step "
                    f"{ids[sid] + 1}; step ids are unique")
        else:
            ids[sid] = i
    graph: dict[str, list[str]] = {sid: [] for sid in ids}
    for i, step in enumerate(steps):
        if not isinstance(step, dict):
            continue
        sid = step.get("id") if isinstance(step.get("id"), str) else None
        deps = step.get("depends_on")
        for j, dep in enumerate(deps if isinstance(deps, list) else []):
            if not isinstance(dep, str):
                continue
            if dep == sid:
                rep.add((*base, i, "depends_on", j), "PAO034", f"step {sid!r} depends on itself; "
                        "remove it from depends_on")
            elif bundle and dep not in ids and ITEM_STEP_RE.match(dep):
                pass  # an item's step; the planner drops it when the optional item is off
            elif dep not in ids:
                rep.add((*base, i, "depends_on", j), "PAO034", f"depends_on names unknown step "
                        f"{dep!r}{did_you_mean(dep, ids)}; known steps: {', '.join(ids) or 'none'}")
            elif sid is not None and ids.get(sid) == i:
                graph[sid].append(dep)
        outputs = step.get("outputs")
        for j, out in enumerate(outputs if isinstance(outputs, list) else []):
            if isinstance(out, str) and not spec.FIELD_NAME_RE.match(out):
                rep.add((*base, i, "outputs", j), "PAO013", f"output name {out!r} must be lowercase "
                        "letters, digits and underscores, starting with a letter")
        if step.get("on_failure") == "manual" and not has_manual:
            rep.add((*base, i, "on_failure"), "PAO036", "on_failure: manual needs a "
                    "fulfillment.manual ticket to fall back to; add one or use on_failure: fail")
        stype, config = step.get("type"), step.get("config")
        if stype in spec.STEP_CONFIGS and isinstance(config, dict):
            check_shape(rep, spec.STEP_CONFIGS[stype], config, (*base, i, "config"))
    _report_cycles(rep, base, ids, graph)
    declared = {
        s["id"]: {o for o in s.get("outputs") or [] if isinstance(o, str)}
        if isinstance(s.get("outputs"), list) else None
        for s in steps if isinstance(s, dict) and isinstance(s.get("id"), str)
    }
    field_names = set(fields)
    for i, step in enumerate(steps):
        if not isinstance(step, dict) or not isinstance(step.get("config"), dict):
            continue
        sid = step.get("id")
        scope = TemplateScope(field_names, steps=declared, reachable=(
            (lambda sid=sid: _ancestors(graph, sid)) if isinstance(sid, str) else set),
                              roots={"items"} if bundle else set())
        for tpath, text in _strings(step["config"], (*base, i, "config")):
            _check_template(rep, tpath, text, scope)


def _ancestors(graph: dict[str, list[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = list(graph.get(start, ()))
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(graph.get(node, ()))
    return seen


def _report_cycles(rep: Reporter, base: Path, ids: dict[str, int], graph: dict[str, list[str]]) -> None:
    """Report each dependency cycle once, at the step of the cycle that comes first in the file."""
    white, grey, black = 0, 1, 2
    color = dict.fromkeys(graph, white)
    reported: set[frozenset[str]] = set()

    # Depth-first without recursion: a chain of thousands of steps is a valid file.
    for start in sorted(graph, key=ids.__getitem__):
        if color[start] != white:
            continue
        color[start] = grey
        stack = [start]
        pending = [iter(graph[start])]
        while pending:
            dep = next(pending[-1], None)
            if dep is None:
                color[stack.pop()] = black
                pending.pop()
            elif color[dep] == grey:
                cycle = stack[stack.index(dep):]
                key = frozenset(cycle)
                if key not in reported:
                    reported.add(key)
                    first = min(cycle, key=ids.__getitem__)
                    k = cycle.index(first)
                    ring = [*cycle[k:], *cycle[:k], first]
                    rep.add((*base, ids[first], "depends_on"), "PAO035",
                            "steps depend on each other in a cycle: " + " -> ".join(ring)
                            + "; remove one of these depends_on entries", key=True)
            elif color[dep] == white:
                color[dep] = grey
                stack.append(dep)
                pending.append(iter(graph[dep]))


# -- templates --------------------------------------------------------------------

class TemplateScope:
    """What a template may name: fields, requester.*, request.*, and reachable steps' outputs."""

    def __init__(self, fields: set[str], *, steps: dict[str, set[str] | None],
                 reachable: Callable[[], set[str]] = set,
                 roots: set[str] | None = None):
        self.fields = fields
        self.steps = steps
        self._reachable = reachable
        self._known: set[str] | None = None
        self.roots = roots or set()  # more variables: `items` in a bundle's steps

    @property
    def reachable(self) -> set[str]:
        """The steps this template's step depends on, directly or not; found when first read
        (for every step of a 2,000-step chain it was quadratic work most files never need)."""
        if self._known is None:
            self._known = self._reachable()
        return self._known


def _strings(value: Any, path: Path) -> list[tuple[Path, str]]:
    """Every string inside ``value`` that contains template syntax, with its path."""
    out: list[tuple[Path, str]] = []
    if isinstance(value, str):
        if "{{" in value or "{%" in value or "{#" in value:
            out.append((path, value))
    elif isinstance(value, dict):
        for k, v in value.items():
            out.extend(_strings(v, (*path, k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out.extend(_strings(v, (*path, i)))
    return out


def _check_template(rep: Reporter, path: Path, text: str, scope: TemplateScope) -> None:
    info = templates.analyze(text)
    if info.error is not None:
        lineno, message = info.error
        _report(rep, path, lineno, None, "PAO030", lambda: f"template syntax error: {message}; "
                "check the {{ }} and {% %} pairs")
        return
    builtins = {"steps", "requester", "request", *scope.roots}
    for name, lineno in info.names:
        if name in scope.fields or name in builtins:
            continue
        _report(rep, path, lineno, name, "PAO031", lambda name=name: (
            f"template uses '{name}', which no field defines{did_you_mean(name, scope.fields)}; "
            "available: " + ", ".join([*sorted(scope.fields), "requester.*", "request.*"])))
    known_filters = templates.environment().filters
    for name, lineno in info.filters:
        if name not in known_filters:
            _report(rep, path, lineno, name, "PAO030", lambda name=name: (
                f"unknown filter '{name}'{did_you_mean(name, known_filters)}"))
    known_tests = templates.environment().tests
    for name, lineno in info.tests:
        if name not in known_tests:
            _report(rep, path, lineno, name, "PAO030", lambda name=name: (
                f"unknown test '{name}'{did_you_mean(name, known_tests)}"))
    for chain, lineno in info.chains:
        root, attr = chain[0], chain[1]
        if len(chain) == 2 and root == "requester" and attr not in spec.REQUESTER_ATTRIBUTES:
            _report(rep, path, lineno, attr, "PAO031", lambda attr=attr: (
                f"requester has no '{attr}'; use requester."
                + ", requester.".join(spec.REQUESTER_ATTRIBUTES)))
        elif len(chain) == 2 and root == "request" and attr not in spec.REQUEST_ATTRIBUTES:
            _report(rep, path, lineno, attr, "PAO031", lambda attr=attr: (
                f"request has no '{attr}'; use request." + ", request.".join(spec.REQUEST_ATTRIBUTES)))
        elif root == "steps" and len(chain) in (2, 4):
            _check_step_ref(rep, path, lineno, chain, scope)


def _check_step_ref(rep: Reporter, path: Path, lineno: int, chain: tuple[str, ...],
                    scope: TemplateScope) -> None:
    step = chain[1]
    if len(chain) == 2:
        if step not in scope.steps:
            _report(rep, path, lineno, step, "PAO031", lambda: (
                f"template reads steps.{step}, but there is no step {step!r}"
                f"{did_you_mean(step, scope.steps)}"))
        elif step not in scope.reachable:
            _report(rep, path, lineno, step, "PAO038", lambda: (
                f"template reads the outputs of step {step!r} without depending on it; "
                f"add {step!r} to this step's depends_on"))
        return
    outputs = scope.steps.get(step)
    if chain[2] == "outputs" and outputs is not None and chain[3] not in outputs:
        _report(rep, path, lineno, chain[3], "PAO031", lambda: (
            f"step {step!r} declares no output {chain[3]!r}{did_you_mean(chain[3], outputs)}; "
            f"its outputs: {', '.join(sorted(outputs)) or 'none'}"))


def _report(rep: Reporter, path: Path, lineno: int, needle: str | None, code: str,
            message: Callable[[], str]) -> None:
    """A template finding, placed and worded only when the file's report has room for it
    (both cost time: a template can hold thousands of unknown names)."""
    if rep.full:
        rep.drop(code)
    else:
        rep.at(_locate(rep, path, lineno, needle), code, message())


def _locate(rep: Reporter, path: Path, lineno: int, needle: str | None) -> Mark:
    """The file position of template line ``lineno`` (and ``needle`` on it, if found)."""
    loaded = rep.loaded
    mark = loaded.at(path) if loaded is not None else Mark(1, 1)
    if loaded is None:
        return mark
    block = mark.style in ("|", ">")
    line = mark.line + lineno if block else mark.line + lineno - 1
    text = loaded.line(line)
    if text is None:
        return mark
    start = mark.col - 1 if line == mark.line else 0
    if needle:
        m = re.compile(r"(?<![A-Za-z0-9_])" + re.escape(needle) + r"(?![A-Za-z0-9_])").search(text, start)
        if m:
            return Mark(line, m.start() + 1)
    if line == mark.line:
        return mark
    return Mark(line, len(text) - len(text.lstrip()) + 1)


# -- bundles ----------------------------------------------------------------------

def _check_bundle_items(rep: Reporter, section: Any) -> None:
    if not isinstance(section, dict):
        return
    seen: dict[str, str] = {}
    total = 0
    for group in ("required_items", "optional_items"):
        entries = section.get(group)
        if not isinstance(entries, list):
            continue
        for i, entry in enumerate(entries):
            if not isinstance(entry, dict):
                continue
            total += 1
            ref = entry.get("catalog_item")
            if isinstance(ref, str):
                if not spec.IDENTIFIER_RE.match(ref):
                    rep.add(("bundle", group, i, "catalog_item"), "PAO013",
                            f"catalog_item {ref!r} is not an identifier (lowercase letters, digits, "
                            "hyphens); use the item's identifier, not its title")
                elif ref in seen:
                    rep.add(("bundle", group, i, "catalog_item"), "PAO045",
                            f"'{ref}' is already listed in {seen[ref]}; list each item once")
                else:
                    seen[ref] = group
            constraint = entry.get("version")
            if isinstance(constraint, str):
                try:
                    Constraint.parse(constraint)
                except ValueError as exc:
                    rep.add(("bundle", group, i, "version"), "PAO043", f"{exc}")
    if total == 0:
        rep.add(("bundle",), "PAO045", "the bundle lists no items; add required_items or "
                "optional_items", key=True)

