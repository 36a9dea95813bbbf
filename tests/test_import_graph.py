"""The package's import graph: intake, handlers and the modules they use import no cycle."""

from __future__ import annotations

import ast
from pathlib import Path

APP = Path(__file__).resolve().parent.parent / "app"


def _modules() -> dict[str, Path]:
    mods = {}
    for path in APP.rglob("*.py"):
        parts = path.relative_to(APP.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        mods[name] = path
    return mods


def _import_graph(mods: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the ``app`` modules it imports anywhere (lazy imports too), but not for typing."""
    def owner(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        deps: set[str | None] = set()
        typing_only = {id(n) for node in ast.walk(ast.parse(path.read_text()))
                       if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
                       for n in ast.walk(node)}
        for node in ast.walk(ast.parse(path.read_text())):
            if id(node) in typing_only:
                continue
            if isinstance(node, ast.Import):
                deps.update(owner(a.name) for a in node.names if a.name.startswith("app"))
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("app"):
                module = node.module or ""
                deps.update(f"{module}.{a.name}" if f"{module}.{a.name}" in mods else owner(module)
                            for a in node.names)
        graph[name] = {d for d in deps if d is not None and d != name}
    return graph


def _reaches(graph: dict[str, set[str]], start: str, target: str) -> bool:
    seen, todo = set(), list(graph[start])
    while todo:
        module = todo.pop()
        if module == target:
            return True
        if module not in seen:
            seen.add(module)
            todo.extend(graph.get(module, ()))
    return False


def test_intake_handlers_and_mirror_import_no_cycle():
    graph = _import_graph(_modules())
    watched = [m for m in graph if m in ("app.webhooks", "app.intake", "app.web")
               or m.startswith(("app.handlers", "app.mirror", "app.checks", "app.api"))]
    cyclic = sorted(m for m in watched if _reaches(graph, m, m))
    assert cyclic == []
    assert "app.webhooks" not in graph["app.mirror.store"]
    assert not any(m.startswith("app.handlers") for m in graph["app.webhooks"])


def test_the_whole_package_imports_as_a_tree():
    """No import cycle anywhere in ``app``, lazy imports included: each module can be read,
    tested and changed with only what it imports below it."""
    graph = _import_graph(_modules())
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles: list[list[str]] = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for dep in sorted(graph.get(module, ())):
            if state.get(dep) == 1:
                cycles.append([*path[path.index(dep):], dep])
            elif dep not in state:
                visit(dep, [*path, dep])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)
