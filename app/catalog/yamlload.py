"""YAML to plain Python values, keeping every node's line and column.

The document is *composed* (libyaml's C composer when available) rather than
loaded, and the node tree is turned into dicts, lists and scalars here so that:

* every key and value keeps its 1-based line and column (``Marks``);
* a key given twice is reported, not silently overwritten;
* aliases are expanded against a node budget, so an alias bomb costs a finding,
  not the process's memory; a self-referencing alias is reported too;
* timestamps stay strings (they end up in JSON), and unknown tags are reported.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# Plain scalars' tags by (value, implicit): the composer asks the (pure Python) resolver
# for every scalar, and catalog files repeat the same keys and values.
_SCALAR_TAGS: dict[tuple[str, tuple[bool, bool]], str] = {}
_SCALAR_TAGS_MAX = 20_000
_SCALAR_TAG_LENGTH = 64  # longer values are rarely repeated: not kept


class _Loader(_BaseLoader):  # type: ignore[valid-type,misc]
    """The safe loader with its scalar resolution memoised (safe: SafeLoader has no path
    resolvers, so a scalar's tag depends on its text and quoting alone)."""

    def resolve(self, kind: type, value: Any, implicit: Any) -> str:
        if kind is not ScalarNode or len(value) > _SCALAR_TAG_LENGTH:
            return super().resolve(kind, value, implicit)
        key = (value, implicit)
        tag = _SCALAR_TAGS.get(key)
        if tag is None:
            tag = super().resolve(kind, value, implicit)
            if len(_SCALAR_TAGS) < _SCALAR_TAGS_MAX:
                _SCALAR_TAGS[key] = tag
        return tag

_constructor = yaml.constructor.SafeConstructor()

Path = tuple[str | int, ...]
# The line breaks YAML (and libyaml's marks) count: CR LF, CR, LF, NEL, LS, PS.
_LINE_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")

_YAML_TAG = "tag:yaml.org,2002:"
_STR = _YAML_TAG + "str"
_INT = _YAML_TAG + "int"
_COLLECTION_TAGS = {SequenceNode: _YAML_TAG + "seq", MappingNode: _YAML_TAG + "map"}
# What PostgreSQL's jsonb and the API's JSON encoder hold: signed and unsigned 64 bits.
_INT_RANGE = range(-(2**63), 2**64)
_resolver = yaml.resolver.Resolver()


def _timestamp(node: ScalarNode) -> str:
    if not yaml.constructor.SafeConstructor.timestamp_regexp.match(node.value):
        raise ValueError(node.value)
    return node.value


_SCALAR_BUILDERS = {
    _STR: lambda node: node.value,
    "tag:yaml.org,2002:null": lambda node: None,
    "tag:yaml.org,2002:bool": lambda node: _constructor.construct_yaml_bool(node),
    "tag:yaml.org,2002:int": lambda node: _constructor.construct_yaml_int(node),
    "tag:yaml.org,2002:float": lambda node: _constructor.construct_yaml_float(node),
    # Keep dates as written: they are stored as JSON and compared as text.
    "tag:yaml.org,2002:timestamp": _timestamp,
}


def _tag_name(tag: str) -> str:
    """``!!binary`` for YAML's own tags, the tag as written otherwise."""
    return "!!" + tag[len(_YAML_TAG):] if tag.startswith(_YAML_TAG) else tag


class Mark(NamedTuple):
    """Where a value or key starts. A tuple: built by the thousand, cheaply (a frozen
    dataclass's ``__init__`` made turning a file's marks a tenth of its validation)."""

    line: int  # 1-based
    col: int  # 1-based
    style: str | None = None  # scalar style: None plain, "'", '"', "|", ">"


@dataclass
class Problem:
    """Something the loader noticed; parse turns it into a Finding with a rule code."""

    code: str
    mark: Mark
    message: str


@dataclass
class Loaded:
    value: Any
    # Where each value starts and where each mapping key is. Filled with the YAML
    # nodes themselves and turned into Marks only when asked (``at``): most
    # files have no findings, and building ~70 Marks a file was a seventh of
    # parse time.
    marks: dict[Path, Mark | Node] = field(default_factory=dict)
    key_marks: dict[Path, Mark | Node] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    fatal: bool = False
    text: str = ""  # the source, to place findings inside multi-line strings
    _line_starts: list[int] | None = field(default=None, repr=False)

    def at(self, path: Path, *, key: bool = False) -> Mark:
        """The mark of ``path`` (its key when ``key``), else of its nearest ancestor."""
        table = self.key_marks if key else self.marks
        p = tuple(path)
        if p in table:
            return as_mark(table[p])
        while p:
            p = p[:-1]
            if p in self.key_marks and p != ():
                return as_mark(self.key_marks[p])
            if p in self.marks:
                return as_mark(self.marks[p])
        return Mark(1, 1)

    def line(self, number: int) -> str | None:
        """Line ``number`` (1-based) of the source as YAML counts lines, None past the end.

        The line starts are found once per file: finding them again for each finding
        made a file with thousands of findings quadratic.
        """
        if self._line_starts is None:
            self._line_starts = [0, *(m.end() for m in _LINE_BREAK.finditer(self.text))]
        if not 1 <= number <= len(self._line_starts):
            return None
        start = self._line_starts[number - 1]
        end = self._line_starts[number] if number < len(self._line_starts) else len(self.text)
        return self.text[start:end].rstrip("\r\n\x85\u2028\u2029")

    def resolved(self, under: frozenset[str | int]) -> Loaded:
        """A copy with the marks of the top-level keys and of everything under the keys
        ``under``, as Marks (no YAML nodes kept alive)."""
        def keep(table: dict[Path, Mark | Node]) -> dict[Path, Mark]:
            # Inline test, not a predicate call: it runs for every value of every file.
            return {p: m if type(m) is Mark else _mark(m) for p, m in table.items()
                    if len(p) <= 1 or p[0] in under}
        return Loaded(None, keep(self.marks), keep(self.key_marks))


    def only(self, path: Path) -> Loaded:
        """A copy with the marks of ``path`` alone (value and key), as Marks."""
        return Loaded(None, {path: as_mark(self.marks[path])} if path in self.marks else {},
                      {path: as_mark(self.key_marks[path])} if path in self.key_marks else {})


class _Budget(Exception):
    def __init__(self, mark: Mark, message: str):
        self.mark = mark
        self.message = message


def _mark(node: Node) -> Mark:
    m = node.start_mark
    style = node.style if isinstance(node, ScalarNode) else None
    return Mark(m.line + 1, m.column + 1, style)


def _short(text: str, limit: int = 40) -> str:
    """``text`` quoted, cut to ``limit`` characters: findings quote values, not whole files."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + f"... ({len(text)} characters)"


def as_mark(where: Mark | Node) -> Mark:
    return where if isinstance(where, Mark) else _mark(where)


# libyaml's composer recurses once per nesting level and overflows the C stack (a
# segfault, not an exception) somewhere past 5,000 levels; 120 KB of '[' gets there.
_COMPOSE_SAFE_DEPTH = 2_000
# Walks of the text before a parser error (see _too_deep); one is enough for a refusal.
_PREFIX_WALKS = 3


def _depth_bound(text: str) -> int:
    """An upper bound on the document's nesting, from character counts alone.

    A flow collection opens with '[' or '{'; a block one with '-' or '?' or on a new
    line, and at most one block mapping joins each of those on its line.
    """
    return (2 * (text.count("\n") + text.count("-") + text.count("?"))
            + text.count("[") + text.count("{") + 2)


def _offset(text: str, mark: yaml.Mark) -> int:
    """The index in ``text`` of a parser's (0-based line, column) mark."""
    if mark.line == 0:
        return min(mark.column, len(text))
    for n, brk in enumerate(_LINE_BREAK.finditer(text), 1):
        if n == mark.line:
            return min(brk.end() + mark.column, len(text))
    return len(text)


def _too_deep(text: str, max_depth: int) -> Mark | None:
    """Where the document first nests deeper than ``max_depth``; None if it does not.

    PAO's own rule, whichever parser runs: it reads the event stream (which, unlike
    libyaml's composer, keeps no C recursion). A parser may refuse deep nesting itself
    (libyaml since 0.2.6 stops at 1,000 levels) and, reading ahead, do so before it hands
    over the events that lead there; so after an error the text before it is walked again.
    """
    for _ in range(_PREFIX_WALKS):
        loader = _Loader(text)
        depth = 0
        try:
            while (event := loader.get_event()) is not None:
                kind = type(event)
                if kind is yaml.MappingStartEvent or kind is yaml.SequenceStartEvent:
                    depth += 1
                    if depth > max_depth:
                        m = event.start_mark
                        return Mark(m.line + 1, m.column + 1)
                elif kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
                    depth -= 1
            return None
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            cut = _offset(text, mark) if mark is not None else len(text)
            if cut >= len(text):
                return None  # the error is at the end: nothing before it was left unread
            text = text[:cut]
        except yaml.YAMLError:
            return None
        finally:
            loader.dispose()
    return None


def _depth_message(max_depth: int) -> str:
    return (f"the document nests deeper than {max_depth} levels of mappings and lists; "
            "flatten it")


def _too_deep_problem(where: Mark, max_depth: int) -> Loaded:
    return Loaded(None, problems=[Problem("PAO005", where, _depth_message(max_depth))], fatal=True)


def load(text: str, *, max_nodes: int, max_depth: int = 100) -> Loaded:
    """Compose ``text`` (one YAML document) and convert it, recording problems."""
    walked = _depth_bound(text) > _COMPOSE_SAFE_DEPTH
    if walked and (where := _too_deep(text, max_depth)) is not None:
        return _too_deep_problem(where, max_depth)
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
    except (yaml.YAMLError, RecursionError) as exc:
        # The parser may have refused (or, pure Python, recursed on) nesting that is
        # PAO's to report: PAO005 whichever parser runs, not a syntax error.
        if not walked and (where := _too_deep(text, max_depth)) is not None:
            return _too_deep_problem(where, max_depth)
        return _syntax_error(exc)
    finally:
        loader.dispose()
    out = Loaded(None, text=text)
    if root is None:
        return out
    converter = _Converter(out, root, max_nodes, max_depth)
    try:
        out.value = converter.convert(root, ())
    except _Budget as exc:
        out.value = None
        out.fatal = True
        out.problems.append(Problem("PAO005", exc.mark, exc.message))
    return out


def _syntax_error(exc: BaseException) -> Loaded:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        where = Mark(mark.line + 1, mark.column + 1) if mark else Mark(1, 1)
        problem = " ".join(x for x in (exc.context, exc.problem) if x) or str(exc)
        if "expected a single document" in problem:
            problem = "the file holds more than one YAML document; keep one per file"
        message = f"YAML syntax error: {problem}"
    else:
        where, message = Mark(1, 1), f"YAML error: {exc}"
    return Loaded(None, problems=[Problem("PAO003", where, message)], fatal=True)


def _more_nodes_than(root: Node, limit: int) -> bool:
    """Whether the text itself writes more than ``limit`` values, aliases not expanded."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if len(seen) > limit:
            return True
        if isinstance(node, SequenceNode):
            stack.extend(node.value)
        elif isinstance(node, MappingNode):
            stack.extend(value for _, value in node.value)  # as the converter counts
    return False


class _Converter:
    def __init__(self, out: Loaded, root: Node, max_nodes: int, max_depth: int):
        self.out = out
        self.root = root
        self.max_nodes = max_nodes
        self.left = max_nodes
        self.max_depth = max_depth
        self.active: set[int] = set()  # nodes being converted (a revisit is a cycle)

    def convert(self, node: Node, path: Path) -> Any:
        self.left -= 1
        if self.left < 0:
            if _more_nodes_than(self.root, self.max_nodes):
                raise _Budget(_mark(node), f"the document holds more than {self.max_nodes:,} "
                              "values (mappings, lists and scalars; the limit is passed here): a "
                              "catalog file describes one offering; shorten it or split it")
            # An alias's node carries its anchor's mark; point at the top-level key being
            # expanded instead, which is where the author can act.
            top = self.out.key_marks.get(path[:1]) if path else None
            where = as_mark(top) if top is not None else _mark(node)
            raise _Budget(where, "aliases expand this document beyond the node "
                          f"limit{f' under {path[0]!r}' if path else ''}; write the values out "
                          "or reduce alias use")
        self.out.marks[path] = node
        if type(node) is ScalarNode:  # (the composer makes no subclasses)
            return self.scalar(node)
        if id(node) in self.active:
            raise _Budget(_mark(node), "an alias refers to a node that contains it; "
                          "remove the recursive alias")
        if len(self.active) >= self.max_depth:
            # Aliases can nest deeper than the text does; recursion here must stay bounded.
            raise _Budget(_mark(node), _depth_message(self.max_depth))
        if node.tag != _COLLECTION_TAGS[type(node)]:
            what = "list" if isinstance(node, SequenceNode) else "mapping"
            self.out.problems.append(Problem(
                "PAO008", _mark(node), f"unsupported tag {_tag_name(node.tag)!r} on a {what}; "
                f"remove the tag and write a plain {what}"))
        self.active.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                return [self.convert(child, (*path, i)) for i, child in enumerate(node.value)]
            assert isinstance(node, MappingNode)
            return self.mapping(node, path)
        finally:
            self.active.discard(id(node))

    def scalar(self, node: ScalarNode) -> Any:
        if node.tag == _STR:  # most values: no builder call, no number checks
            if "\0" in node.value:
                self._nul(node)
            return node.value
        build = _SCALAR_BUILDERS.get(node.tag)
        if build is None:
            self.out.problems.append(Problem(
                "PAO008", _mark(node),
                f"unsupported tag {_tag_name(node.tag)!r}; remove the tag and write a plain value"))
            return node.value
        if "\0" in node.value:
            self._nul(node)
        try:
            value = build(node)
        except Exception:  # ValueError, KeyError ('!!bool maybe'), YAMLError
            if node.tag == _INT and not node.style and _resolver.resolve(
                    ScalarNode, node.value, (True, False)) == _INT:
                # A plain integer Python will not convert (over 4,300 digits).
                return self._int_out_of_range(node)
            self.out.problems.append(Problem(
                "PAO008", _mark(node), f"{_short(node.value)} is not a valid {_tag_name(node.tag)}; "
                "remove the tag and write a plain value"))
            return node.value
        if type(value) is int and value not in _INT_RANGE:
            return self._int_out_of_range(node)
        if isinstance(value, float) and not math.isfinite(value):
            # JSON has no NaN or infinity: PostgreSQL's jsonb and the API could not hold it.
            self.out.problems.append(Problem(
                "PAO011", _mark(node),
                f"{node.value!r} is not a finite number, which JSON cannot hold; "
                "write a number, or quote it if you mean text"))
            return None
        return value

    def _int_out_of_range(self, node: ScalarNode) -> None:
        self.out.problems.append(Problem(
            "PAO011", _mark(node), f"{_short(node.value)} is beyond the 64-bit integers the "
            "catalog can store; write a smaller number, or quote it if you mean text"))
        return None

    def _nul(self, node: ScalarNode) -> None:
        # PostgreSQL's text and jsonb refuse U+0000, so the sync could not store the file.
        self.out.problems.append(Problem(
            "PAO009", _mark(node), "the text holds a NUL character (\\0), which PAO cannot "
            "store; remove it"))

    def mapping(self, node: MappingNode, path: Path) -> dict[str, Any]:
        result: dict[str, Any] = {}
        seen: dict[str, Node] = {}
        for key_node, value_node in node.value:
            if key_node.tag != _STR or type(key_node) is not ScalarNode:  # plain keys skip both
                if isinstance(key_node, ScalarNode) and key_node.tag not in _SCALAR_BUILDERS \
                        and key_node.tag != _YAML_TAG + "merge":
                    self.out.problems.append(Problem(
                        "PAO008", _mark(key_node), f"unsupported tag {_tag_name(key_node.tag)!r} on "
                        "a key; remove the tag"))
                    continue
                if not (isinstance(key_node, ScalarNode) and key_node.tag == _STR):
                    key_mark = _mark(key_node)
                    what = "a merge key '<<'" if key_node.tag == "tag:yaml.org,2002:merge" else (
                        f"{key_node.value!r}" if isinstance(key_node, ScalarNode) else "a collection")
                    self.out.problems.append(Problem(
                        "PAO007", key_mark,
                        f"mapping key {what} is not a plain string; quote it or write the keys out"))
                    continue
            key = key_node.value
            if "\0" in key:
                self._nul(key_node)
            if key in seen:
                first = _mark(seen[key])
                self.out.problems.append(Problem(
                    "PAO006", _mark(key_node),
                    f"duplicate key '{key}' (first at line {first.line}); YAML would keep only "
                    f"this one: remove one of them"))
            seen[key] = key_node
            child = (*path, key)
            self.out.key_marks[child] = key_node
            result[key] = self.convert(value_node, child)
        return result
