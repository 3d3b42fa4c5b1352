"""The package layout's rules, checked on the source with `ast` (nothing is imported):

- no module-level import cycle inside `authsvc/` or `pki/` (imports inside functions and under
  `if TYPE_CHECKING:` are the documented ways to keep start-up light and are not edges);
- `pki/` is a library: it imports nothing of `authsvc/`, and no Flask, click, ldap3 or
  kubernetes client.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("authsvc", "pki")
PKI_FORBIDDEN = ("authsvc", "flask", "click", "ldap3", "kubernetes", "granian", "werkzeug")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def top_level_imports(path: Path, name: str) -> Iterator[str]:
    """Modules imported when `path` is imported: its top-level statements, not function bodies
    and not `if TYPE_CHECKING:` blocks."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    statements = list(tree.body)
    while statements:
        node = statements.pop(0)
        if isinstance(node, ast.If) and not _is_type_checking(node.test):
            statements.extend(node.body + node.orelse)
        elif isinstance(node, ast.Try):
            statements.extend(node.body + node.orelse + node.finalbody)
        elif isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def graph() -> dict[str, set[str]]:
    known = modules()
    edges: dict[str, set[str]] = {}
    for name, path in known.items():
        targets = set()
        for imported in top_level_imports(path, name):
            # importing a.b.c imports a and a.b first: those are edges too
            parts = imported.split(".")
            targets |= {".".join(parts[:i]) for i in range(1, len(parts) + 1)} & known.keys()
        edges[name] = targets - {name}
    return edges


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(edges.get(node, ())):
            if state.get(target) == 1:
                return [*stack[stack.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_walker_sees_a_cycle() -> None:
    """The twin: the same search finds a planted cycle."""
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_module_level_import_cycle() -> None:
    edges = graph()
    # A package imports its own __init__ first; that is not a cycle of modules.
    edges = {node: {t for t in targets if not node.startswith(t + ".")} for node, targets in edges.items()}
    assert find_cycle(edges) is None


@pytest.mark.parametrize("name", sorted(n for n in modules() if n.split(".")[0] == "pki"))
def test_pki_is_a_library(name: str) -> None:
    path = modules()[name]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and not node.level}
    bad = sorted(m for m in imported if m.split(".")[0] in PKI_FORBIDDEN)
    assert bad == [], f"{name} imports {bad}"


def all_imports(path: Path) -> set[str]:
    """Every module an `import` statement anywhere in the file names (lazy ones included)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    return names | {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and not node.level}


# Arrows point down: the command line and the HTTP layer use the feature packages, never the
# other way round. (The WSGI entry point builds the app; the CLI starts the WSGI server.)
TOP_LAYERS = {"authsvc.cli": ("authsvc.cli",), "authsvc.web": ("authsvc.web", "authsvc.wsgi", "authsvc.cli")}


@pytest.mark.parametrize(("layer", "allowed"), sorted(TOP_LAYERS.items()))
def test_only_the_top_layers_import_the_cli_and_the_web_app(layer: str, allowed: tuple[str, ...]) -> None:
    offenders = sorted(
        name
        for name, path in modules().items()
        if not name.startswith(allowed) and any(m == layer or m.startswith(layer + ".") for m in all_imports(path))
    )
    assert offenders == []
