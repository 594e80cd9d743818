"""Customer email templates, versioned, rendered with Jinja (autoescape + ``StrictUndefined``).

Each email is two files under ``email/<locale>/``: ``<name>.subject.j2`` (one line) and
``<name>.txt.j2`` (the plain-text body). A locale without its own copy of a template falls back to
``en``, so French templates can be added file by file later without touching callers.

Callers pass ready-made strings: money formatted with ``Money.format()``, dates formatted for the
customer, masked card numbers. Templates never compute, so the same context always renders the same
email. ``StrictUndefined`` makes a missing key fail loudly instead of printing an empty string, and
``render_email`` checks the documented keys first so the error names all of them at once.

Required context keys (every template also needs ``merchant_name`` and ``customer_name``):

* ``payment_failed`` - ``amount``, ``invoice_number``, ``reason``, ``next_retry`` (a date, or
  ``None`` when no retry is scheduled), ``update_card_url``.
* ``reminder`` - ``amount``, ``invoice_number``, ``due_date``, ``update_card_url``.
* ``final_notice`` - ``amount``, ``invoice_number``, ``final_action`` (``cancel``, ``mark_unpaid``
  or ``leave_past_due``), ``final_date``, ``update_card_url``.
* ``card_expiring`` - ``card_number`` (masked), ``expiry`` (e.g. ``04/2026``), ``update_card_url``.
* ``payment_succeeded`` - ``amount``, ``invoice_number``, ``period``, ``paid_date``,
  ``card_number`` (masked).

Bump ``TEMPLATE_VERSION`` whenever any template's wording changes: invoices record the version
their emails were rendered with, so a support question can be answered with the exact text sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

from jinja2 import (
    Environment,
    PackageLoader,
    StrictUndefined,
    TemplateNotFound,
    UndefinedError,
    select_autoescape,
)

from billing.domain.dunning import FinalAction
from billing.errors import BillingError

TEMPLATE_VERSION = "2026.1"
DEFAULT_LOCALE = "en"
LOCALES = ("en", "fr")

_COMMON = ("merchant_name", "customer_name")
REQUIRED_KEYS: dict[str, frozenset[str]] = {
    name: frozenset((*_COMMON, *keys))
    for name, keys in {
        "payment_failed": ("amount", "invoice_number", "reason", "next_retry", "update_card_url"),
        "reminder": ("amount", "invoice_number", "due_date", "update_card_url"),
        "final_notice": ("amount", "invoice_number", "final_action", "final_date",
                         "update_card_url"),
        "card_expiring": ("card_number", "expiry", "update_card_url"),
        "payment_succeeded": ("amount", "invoice_number", "period", "paid_date", "card_number"),
    }.items()
}
TEMPLATES = tuple(REQUIRED_KEYS)

# Values a template branches on; anything else would silently pick the wrong paragraph.
_CHOICES: dict[str, dict[str, frozenset[str]]] = {
    "final_notice": {"final_action": frozenset(a.value for a in FinalAction)},
}


class TemplateError(BillingError):
    """An email could not be rendered: unknown template, missing or invalid context. A bug."""


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    template_version: str


@cache
def environment() -> Environment:
    """The one Jinja environment: templates shipped inside the package, strict and escaped.

    Autoescape is on for HTML/XML templates (``*.html.j2`` for the rich emails to come) and off
    for plain text, where ``&`` must stay ``&``.
    """
    return Environment(
        loader=PackageLoader("billing", "templates"),
        autoescape=select_autoescape(
            enabled_extensions=("html", "htm", "xml", "html.j2", "htm.j2", "xml.j2"),
            disabled_extensions=("txt", "txt.j2", "subject.j2"),
            default_for_string=True,
            default=True,
        ),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def template_files(template: str, locale: str, part: str) -> list[str]:
    """Candidate file names for one part (``subject`` or ``txt``), the locale's first."""
    names = [f"email/{locale}/{template}.{part}.j2"]
    if locale != DEFAULT_LOCALE:
        names.append(f"email/{DEFAULT_LOCALE}/{template}.{part}.j2")
    return names


def check_context(template: str, context: Mapping[str, object]) -> None:
    """Raise ``TemplateError`` for an unknown template, missing keys or an invalid choice."""
    required = REQUIRED_KEYS.get(template)
    if required is None:
        raise TemplateError(f"unknown email template {template!r}; known: {', '.join(TEMPLATES)}")
    missing = sorted(required - context.keys())
    if missing:
        raise TemplateError(f"email template {template!r} needs {', '.join(missing)}")
    for key, allowed in _CHOICES.get(template, {}).items():
        if context[key] not in allowed:
            raise TemplateError(
                f"email template {template!r}: {key} must be one of {sorted(allowed)}, "
                f"got {context[key]!r}")


def render_email(
    template: str, context: Mapping[str, object], *, locale: str = DEFAULT_LOCALE
) -> RenderedEmail:
    """Render subject and plain-text body of ``template`` in ``locale`` (falling back to ``en``)."""
    check_context(template, context)
    env = environment()
    try:
        subject = env.select_template(template_files(template, locale, "subject")).render(context)
        text = env.select_template(template_files(template, locale, "txt")).render(context)
    except TemplateNotFound as exc:
        raise TemplateError(f"email template {template!r} is missing a file: {exc}") from exc
    except UndefinedError as exc:
        raise TemplateError(f"email template {template!r}: {exc}") from exc
    return RenderedEmail(" ".join(subject.split()), text, TEMPLATE_VERSION)
