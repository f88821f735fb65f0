"""The import rules of docs/architecture.md, checked on the source: layers, no cycles."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
PACKAGES = ("tracking", "tasks", "flows")


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


MODULES = _modules()


def _runtime_imports(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """The import statements that can run: all but those under `if TYPE_CHECKING:` (imports
    inside functions count: they run at the first call)."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            yield child
        elif isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
            for stmt in child.orelse:
                yield from _runtime_imports(stmt)
        else:
            yield from _runtime_imports(child)


def _imported(module: str) -> set[str]:
    """Names of everything `module` imports, modules of ours resolved to their file."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in _runtime_imports(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
            continue
        base = node.module or ""
        if node.level:
            anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
            base = ".".join([*anchor, *([base] if base else [])])
        for alias in node.names:  # `from package import module` imports that module
            names.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)
    return names


def _ours(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


#: Which of our modules each module imports (`from package import module` counts as the module).
GRAPH = {
    module: {m for m in map(_ours, _imported(module)) if m and m != module} for module in MODULES
}
IMPORTS = {module: _imported(module) for module in MODULES}


def _violations(
    sources: str, forbidden: tuple[str, ...], allowed: tuple[str, ...] = ()
) -> list[str]:
    """`module imports name` for every import (deferred ones too) from `sources` (a package
    or module) of something under `forbidden` that is not under `allowed`."""

    def under(name: str, prefixes: tuple[str, ...]) -> bool:
        return any(name == p or name.startswith(p + ".") for p in prefixes)

    return sorted(
        f"{module} imports {name}"
        for module, names in IMPORTS.items()
        if under(module, (sources,))
        for name in names
        if under(name, forbidden) and not under(name, allowed)
    )


def test_tracking_never_imports_prefect_or_the_decorators() -> None:
    assert _violations("tracking", ("prefect", "tasks", "flows")) == []


def test_stores_depend_only_on_the_core() -> None:
    """Stores persist the core's entities, the registry's included (each backend keeps its
    registry): they never call back into the APIs, models, servers or commands above them."""
    higher = (
        "tracking.client",
        "tracking.fluent",
        "tracking.models",
        "tracking.servers",
        "tracking.admin",
        "tracking.cli",
        "tracking.registry",
        "tracking.projects",
    )
    registry_model = tuple(
        f"tracking.registry.{m}" for m in ("base", "entities", "search", "validation")
    )
    assert _violations("tracking.stores", higher, allowed=registry_model) == []


@pytest.mark.parametrize(
    "library",
    [
        "tracking.fluent",
        "tracking.client",
        "tracking.stores",
        "tracking.models",
        "tracking.registry",
        "tracking.entities",
        "tracking.search",
        "tracking.projects",
    ],
)
def test_the_library_does_not_import_applications(library: str) -> None:
    """Servers, the CLI and admin commands use the library, never the other way round."""
    assert _violations(library, ("tracking.servers", "tracking.cli", "tracking.admin")) == []


def test_the_decorators_use_only_the_public_api() -> None:
    """tasks/ and flows/ see tracking's public modules, never a store or a server."""
    internals = ("tracking.stores", "tracking.servers", "tracking.cli", "tracking.admin")
    assert _violations("tasks", internals) == []
    assert _violations("flows", internals) == []


def test_no_import_cycles() -> None:
    """Tarjan's strongly connected components of the module graph: none larger than one."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(GRAPH[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(GRAPH):
        if module not in index:
            visit(module)
    assert cycles == [], "\n".join(" <-> ".join(c) for c in cycles)


def test_the_graph_sees_imports_as_python_runs_them() -> None:
    """The checks above read real edges: module-level and deferred imports count, imports
    for type checkers only do not."""
    assert "tracking.client" in GRAPH["tracking.fluent"]  # at module level
    assert "tracking.registry.uris" in GRAPH["tracking.client"]  # inside a method
    assert "tracking.client" not in GRAPH["tracking.registry.uris"]  # under TYPE_CHECKING
