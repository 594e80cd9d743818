"""Customer email templates in English and French, rendered with Jinja (autoescape +
``StrictUndefined``).

Each email is three files under ``email/<locale>/``: ``<name>.subject.j2`` (one line),
``<name>.txt.j2`` (the plain-text part) and ``<name>.html.j2`` (the HTML part, which extends
``email/layout.html.j2``: inline styles, because mail clients drop ``<style>`` blocks, and the
merchant's name, logo and address in the footer). A locale without its own copy of a file falls
back to ``en``. A merchant's ``BILLING_TEMPLATES_DIR`` overrides any file by the same path
(``<dir>/email/fr/receipt...``): the merchant's folder is searched first.

Callers pass ready-made strings: money and dates formatted by Babel in the customer's locale
(``billing.documents.formatting.Formatter``), masked card numbers, signed links. Templates never
compute, so the same context always renders the same email. ``StrictUndefined`` makes a missing
key fail loudly instead of printing an empty string, and ``render_email`` checks the documented
keys first so the error names all of them at once.

Required context keys (every template also needs ``merchant_name`` and ``customer_name``) are
``REQUIRED_KEYS`` below. A value that may be ``None`` (``next_retry``, ``card_number`` of a
trial or refund) leaves its line out.

Emails are queued inside the transaction of the change that causes them (a payment settling),
so a broken *override* must not undo that change: it is logged and the shipped template is used
(``billing emails preview`` shows a merchant the error before it matters). A broken shipped
template is a bug and raises ``TemplateError``.

Bump ``TEMPLATE_VERSION`` whenever any template's wording changes: each outbox row records the
version its email was rendered with, so a support question can be answered with the exact text.
"""

from __future__ import annotations

import logging
import re
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from jinja2 import (
    BaseLoader,
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    PackageLoader,
    StrictUndefined,
    TemplateNotFound,
    TemplateSyntaxError,
    select_autoescape,
)
from jinja2 import TemplateError as JinjaTemplateError

from billing.domain.dunning import FinalAction
from billing.errors import BillingError, UserError

log = logging.getLogger(__name__)
_LINE_BREAKS = re.compile(r"[ \t\r\n]+")

TEMPLATE_VERSION = "2026.2"
DEFAULT_LOCALE = "en"
LOCALES = ("en", "fr")
PARTS = ("subject", "txt", "html")

_COMMON = ("merchant_name", "customer_name")
_DUNNING = ("amount", "invoice_number", "update_card_url", "pay_url")
REQUIRED_KEYS: dict[str, frozenset[str]] = {
    name: frozenset((*_COMMON, *keys))
    for name, keys in {
        "payment_failed": (*_DUNNING, "reason", "next_retry"),
        "reminder": (*_DUNNING, "due_date"),
        "final_notice": (*_DUNNING, "final_action", "final_date"),
        "card_expiring": ("card_number", "expiry", "update_card_url"),
        "payment_succeeded": ("amount", "invoice_number", "period", "paid_date", "card_number"),
        "subscription_canceled": ("plan_name", "canceled_date"),
        "trial_ending": ("plan_name", "trial_end_date", "amount", "card_number"),
        "refund_issued": ("amount", "invoice_number", "credit_note_number", "refund_date",
                          "card_number"),
        "plan_changed": ("old_plan", "new_plan", "effective_date", "amount", "immediate"),
    }.items()
}
TEMPLATES = tuple(REQUIRED_KEYS)

# Values a template branches on; anything else would silently pick the wrong paragraph.
_CHOICES: dict[str, dict[str, frozenset[object]]] = {
    "final_notice": {"final_action": frozenset(a.value for a in FinalAction)},
    "plan_changed": {"immediate": frozenset({True, False})},
}


class TemplateError(BillingError):
    """An email could not be rendered: unknown template, missing or invalid context."""


class OverrideError(UserError):
    """A merchant's own template (``BILLING_TEMPLATES_DIR``) failed: theirs to fix (exit 2)."""


@dataclass(frozen=True)
class Sender:
    """Who the email is from, for the HTML footer: the merchant's identity from settings."""

    name: str
    legal_name: str = ""
    address: tuple[str, ...] = ()
    email: str = ""
    logo: str | None = None
    """An ``https:`` URL or a ``data:`` URI of the logo; ``None`` prints the name instead."""

    def __post_init__(self) -> None:
        if not self.legal_name:
            object.__setattr__(self, "legal_name", self.name)


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str
    template_version: str


