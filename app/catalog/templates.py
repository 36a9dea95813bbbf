"""What a Jinja2 template uses: variables, attribute chains and filters, with line numbers.

Templates in catalogs are mostly ``{{ name }}``, ``{{ requester.team }}`` or
``{{ list | join(', ') }}``. Those are read with a regular expression; anything
else (blocks, comments, expressions) goes through Jinja2's own parser. Results
are cached by text, since the same templates recur across files and pushes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import jinja2
from jinja2 import nodes


@dataclass(frozen=True)
class TemplateInfo:
    error: tuple[int, str] | None  # (line, message) of a syntax error
    names: tuple[tuple[str, int], ...]  # free variables, first use
    # a.b.c attribute chains on free variables, every prefix up to MAX_CHAIN parts
    chains: tuple[tuple[tuple[str, ...], int], ...]
    filters: tuple[tuple[str, int], ...]
    tests: tuple[tuple[str, int], ...] = ()  # `x is <test>`: Jinja2 refuses unknown ones


_SIMPLE = re.compile(
    r"\{\{-?\s*(?P<chain>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)"
    r"(?P<filters>(?:\s*\|\s*[A-Za-z_]\w*(?:\((?:[^(){}'\"]|'[^'{}]*'|\"[^\"{}]*\")*\))?)*)\s*-?\}\}"
)
_FILTER_NAME = re.compile(r"\|\s*([A-Za-z_]\w*)")
_OPENERS = ("{{", "{%", "{#")
# The longest chain the rules read (steps.<id>.outputs.<name>); longer chains are
# recorded up to it, so a chain of 80,000 '.b' costs linear time, not quadratic.
MAX_CHAIN = 4


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    # Parsing only: nothing is rendered here, so autoescape is irrelevant.
    return jinja2.Environment(autoescape=False)  # noqa: S701


# Templates that recur across files and pushes are short; caching long ones would keep
# up to 8,192 texts of up to 256 KiB alive (2 GiB) for a repository of unique big ones.
_CACHED_LENGTH = 4096


def analyze(text: str) -> TemplateInfo:
    """What ``text`` uses; short texts are cached."""
    return _analyze_cached(text) if len(text) <= _CACHED_LENGTH else _analyze(text)


@lru_cache(maxsize=8192)
def _analyze_cached(text: str) -> TemplateInfo:
    return _analyze(text)


def _analyze(text: str) -> TemplateInfo:
    fast = _analyze_simple(text)
    return fast if fast is not None else _analyze_jinja(text)


def _analyze_simple(text: str) -> TemplateInfo | None:
    names: dict[str, int] = {}
    chains: list[tuple[tuple[str, ...], int]] = []
    filters: list[tuple[str, int]] = []
    pos = 0
    rest: list[str] = []
    line, counted = 1, 0  # counted on from the previous match: from the start was quadratic
    for m in _SIMPLE.finditer(text):
        rest.append(text[pos:m.start()])
        line += text.count("\n", counted, m.start())
        counted, pos = m.start(), m.end()
        chain = tuple(m.group("chain").split("."))
        if chain[0] in ("true", "false", "none", "True", "False", "None"):
            return None
        names.setdefault(chain[0], line)
        if len(chain) > 1:
            chains.extend((chain[:k], line) for k in range(min(len(chain), MAX_CHAIN), 1, -1))
        filters.extend((f, line) for f in _FILTER_NAME.findall(m.group("filters")))
    rest.append(text[pos:])
    if any(o in part for part in rest for o in _OPENERS):
        return None  # blocks, comments or expressions: let Jinja2 read it
    return TemplateInfo(None, tuple(names.items()), tuple(chains), tuple(filters))


_TOO_DEEP = (1, "the template nests too deeply (parentheses, brackets, chained operators, "
                "blocks); split it or simplify the expression")


def _analyze_jinja(text: str) -> TemplateInfo:
    try:
        tree = environment().parse(text)
    except jinja2.TemplateSyntaxError as exc:
        return TemplateInfo((exc.lineno or 1, exc.message or "syntax error"), (), (), ())
    except RecursionError:
        # Jinja2's parser recurses about 15 frames per parenthesis or bracket.
        return TemplateInfo(_TOO_DEEP, (), (), ())
    everything = _walk(tree)
    # Free variables: names loaded but never bound in the template (set, for, macro
    # parameters). Coarser than Jinja's scoping, and never reports a bound name.
    all_names = [n for n in everything if isinstance(n, nodes.Name)]
    bound = {n.name for n in all_names if n.ctx in ("store", "param")}
    names: dict[str, int] = {}
    for n in all_names:
        if n.ctx == "load" and n.name not in bound:
            names.setdefault(n.name, n.lineno)
    chains: list[tuple[tuple[str, ...], int]] = []
    for node in everything:
        if isinstance(node, nodes.Getattr | nodes.Getitem):
            chain = _chain(node)
            if chain is not None and chain[0] in names:
                chains.append((chain, node.lineno))
    filters = [(f.name, f.lineno) for f in everything if isinstance(f, nodes.Filter)]
    tests = [(t.name, t.lineno) for t in everything if isinstance(t, nodes.Test)]
    return TemplateInfo(None, tuple(names.items()), tuple(chains), tuple(filters), tuple(tests))


def _walk(tree: nodes.Node) -> list[nodes.Node]:
    """Every node under ``tree`` in document order, without recursion.

    Jinja2's ``find_all`` recurses once per level, and a chain of 1,000 ``.b`` or
    ``+ a`` parses fine yet nests that deep.
    """
    out: list[nodes.Node] = []
    stack = [tree]
    while stack:
        node = stack.pop()
        out.append(node)
        stack.extend(reversed(list(node.iter_child_nodes())))
    return out


def _chain(node: nodes.Node) -> tuple[str, ...] | None:
    """``a.b['c'].d`` -> ('a', 'b', 'c', 'd'); None for anything else or beyond MAX_CHAIN parts."""
    parts: list[str] = []
    while isinstance(node, nodes.Getattr | nodes.Getitem):
        if len(parts) == MAX_CHAIN - 1:
            return None  # its prefixes are recorded from the inner nodes
        if isinstance(node, nodes.Getattr):
            parts.append(node.attr)
        elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
            parts.append(node.arg.value)
        else:
            return None
        node = node.node
    if not isinstance(node, nodes.Name):
        return None
    parts.append(node.name)
    return tuple(reversed(parts))
