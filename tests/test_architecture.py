"""The layout rules, checked on the source: the import graph of the hub's own modules (every import
statement, at module level or inside a function, read with `ast`) has no cycle; the services import
only `mlxhub` and their own package, never each other; `mlxhub` imports no service; and no module
reaches into another's underscore names (`from x import _name`, or `x._name` on an imported module).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = "mlxhub"
SERVICES = ("registry_svc", "trainer_svc", "inference_svc", "gateway")
PACKAGES = (SHARED, *SERVICES)


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES: dict[str, Path] = {
    module_name(path): path for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))
}


def private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


@dataclass
class Imports:
    """What one module imports from the project, and the underscore names it takes from other modules."""

    edges: set[str] = field(default_factory=set)
    reach_ins: list[str] = field(default_factory=list)


def resolve(module: str, node: ast.ImportFrom) -> str:
    """The absolute module a `from ... import` names (relative imports resolved against `module`)."""
    if not node.level:
        return node.module or ""
    package = module.split(".") if MODULES[module].name == "__init__.py" else module.split(".")[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def imports_of(module: str) -> Imports:
    tree = ast.parse(MODULES[module].read_text(), filename=str(MODULES[module]))
    found, aliases = Imports(), {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for name in node.names:
                if name.name in MODULES:
                    found.edges.add(name.name)
                    aliases[name.asname or name.name.split(".")[0]] = name.asname and name.name
        elif isinstance(node, ast.ImportFrom):
            source = resolve(module, node)
            for name in node.names:
                target = f"{source}.{name.name}"
                if target in MODULES:
                    found.edges.add(target)
                    aliases[name.asname or name.name] = target
                elif source in MODULES:
                    found.edges.add(source)
                    if private(name.name) and source != module:
                        found.reach_ins.append(f"{module}: from {source} import {name.name}")
    for node in ast.walk(tree):  # `alias._name` where alias is an imported project module
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and private(node.attr):
            target = aliases.get(node.value.id)
            if target and target != module:
                found.reach_ins.append(f"{module}: {node.value.id}.{node.attr} ({target})")
    found.edges.discard(module)
    return found


GRAPH = {module: imports_of(module) for module in MODULES}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import graph's strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(start: str) -> None:  # iterative: deep import chains must not hit the recursion limit
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return sorted(found)


def package_of(module: str) -> str:
    return module.split(".")[0]


def test_the_checker_sees_imports_inside_functions_and_finds_cycles():
    """The checks below could pass vacuously; they cannot: the graph has the hub's known edges."""
    assert "mlxhub.config" in GRAPH["gateway.app"].edges
    assert "gateway.app" in GRAPH["gateway.server"].edges
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    found = cycles({module: imports.edges for module, imports in GRAPH.items()})
    assert found == [], "import cycles:\n" + "\n".join(" <-> ".join(cycle) for cycle in found)


def test_services_import_only_mlxhub_and_themselves():
    wrong = [
        f"{module} imports {target}"
        for module, imports in GRAPH.items()
        for target in sorted(imports.edges)
        if package_of(module) in SERVICES and package_of(target) not in (SHARED, package_of(module))
    ]
    assert wrong == []


def test_mlxhub_imports_no_service():
    wrong = [
        f"{module} imports {target}"
        for module, imports in GRAPH.items()
        for target in sorted(imports.edges)
        if package_of(module) == SHARED and package_of(target) in SERVICES
    ]
    assert wrong == []


def test_no_module_takes_another_modules_underscore_names():
    reach_ins = [reach_in for imports in GRAPH.values() for reach_in in imports.reach_ins]
    assert reach_ins == []
