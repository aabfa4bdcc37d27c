"""Where code may live: the runtime never leans on test scaffolding, and the pages read the store
only through its read API (`gnomon.store_reads`), so a schema change stays inside the store."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import gnomon
import gnomon_testing

SRC = Path(gnomon.__file__).resolve().parent
SQL = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE|PRAGMA|CREATE)\b")


def _imports(tree: ast.AST) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_the_runtime_package_never_imports_test_support() -> None:
    assert Path(gnomon_testing.__file__).resolve().parent.parent == SRC.parent
    for path in SRC.rglob("*.py"):
        modules = _imports(ast.parse(path.read_text(encoding="utf-8")))
        assert not [m for m in modules if m.split(".")[0] == "gnomon_testing"], path


def test_the_pages_hold_no_sql_and_no_connection() -> None:
    for path in sorted((SRC / "rank").rglob("*.py")) + [SRC / "report.py"]:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute):
                assert node.attr not in ("conn", "execute", "executemany"), (
                    f"{path}:{node.lineno}: reads the store around its API"
                )
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                assert not SQL.search(node.value), f"{path}:{node.lineno}: SQL {node.value!r}"
