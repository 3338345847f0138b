"""No import circle anywhere in ``mae_transfer``, and no lower layer importing a higher one.

The layers are those of docs/architecture.md ("Layers and rooms"). Imports are read from the
source (``ast``), the ones inside functions included: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "mae_transfer"

# (module prefix, layer): a module may import modules of its own layer or below; the longest
# matching prefix decides. Keep in step with docs/architecture.md.
LAYERS = {
    "mae_transfer": 0, "mae_transfer.paths": 0, "mae_transfer.records": 0, "mae_transfer.failpoints": 0,
    "mae_transfer.tables": 0,
    "mae_transfer.models": 1,
    "mae_transfer.checkpoints": 2, "mae_transfer.optim": 2,
    "mae_transfer.pretrain": 3, "mae_transfer.data": 3,
    "mae_transfer.classification": 4, "mae_transfer.integrations": 4,
    "mae_transfer.matrix.spec": 5,
    "mae_transfer.matrix.plan": 6,
    "mae_transfer.matrix.run": 7,
    "mae_transfer.matrix.rehearse": 8,
    "mae_transfer.matrix": 9, "mae_transfer.leaderboard": 9,
    "mae_transfer.cli": 10, "mae_transfer.train": 10, "mae_transfer.test": 10,
}


def _modules() -> dict[str, tuple[Path, bool]]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if "configs" in parts:  # mmengine config files, not modules
            continue
        is_package = parts[-1] == "__init__"
        found[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


@functools.lru_cache(maxsize=1)
def _graph() -> dict[str, frozenset[str]]:
    return {name: frozenset(targets) for name, targets in _read_graph().items()}


def import_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports (read once per session)."""
    return {name: set(targets) for name, targets in _graph().items()}


def _read_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports (``from pkg import module`` resolved to the module)."""
    modules = _modules()
    graph = {}
    for name, (path, is_package) in modules.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                candidates = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    package = name.split(".") if is_package else name.split(".")[:-1]
                    base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
                candidates = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                              for alias in node.names]
            else:
                continue
            for candidate in candidates:
                while candidate not in modules and "." in candidate:
                    candidate = candidate.rsplit(".", 1)[0]
                if candidate in modules and candidate != name:
                    targets.add(candidate)
        graph[name] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
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
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
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
    return found


def layer_of(module: str) -> tuple[str, int]:
    prefixes = [prefix for prefix in LAYERS if module == prefix or module.startswith(prefix + ".")]
    prefix = max(prefixes, key=len)
    return prefix, LAYERS[prefix]


def test_the_graph_reader_sees_lazy_imports_and_finds_a_planted_cycle() -> None:
    graph = import_graph()
    # a function-level import (the cell runner reads the override checker lazily)
    assert "mae_transfer.matrix.plan.overrides" in graph["mae_transfer.matrix.run.cell"]
    planted = {name: set(targets) for name, targets in graph.items()}
    planted["mae_transfer.matrix.plan.planner"].add("mae_transfer.matrix.run.cell")
    assert any("mae_transfer.matrix.run.cell" in cycle for cycle in cycles(planted))


def test_no_import_cycle() -> None:
    assert cycles(import_graph()) == []


def test_every_module_has_a_layer() -> None:
    assert all(any(m == p or m.startswith(p + ".") for p in LAYERS) for m in import_graph())


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """Each import of a higher layer, as 'module (layer) -> target (layer)'."""
    return [f"{module} (layer {layer_of(module)[1]}) -> {target} ({layer_of(target)[0]}, layer {layer_of(target)[1]})"
            for module, targets in sorted(graph.items()) for target in sorted(targets)
            if layer_of(target)[1] > layer_of(module)[1]]


def test_no_lower_layer_imports_a_higher_one() -> None:
    graph = import_graph()
    assert upward_imports(graph) == []
    planted = {name: set(targets) for name, targets in graph.items()}
    planted["mae_transfer.matrix.run.state"].add("mae_transfer.matrix.rehearse.rehearsal")
    assert upward_imports(planted) == ["mae_transfer.matrix.run.state (layer 7) -> mae_transfer.matrix.rehearse.rehearsal "
                                       "(mae_transfer.matrix.rehearse, layer 8)"]
