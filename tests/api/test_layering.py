"""The API is a surface: it calls ``billing.services`` and never the store or SQL itself."""

from __future__ import annotations

import ast
from pathlib import Path

import billing

API = Path(billing.__file__).resolve().parent / "api"


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_the_api_imports_neither_the_store_nor_sqlalchemy() -> None:
    offenders = {f"{path.name}: {module}" for path in API.rglob("*.py")
                 for module in _imports(path)
                 if module.split(".")[0] == "sqlalchemy" or module.startswith("billing.store")}
    assert offenders == set()
    assert len(list(API.rglob("*.py"))) >= 10
