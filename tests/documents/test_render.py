"""Rendering documents: every template in both locales, strict; amounts by Babel; PDF text."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from pypdf import PdfReader

from billing.documents import DocumentError, render_credit_note, render_invoice
from billing.errors import InvalidInput
from tests.documents import samples

TOTAL = {"en": "CA$129.92", "fr": "129,92 $CA"}
"""12992 minor units as Babel writes CAD in each locale."""


def _plain(text: str) -> str:
    """Babel separates with no-break and narrow no-break spaces; PDFs may too."""
    return re.sub(r"[\u00a0\u202f]", " ", text)


@pytest.mark.parametrize("locale", ["en", "fr"])
@pytest.mark.parametrize("fmt", ["html", "txt"])
def test_every_invoice_template_renders_in_both_locales(locale: str, fmt: str) -> None:
    text = _plain(render_invoice(samples.invoice(locale), samples.merchant(), fmt)
                  .decode("utf-8"))
    assert "INV-0000007" in text and "Ann Lee" in text and TOTAL[locale] in text
    assert "KRWYB5-7-01-4NSGW0" in text and "P26030100000007" in text
    assert "625094******0014" in text and "123456789 RT0001" in text
    if locale == "fr":
        assert "TPS 5 %" in text and "TVQ 9,975 %" in text and "1 mars 2026" in text
        assert "facture" in text.lower() and "31 mars 2026" in text
    else:
        assert "GST 5%" in text and "QST 9.975%" in text and "March 1, 2026" in text
        assert "March 31, 2026" in text  # the period's last day, not the next period's first


@pytest.mark.parametrize("locale", ["en", "fr"])
@pytest.mark.parametrize("fmt", ["html", "txt"])
def test_every_credit_note_template_renders_in_both_locales(locale: str, fmt: str) -> None:
    text = _plain(render_credit_note(samples.credit_note(locale), samples.merchant(), fmt)
                  .decode("utf-8"))
    amount = {"en": "CA$50.00", "fr": "50,00 $CA"}[locale]
    assert "CN-0000003" in text and "INV-0000007" in text and amount in text
    assert "KRWYB5-R3-ZMGSHM" in text and "goodwill" in text
    assert ("note de crédit" if locale == "fr" else "credit note") in text.lower()


def test_the_customer_locale_is_the_default_and_locale_overrides_it() -> None:
    french = samples.invoice("fr")
    assert "FACTURE" in render_invoice(french, samples.merchant(), "txt").decode()
    assert "INVOICE" in render_invoice(french, samples.merchant(), "txt", "en").decode()
    with pytest.raises(InvalidInput, match="--locale must be one of en, fr"):
        render_invoice(french, samples.merchant(), "txt", "de")


def test_html_escapes_what_customers_typed() -> None:
    html = render_invoice(samples.invoice(name="<script>x</script> & Co"), samples.merchant(),
                          "html").decode()
    assert "<script>x" not in html and "&lt;script&gt;x&lt;/script&gt; &amp; Co" in html


def test_the_text_version_does_not_escape() -> None:
    text = render_invoice(samples.invoice(name="Lee & Co"), samples.merchant(), "txt").decode()
    assert "Lee & Co" in text


def test_a_logo_is_embedded_as_a_data_uri() -> None:
    uri = "data:image/png;base64,iVBORw0KGgo="
    html = render_invoice(samples.invoice(), samples.merchant(logo=uri), "html").decode()
    assert f'src="{uri}"' in html


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(InvalidInput, match="--format must be one of html, txt, pdf"):
        render_invoice(samples.invoice(), samples.merchant(), "docx")


@pytest.mark.parametrize("version", ["v9", "../v1", "v1/../v1", ""])
def test_a_version_this_installation_lacks_is_an_error_not_a_fallback(version: str) -> None:
    with pytest.raises(DocumentError, match="does not have"):
        render_invoice(samples.with_version(samples.invoice(), version), samples.merchant(),
                       "txt")


@pytest.mark.parametrize("locale", ["en", "fr"])
def test_the_pdf_holds_the_number_the_total_and_the_customer(locale: str) -> None:
    pdf = render_invoice(samples.invoice(locale), samples.merchant(), "pdf")
    assert pdf.startswith(b"%PDF-")
    text = _plain("".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages))
    assert "INV-0000007" in text and "Ann Lee" in text and TOTAL[locale] in text
    assert ("Facture" if locale == "fr" else "Invoice") in text


def test_a_credit_note_pdf_holds_its_number_and_amount() -> None:
    pdf = render_credit_note(samples.credit_note("fr"), samples.merchant(), "pdf")
    text = _plain("".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages))
    assert "CN-0000003" in text and "50,00 $CA" in text and "Ann Lee" in text


def test_a_pdf_never_fetches_anything_but_data_uris(tmp_path: Path) -> None:
    """A merchant template pointing at a file or a URL stops the PDF instead of reaching out."""
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"\x89PNG\r\n\x1a\n")
    (tmp_path / "v1").mkdir()
    (tmp_path / "v1" / "invoice.html.j2").write_text(f'<img src="file://{secret}">')
    with pytest.raises(InvalidInput, match="only embed data: URIs"):
        render_invoice(samples.invoice(), samples.merchant(templates_dir=tmp_path), "pdf")
