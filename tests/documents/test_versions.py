"""An invoice renders with the template version it was issued with; merchants override by path.

The test-only folder plays a later release that added ``v2``: v1 invoices must still render
exactly with v1, a v2 invoice with v2, and a merchant's override of v1 must not reach v2.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from billing.documents import render_invoice
from billing.documents.render import SHIPPED
from billing.errors import FileProblems
from tests.documents import samples

V2 = "V2 LAYOUT {{ invoice.number }} {{ money(invoice.total) }}\n"


@pytest.fixture
def later_release(tmp_path: Path) -> Path:
    """Templates of a hypothetical v2, in a templates folder (the loader reads both alike)."""
    (tmp_path / "v2").mkdir()
    (tmp_path / "v2" / "invoice.txt.j2").write_text(V2)
    return tmp_path


def test_a_v1_invoice_renders_with_v1_after_v2_is_added(later_release: Path) -> None:
    merchant = samples.merchant(templates_dir=later_release)
    v1 = render_invoice(samples.invoice(), merchant, "txt").decode()
    assert v1 == render_invoice(samples.invoice(), samples.merchant(), "txt").decode()
    assert "V2 LAYOUT" not in v1 and "Template v1" in v1


def test_a_v2_invoice_renders_with_v2(later_release: Path) -> None:
    merchant = samples.merchant(templates_dir=later_release)
    doc = samples.with_version(samples.invoice(), "v2")
    assert render_invoice(doc, merchant, "txt").decode() == "V2 LAYOUT INV-0000007 CA$129.92\n"


def test_a_merchant_file_replaces_the_shipped_one_of_its_version_only(tmp_path: Path) -> None:
    (tmp_path / "v1").mkdir()
    (tmp_path / "v1" / "invoice.txt.j2").write_text("OURS {{ invoice.number }}\n")
    (tmp_path / "v2").mkdir()
    (tmp_path / "v2" / "invoice.txt.j2").write_text(V2)
    merchant = samples.merchant(templates_dir=tmp_path)
    assert render_invoice(samples.invoice(), merchant, "txt") == b"OURS INV-0000007\n"
    assert render_invoice(samples.with_version(samples.invoice(), "v2"), merchant,
                          "txt").startswith(b"V2 LAYOUT")
    # Files not overridden still come from the package: the HTML layout, the words.
    assert b"Maple Cloud Software Inc." in render_invoice(samples.invoice(), merchant, "html")


def test_overriding_only_the_words_changes_the_labels(tmp_path: Path) -> None:
    words = (SHIPPED / "v1" / "words" / "en.j2").read_text()
    (tmp_path / "v1" / "words").mkdir(parents=True)
    (tmp_path / "v1" / "words" / "en.j2").write_text(words.replace('"Invoice"', '"Tax invoice"'))
    html = render_invoice(samples.invoice(), samples.merchant(templates_dir=tmp_path), "html")
    assert b"<h1>Tax invoice</h1>" in html


def test_a_syntax_error_in_a_merchant_template_names_its_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "v1").mkdir()
    bad = tmp_path / "v1" / "invoice.txt.j2"
    bad.write_text("line one\n{% if invoice.total %}\nno endif\n")
    with pytest.raises(FileProblems) as info:
        render_invoice(samples.invoice(), samples.merchant(templates_dir=tmp_path), "txt")
    [problem] = info.value.problems
    assert problem.file == str(bad) and problem.line == 3 and "endif" in problem.message


def test_a_name_missing_from_the_context_is_an_error_not_a_blank(tmp_path: Path) -> None:
    (tmp_path / "v1").mkdir()
    bad = tmp_path / "v1" / "invoice.txt.j2"
    bad.write_text("{{ invoice.number }}\n{{ invoice.po_number }}\n")
    with pytest.raises(FileProblems) as info:
        render_invoice(samples.invoice(), samples.merchant(templates_dir=tmp_path), "txt")
    [problem] = info.value.problems
    assert (problem.file, problem.line) == (str(bad), 2) and "po_number" in problem.message
