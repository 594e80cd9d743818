"""Rendering a document with the templates of its version, a merchant's overrides first.

Every document names its template version (``InvoiceDocument.template_version``). The templates
of version ``v1`` are the files under ``templates/v1/`` of this package; a file with the same
path under ``BILLING_TEMPLATES_DIR`` (``<dir>/v1/invoice.html.j2``) replaces the shipped one, file
by file, for that version only: an override written for v1 never leaks into v2, whose context
may differ. A version this installation does not have is an error naming it, never a fallback:
a document must look the way it was issued.

A mistake in a merchant's template (bad syntax, a name the context lacks) is the user's to fix:
it is reported as ``file:line: why`` and the command exits 2. The same in a shipped template is
a bug (``DocumentError``, exit 1).
"""

from __future__ import annotations

import re
import traceback
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    StrictUndefined,
    TemplateError,
    TemplateNotFound,
    TemplateSyntaxError,
    select_autoescape,
)

from billing.documents.formatting import LOCALES, Formatter
from billing.documents.merchant import Merchant
from billing.errors import BillingError, FileProblems, InvalidInput, Problem
from billing.services.documents import CreditNoteDocument, CustomerParty, InvoiceDocument

FORMATS = ("html", "txt", "pdf")
SHIPPED = Path(__file__).resolve().parent / "templates"
VERSION = re.compile(r"v[0-9]{1,4}")
"""Template versions are ``v1``, ``v2``...: a recorded version is also a folder name, so nothing
else (``../``) may pass."""


class DocumentError(BillingError):
    """A shipped template could not render a document: a bug, reported with its place."""


@cache
def environment(version: str, templates_dir: Path | None) -> Environment:
    """The Jinja environment of one template version: the merchant's folder, then ours."""
    folders = [templates_dir / version] if templates_dir is not None else []
    folders.append(SHIPPED / version)
    return Environment(
        loader=ChoiceLoader([FileSystemLoader(str(f)) for f in folders]),
        autoescape=select_autoescape(enabled_extensions=("html", "html.j2"),
                                     disabled_extensions=("txt", "txt.j2"),
                                     default_for_string=True, default=True),
        undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def has_version(version: str, templates_dir: Path | None) -> bool:
    return bool(VERSION.fullmatch(version)) and any(
        (base / version).is_dir() for base in (templates_dir, SHIPPED) if base is not None)


def _where(exc: BaseException) -> tuple[str | None, int | None]:
    """The template file and line a rendering error happened at (Jinja maps its frames)."""
    if isinstance(exc, TemplateSyntaxError):
        return exc.filename, exc.lineno
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.endswith(".j2")]
    return (frames[-1].filename, frames[-1].lineno) if frames else (None, None)


def _failure(exc: TemplateError, name: str, version: str,
             templates_dir: Path | None) -> BillingError:
    file, line = _where(exc)
    why = exc.message or str(exc)
    if file is not None and templates_dir is not None and Path(file).resolve().is_relative_to(
            templates_dir.resolve()):
        return FileProblems([Problem(file, line, "", why)])
    return DocumentError(f"template {version}/{name} failed at {file}:{line}: {why}")


def render(kind: str, fmt: str, version: str, context: dict[str, Any],
           merchant: Merchant) -> bytes:
    """Render ``kind`` (``invoice``, ``credit_note``) as ``fmt`` with ``version``'s templates."""
    if fmt not in FORMATS:
        raise InvalidInput(f"--format must be one of {', '.join(FORMATS)} (got {fmt!r})")
    if not has_version(version, merchant.templates_dir):
        raise DocumentError(f"this document was issued with templates {version!r}, which this "
                            "installation does not have; install the release that has them")
    name = f"{kind}.{'txt' if fmt == 'txt' else 'html'}.j2"
    env = environment(version, merchant.templates_dir)
    try:
        text = env.get_template(name).render(context)
    except TemplateNotFound as exc:
        raise DocumentError(f"templates {version} have no {exc.name}") from exc
    except TemplateError as exc:
        raise _failure(exc, name, version, merchant.templates_dir) from exc
    if fmt == "pdf":
        from billing.documents.pdf import html_to_pdf  # WeasyPrint is slow to import

        return html_to_pdf(text)
    return text.encode("utf-8")


def _locale(customer: CustomerParty, locale: str | None) -> str:
    chosen = locale or customer.locale
    if chosen not in LOCALES:
        raise InvalidInput(f"--locale must be one of {', '.join(LOCALES)} (got {chosen!r})")
    return chosen


def _context(customer: CustomerParty, currency: str, merchant: Merchant,
             locale: str, **docs: object) -> dict[str, Any]:
    f = Formatter(locale, currency, customer.timezone)
    helpers: dict[str, Callable[..., str]] = {"money": f.money, "day": f.day,
                                              "last_day": f.last_day, "percent": f.percent}
    return {"merchant": merchant, "customer": customer, "locale": locale, **helpers, **docs}


def render_invoice(doc: InvoiceDocument, merchant: Merchant, fmt: str,
                   locale: str | None = None) -> bytes:
    """The invoice in the customer's locale (or ``locale``), with its own template version."""
    chosen = _locale(doc.customer, locale)
    return render("invoice", fmt, doc.template_version,
                  _context(doc.customer, doc.currency, merchant, chosen, invoice=doc), merchant)


def render_credit_note(doc: CreditNoteDocument, merchant: Merchant, fmt: str,
                       locale: str | None = None) -> bytes:
    """The credit note, with the template version of the invoice it corrects."""
    chosen = _locale(doc.customer, locale)
    return render("credit_note", fmt, doc.template_version,
                  _context(doc.customer, doc.currency, merchant, chosen, note=doc,
                           invoice=doc.invoice), merchant)
