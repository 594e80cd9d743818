"""Invoices and credit notes rendered for people: HTML, plain text and PDF, in English or French.

The use cases in ``billing.services.documents`` read what a document shows; this package only
presents it. Templates are Jinja files shipped under ``templates/<version>/`` (autoescape on for
HTML, ``StrictUndefined`` everywhere, so a missing value is an error, never a blank), and each
document renders with the version recorded on its invoice (``billing.domain.invoices.
DOCUMENT_VERSION`` when it was issued). A merchant's ``BILLING_TEMPLATES_DIR`` overrides any
file by its path relative to ``templates/``. Amounts and dates are formatted by Babel in the
customer's locale; the PDF is WeasyPrint's rendering of the HTML.
"""

from __future__ import annotations

from billing.documents.merchant import Merchant, merchant_from_settings
from billing.documents.render import FORMATS, DocumentError, render_credit_note, render_invoice

__all__ = ["FORMATS", "DocumentError", "Merchant", "merchant_from_settings",
           "render_credit_note", "render_invoice"]
