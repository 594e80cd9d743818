"""``billing report``: the merchant's report for a range of local dates, as HTML, CSV or JSON.

Without ``--email`` the command only reads, so any ``--now`` is accepted (a report as of an
earlier instant); ``--email`` and ``--scheduled`` queue an email and are held to the same ``--now``
rule as every command that writes. ``--scheduled`` is the daemon's report tick for deployments
that run ``billing run-once`` from cron instead of the daemon.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from billing.cli.context import open_store, state
from billing.cli.output import out
from billing.errors import InvalidInput
from billing.reports import build_report, report_range
from billing.reports.delivery import enqueue_report
from billing.reports.period import parse_day, previous_month
from billing.reports.render import FORMATS, render
from billing.reports.schedule import ReportSchedule, queue_due_reports


def _format(fmt: str | None, output: Path | None) -> str:
    """``--format``, else the output file's suffix when it names one, else HTML."""
    if fmt is None:
        suffix = output.suffix.lstrip(".").lower() if output is not None else ""
        return suffix if suffix in FORMATS else "html"
    if fmt.lower() not in FORMATS:
        raise InvalidInput(f"--format must be one of {', '.join(FORMATS)} (got {fmt!r})")
    return fmt.lower()


def _write(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot write {path}: {exc.strerror or exc}") from None


def _scheduled(conflicting: bool) -> None:
    if conflicting:
        raise InvalidInput("--scheduled decides the range and the recipient itself: "
                           "use it without --from, --to, --format, --output and --email")
    st = state()
    store = open_store()
    try:
        at = st.clock().now()
        summary = queue_due_reports(store, ReportSchedule.of(st.settings()), at=at)
    finally:
        store.close()
    out.print("\n".join(f"queued {key}" for key in summary.queued) or "no report to queue")


def register(app: typer.Typer) -> None:
    @app.command("report")
    def report(
        first: Annotated[str | None, typer.Option(
            "--from", help="First local date (YYYY-MM-DD, BILLING_TIMEZONE), inclusive; "
            "default: the 1st of last month.")] = None,
        last: Annotated[str | None, typer.Option(
            "--to", help="Last local date, inclusive; default: the last day of last month.")]
        = None,
        fmt: Annotated[str | None, typer.Option(
            "--format", help="html, csv or json (default: from --output's suffix, else html).")]
        = None,
        output: Annotated[Path | None, typer.Option(
            "--output", "-o", help="Write the report to this file instead of stdout.")] = None,
        email: Annotated[bool, typer.Option(
            "--email", help="Queue the report to BILLING_MERCHANT_EMAIL through the outbox.")]
        = False,
        scheduled: Annotated[bool, typer.Option(
            "--scheduled", help="Queue the reports due today (the 1st: last month; Mondays "
            "with BILLING_REPORT_WEEKLY: last week) unless queued already: the daemon's "
            "report tick, for cron.")] = False,
    ) -> None:
        """Invoices, cash, MRR and its movements, dunning recovery and aging for a range."""
        if scheduled:
            _scheduled(any(v is not None for v in (first, last, fmt, output)) or email)
            return
        st = state()
        settings, at = st.settings(), st.clock().now()
        kind = _format(fmt, output)
        default_first, default_last = previous_month(at, settings.timezone)
        rng = report_range(parse_day(first, "--from") if first else default_first,
                           parse_day(last, "--to") if last else default_last,
                           settings.timezone, at)
        store = open_store(reading=not email)
        try:
            built = build_report(store, rng)
            queued = enqueue_report(
                store, built, to=settings.merchant_email, merchant=settings.merchant_name,
                title=f"billing report, {rng.label}", at=at,
                dedupe_key=f"report:manual:{rng.label}:{at.isoformat()}") if email else None
        finally:
            store.close()
        text = render(built, kind, merchant=settings.merchant_name)
        if output is not None:
            _write(output, text)
            out.print(f"wrote {output} ({kind}, {rng.label})")
        elif not email:
            typer.echo(text, nl=False)
        if email:
            out.print(f"queued report email #{queued} to {settings.merchant_email}"
                      if queued is not None else "this report email is queued already")
