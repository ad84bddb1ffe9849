"""The package's import graph has no cycle, so data flows one way (inputs -> trace -> maps -> metrics
or reports): every import counts, those inside functions too; only `if TYPE_CHECKING:` blocks are
left out (never run)."""

from __future__ import annotations

import ast
from pathlib import Path

import mllm_explain

PACKAGE = Path(mllm_explain.__file__).parent


def module_name(path: Path) -> str:
    parts = ["mllm_explain", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, modules: set[str]) -> set[str]:
    """The package's modules that `path` imports at run time."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = {id(node) for block in ast.walk(tree) if isinstance(block, ast.If)
               and "TYPE_CHECKING" in ast.unparse(block.test) for node in ast.walk(block)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            base = node.module if node.level == 0 else ".".join(
                [*module_name(path).split(".")[:-node.level + (path.name == "__init__.py") or None], node.module])
            found |= {f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names}
    return found & modules


def import_graph() -> dict[str, set[str]]:
    paths = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    return {name: imports(path, set(paths)) - {name} for name, path in paths.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of `graph` as a path that ends where it starts, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return [*path[path.index(target):], target]
            if target not in state and (cycle := visit(target, [*path, target])):
                return cycle
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start, [start])):
            return cycle
    return None


def test_the_graph_sees_imports_inside_functions():
    graph = import_graph()
    assert "mllm_explain.report" in graph["mllm_explain.cli"]  # imported inside a command
    assert "mllm_explain.notebook" in graph["mllm_explain.explanation"]  # imported inside a method
    assert "mllm_explain.report.html" in graph["mllm_explain.notebook"]
    assert "mllm_explain.explanation" in graph["mllm_explain.pipeline"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_in_the_package():
    assert find_cycle(import_graph()) is None


def test_views_and_maps_know_no_adapter():
    """`View` and `Box` are plain facts (`views.py`) that adapters make and maps compose: neither module imports
    the adapters, not even for type checking, so the two sides no longer import each other."""
    for name in ("views.py", "maps.py"):
        assert "mllm_explain.adapters" not in (PACKAGE / name).read_text(encoding="utf-8"), name
