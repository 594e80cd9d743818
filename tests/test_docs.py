"""Documentation that must not drift from the code."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from billing.catalog.schema import PlanFile
from billing.domain.payments import render_table as attempt_table
from billing.domain.subscriptions import render_table
from billing.settings import ENV_NAMES

DOCS = Path(__file__).resolve().parent.parent / "docs"


def _field_paths(model: type[BaseModel], prefix: str = "") -> set[str]:
    paths: set[str] = set()
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        paths.add(path)
        annotation = info.annotation
        args = getattr(annotation, "__args__", ())
        for candidate in (annotation, *args):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                inner = f"{path}[]." if args and candidate is not annotation else f"{path}."
                paths |= _field_paths(candidate, inner)
    return paths


def test_every_plan_schema_field_is_documented() -> None:
    text = (DOCS / "plans.md").read_text()
    paths = _field_paths(PlanFile)
    missing = sorted(p for p in paths if f"`{p.split('].', 1)[-1]}`" not in text)
    assert "interval.unit" in {p.split("].", 1)[-1] for p in paths}
    assert missing == []


def test_every_setting_is_documented() -> None:
    text = (DOCS / "configuration.md").read_text()
    missing = sorted(env for env in ENV_NAMES.values() if f"`{env}`" not in text)
    assert missing == []


def test_the_what_happens_when_table_is_the_decision_table() -> None:
    """docs/operations.md prints the status x event table; regenerate it from
    ``billing.domain.subscriptions.render_table()`` when the table changes."""
    text = (DOCS / "operations.md").read_text()
    start, end = "<!-- what-happens-when:start -->\n", "\n<!-- what-happens-when:end -->"
    printed = text[text.index(start) + len(start):text.index(end)]
    assert printed == render_table()


def test_the_attempt_table_is_the_attempt_state_machine() -> None:
    text = (DOCS / "operations.md").read_text()
    start, end = "<!-- attempt-table:start -->\n", "\n<!-- attempt-table:end -->"
    printed = text[text.index(start) + len(start):text.index(end)]
    assert printed == attempt_table()
