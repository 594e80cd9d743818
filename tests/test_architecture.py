"""The layering the project promises: the domain imports no infrastructure, ever."""

from __future__ import annotations

import ast
from pathlib import Path

import billing

PACKAGE = Path(billing.__file__).resolve().parent

ALLOWED_IN_DOMAIN = {
    "__future__", "dataclasses", "datetime", "decimal", "enum", "fractions", "functools",
    "typing", "zoneinfo", "collections", "itertools", "math", "re", "dateutil",
    "billing.domain", "billing.errors",
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _allowed(module: str) -> bool:
    return any(module == ok or module.startswith(ok + ".") for ok in ALLOWED_IN_DOMAIN)


def test_domain_imports_no_infrastructure() -> None:
    offenders = {
        f"{path.relative_to(PACKAGE)}: {module}"
        for path in (PACKAGE / "domain").rglob("*.py")
        for module in _imports(path)
        if not _allowed(module)
    }
    assert offenders == set()


def test_the_purity_check_would_catch_an_offender(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import os\nfrom sqlalchemy import select\nfrom billing.store import models\n")
    assert {m for m in _imports(bad) if not _allowed(m)} == {
        "os", "sqlalchemy", "billing.store"}


def test_only_the_clock_module_reads_the_wall_clock() -> None:
    readers = set()
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text()
        if "datetime.now(" in text or "datetime.utcnow(" in text or "date.today(" in text:
            readers.add(str(path.relative_to(PACKAGE)))
    assert readers <= {"clock.py", "sandbox/clock.py"}