@cache
def environment(templates_dir: Path | None = None) -> Environment:
    """The Jinja environment: the merchant's override folder first, then the shipped files.

    Autoescape is on for HTML (``*.html.j2``) and off for plain text and subjects, where ``&``
    must stay ``&``.
    """
    loaders: list[BaseLoader] = []
    if templates_dir is not None:
        loaders.append(FileSystemLoader(str(templates_dir)))
    loaders.append(PackageLoader("billing", "templates"))
    return Environment(
        loader=ChoiceLoader(loaders),
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
    """Candidate file names for one part (``subject``, ``txt``, ``html``), the locale's first."""
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
                f"email template {template!r}: {key} must be one of "
                f"{sorted(allowed, key=str)}, got {context[key]!r}")


def _render(env: Environment, template: str, locale: str,
            context: Mapping[str, object]) -> RenderedEmail:
    parts = [env.select_template(template_files(template, locale, part)).render(context)
             for part in PARTS]
    # One line; only ASCII whitespace folds: Babel's non-breaking spaces (``29,00 $CA``) stay.
    subject = _LINE_BREAKS.sub(" ", parts[0]).strip(" ")
    return RenderedEmail(subject, parts[1], parts[2], TEMPLATE_VERSION)


def render_email(
    template: str, context: Mapping[str, object], *, locale: str = DEFAULT_LOCALE,
    sender: Sender | None = None, templates_dir: Path | None = None, strict: bool = False,
) -> RenderedEmail:
    """Subject, text and HTML of ``template`` in ``locale`` (falling back to ``en``).

    With ``templates_dir`` the merchant's files come first; if one of them fails, the shipped
    templates are used and the failure logged, unless ``strict`` (the preview command), which
    raises it.
    """
    check_context(template, context)
    full = {**context, "locale": locale if locale in LOCALES else DEFAULT_LOCALE,
            "sender": sender or Sender(str(context["merchant_name"]))}
    locale = str(full["locale"])
    if templates_dir is not None:
        try:
            return _render(environment(templates_dir), template, locale, full)
        except Exception as exc:
            # Not only Jinja's errors: a file saved in Latin-1 (UnicodeDecodeError), ``1//0``
            # or a filter on the wrong type raise plain Python errors, and this render runs
            # inside the transaction of a payment the gateway already took.
            if strict:
                raise OverrideError(f"your template for {template!r} ({locale}) failed: "
                                    f"{_why(exc)}") from exc
            log.error("the override of email %s (%s) failed in %s (%s); the shipped template "
                      "was used", template, locale, _override_file(exc, templates_dir),
                      _log_reason(exc))
    try:
        return _render(environment(None), template, locale, full)
    except JinjaTemplateError as exc:
        raise TemplateError(f"email template {template!r}: {_why(exc)}") from exc


def _why(exc: Exception) -> str:
    """The error for the merchant's own eyes (``billing emails preview``): where and what."""
    if isinstance(exc, TemplateNotFound):
        return f"missing file {exc.name}"
    if isinstance(exc, TemplateSyntaxError):
        return f"{exc.filename or exc.name}:{exc.lineno}: {exc.message}"
    where = _j2_frame(exc)
    message = exc.message if isinstance(exc, JinjaTemplateError) else None
    return f"{where + ': ' if where else ''}{message or f'{type(exc).__name__}: {exc}'}"


def _log_reason(exc: Exception) -> str:
    """What the log may say: Jinja's own message names the template's fault (an undefined
    name, a syntax error); any other error's message may quote the values it was given (the
    customer's data), so only its class is logged."""
    if isinstance(exc, JinjaTemplateError):
        return f"{type(exc).__name__}: {_why(exc)}"
    return type(exc).__name__


def _j2_frame(exc: BaseException) -> str | None:
    """``file:line`` of the innermost template frame of the traceback, if any."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.endswith(".j2")]
    return f"{frames[-1].filename}:{frames[-1].lineno}" if frames else None


def _override_file(exc: Exception, templates_dir: Path) -> str:
    """Which of the merchant's files failed, for the log: the template frame or the file named
    by a syntax error; a file that could not even be read (wrong encoding) names no frame, so
    the folder's files that are not UTF-8 are named, or the folder itself."""
    if isinstance(exc, TemplateSyntaxError) and exc.filename:
        return str(exc.filename)
    if isinstance(exc, TemplateNotFound):
        return f"{templates_dir} ({exc.name})"
    if isinstance(exc, UnicodeDecodeError):
        unreadable = [str(f) for f in sorted(templates_dir.rglob("*.j2")) if not _utf8(f)]
        return ", ".join(unreadable) or str(templates_dir)
    return _j2_frame(exc) or str(templates_dir)


def _utf8(path: Path) -> bool:
    try:
        path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    return True
