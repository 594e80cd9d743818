"""``billing emails preview KIND``: a customer email rendered from sample data, as the engine
would send it, with the merchant's identity and template overrides from settings.

Useful before changing a template in ``BILLING_TEMPLATES_DIR``: a mistake in the merchant's
file is shown as ``file:line: why`` and exits 2 (the engine itself would fall back to the
shipped template and log it). docs/images/make-email-png.sh turns the HTML into the picture in
docs/emails.md.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from billing.cli.context import state
from billing.errors import InvalidInput
from billing.settings import Settings
from billing.templates import LOCALES, TEMPLATES, RenderedEmail, Sender, render_email
from billing.templates.samples import sample_context

FORMATS = ("html", "txt")


def sender_of(settings: Settings) -> Sender:
    address = tuple(settings.merchant_address.splitlines()) if settings.merchant_address else ()
    return Sender(settings.merchant_name, settings.merchant_legal_name or "", address,
                  settings.merchant_email, settings.email_logo_url)


def preview(settings: Settings, kind: str, locale: str) -> RenderedEmail:
    """``kind`` in ``locale`` from sample data; a bad kind or locale is a one-line error."""
    if kind not in TEMPLATES:
        raise InvalidInput(f"unknown email {kind!r}; known: {', '.join(TEMPLATES)}")
    if locale not in LOCALES:
        raise InvalidInput(f"--locale must be one of {', '.join(LOCALES)} (got {locale!r})")
    return render_email(kind, sample_context(kind, locale, settings.merchant_name),
                        locale=locale, sender=sender_of(settings),
                        templates_dir=settings.templates_dir, strict=True)


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Customer emails: preview what each kind looks like.",
                        no_args_is_help=True)

    @group.command("preview")
    def preview_cmd(
        kind: Annotated[str, typer.Argument(help=f"One of: {', '.join(TEMPLATES)}.")],
        locale: Annotated[str, typer.Option(help="en or fr.")] = "en",
        fmt: Annotated[str, typer.Option("--format", help="html or txt.")] = "html",
        output: Annotated[Path | None, typer.Option(
            help="Write to this file instead of standard output.")] = None,
    ) -> None:
        """Render one email kind from sample data, with your templates and identity."""
        if fmt not in FORMATS:
            raise InvalidInput(f"--format must be one of {', '.join(FORMATS)} (got {fmt!r})")
        email = preview(state().settings(), kind, locale)
        body = email.html if fmt == "html" else f"Subject: {email.subject}\n\n{email.text}"
        if output is None:
            sys.stdout.write(body)
            return
        try:
            output.write_text(body, encoding="utf-8")
        except OSError as exc:
            raise InvalidInput(f"cannot write {output}: {exc.strerror or exc}") from None
        print(f"wrote {output}")

    app.add_typer(group, name="emails")
