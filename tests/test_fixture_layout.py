"""No test module or conftest imports a session fixture: an imported fixture is a new fixture there.

A session fixture imported into a module is set up again for that module, so a real server
(PostgreSQL, slapd, the control plane) would start once per importing module. Session fixtures
that several directories need are plugins listed in tests/conftest.py's `pytest_plugins`.
(Importing a module- or function-scoped fixture sets it up no more often than asking for it.)
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).parent
ROOT = TESTS.parent


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


def is_session_fixture(decorator: ast.expr) -> bool:
    """`@pytest.fixture(scope="session", ...)`."""
    return (
        isinstance(decorator, ast.Call)
        and isinstance(decorator.func, ast.Attribute)
        and decorator.func.attr == "fixture"
        and any(k.arg == "scope" and ast.literal_eval(k.value) == "session" for k in decorator.keywords)
    )


def session_fixtures_of(tree: ast.Module) -> set[str]:
    return {
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef) and any(is_session_fixture(d) for d in node.decorator_list)
    }


def imported_session_fixtures(trees: dict[str, ast.Module]) -> list[str]:
    fixtures = {name: session_fixtures_of(tree) for name, tree in trees.items()}
    found = []
    for importer, tree in trees.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module in fixtures:
                found += [
                    f"{importer} imports {node.module}.{a.name}" for a in node.names if a.name in fixtures[node.module]
                ]
    return found


def test_no_module_imports_a_session_fixture() -> None:
    trees = {module_name(p): ast.parse(p.read_text()) for p in sorted(TESTS.rglob("*.py"))}
    assert imported_session_fixtures(trees) == []


def test_an_imported_session_fixture_is_found() -> None:
    source = (
        "import pytest\n\n@pytest.fixture(scope='session')\ndef server() -> None: ...\n\n"
        "@pytest.fixture(scope='module')\ndef per_module() -> None: ...\n"
    )
    trees = {
        "tests.a.fixtures": ast.parse(source),
        "tests.b.conftest": ast.parse("from tests.a.fixtures import per_module, server"),
    }
    assert imported_session_fixtures(trees) == ["tests.b.conftest imports tests.a.fixtures.server"]
