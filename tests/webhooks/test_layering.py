"""The webhooks room keeps its promises: pure apart from HTTP, a stdlib-only signature module a
merchant can copy, and a command that calls services, never the store."""

from __future__ import annotations

from pathlib import Path

import billing
from tests.test_architecture import _imports

PACKAGE = Path(billing.__file__).resolve().parent


def _reaches(path: Path, prefixes: tuple[str, ...]) -> set[str]:
    return {m for m in _imports(path) if any(m == p or m.startswith(p + ".") for p in prefixes)}


def test_the_webhooks_package_has_no_database_and_no_services() -> None:
    offenders = {f"{p.name}: {m}" for p in (PACKAGE / "webhooks").glob("*.py")
                 for m in _reaches(p, ("sqlalchemy", "billing.store", "billing.services"))}
    assert offenders == set()


def test_signing_uses_the_standard_library_only() -> None:
    assert _imports(PACKAGE / "webhooks" / "signing.py") == {"__future__", "hashlib", "hmac"}


def test_the_command_calls_services_never_the_store() -> None:
    path = PACKAGE / "cli" / "webhooks_cmd.py"
    assert _reaches(path, ("sqlalchemy", "billing.store")) == set()
    assert "billing.services.webhooks" in _imports(path)
