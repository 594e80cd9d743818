"""Running the engine: ``billing run-once``, ``billing daemon``, ``billing serve``,
``billing simulate``."""

from __future__ import annotations

import logging
from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated

import typer

from billing.cli.context import runtime, state
from billing.cli.output import err, error_line, out, print_json, print_table
from billing.cli.params import SubscriptionFilter
from billing.daemon.logs import setup_logging
from billing.domain.timeutil import parse_duration
from billing.errors import InvalidInput
from billing.mail import transport_from_settings

if TYPE_CHECKING:
    from billing.daemon.ticks import PassReport

log = logging.getLogger("billing.cli")
SandboxOpt = Annotated[bool, typer.Option(
    "--sandbox", help="Use an in-process sandbox gateway instead of IOTPay (no credentials), "
    "and the sandbox's own data; the same as `billing --sandbox`.")]


def _receiver(rt: object) -> object:
    """The public listener (API, notifies, card returns) and, with BILLING_INTERNAL_PORT, the
    internal one for /healthz and /metrics (``billing.api.serving``)."""
    from billing.api.serving import http_servers
    from billing.bootstrap import Runtime

    assert isinstance(rt, Runtime)
    return http_servers(rt)


def _report_failures(report: PassReport) -> None:
    """Items a tick skipped are warnings (the pass ran; they back off and alert); a tick that
    could not run at all makes the pass fail: exit 1."""
    for item in report.failed_items:
        err.print(f"warning: {item} (skipped; retried after a backoff)", markup=False)
    for tick, why in report.errors.items():
        error_line(f"tick {tick} could not run: {why}")
    if report.errors:
        raise typer.Exit(1)
def _until(text: str, now: datetime) -> date:
    """``--until``: a date, or ``+DURATION`` from now, so examples stay true on any day."""
    raw = text.strip()
    try:
        return (now + parse_duration(raw[1:])).date() if raw.startswith("+") else \
            date.fromisoformat(raw)
    except (ValueError, OverflowError):
        raise InvalidInput(f"--until must be a date like 2026-12-31 or +DURATION like +90d "
                           f"(got {text!r})") from None


def register(app: typer.Typer) -> None:
    @app.command("run-once")
    def run_once(
        now: Annotated[str | None, typer.Option(
            "--now", help="Act as of this ISO instant or +DURATION (like the root --now).")]
        = None,
        sandbox: SandboxOpt = False,
        json_out: Annotated[bool, typer.Option("--json")] = False,
    ) -> None:
        """One pass of every tick as of now (or --now), then exit: cron mode and time travel."""
        from billing.daemon.ticks import run_once as one_pass

        st = state()
        if now is not None:
            st.set_now(now)
        with runtime(sandbox=sandbox) as rt:
            at = rt.deps.clock.now()
            report = one_pass(rt.deps, transport=transport_from_settings(rt.settings), at=at)
            rt.record_pass(at)
        summary = report.summary()
        if json_out:
            print_json(summary)
        else:
            print_table(f"Pass as of {summary['at']}", ["step", "result"],
                        [(k, v) for k, v in summary.items()
                         if k not in ("at", "failed_items", "failed_ticks")])
        _report_failures(report)

    @app.command("daemon")
    def daemon(
        sandbox: SandboxOpt = False,
        demo: Annotated[bool, typer.Option("--demo", help="With --sandbox: add demo customers.")]
        = False,
        tick_scale: Annotated[float, typer.Option(help="Multiply every tick interval.")] = 1.0,
        no_receiver: Annotated[bool, typer.Option("--no-receiver",
                                                  help="Don't serve /iotpay/notify here.")]
        = False,
    ) -> None:
        """Run until SIGTERM/SIGINT: renew, charge, reconcile, dunn, email, receive notifies."""
        from billing.daemon.runner import Daemon, Intervals

        st = state()
        if demo and not (sandbox or st.sandbox):
            raise InvalidInput("--demo needs --sandbox (demo cards exist only in the sandbox)")
        setup_logging(debug=st.debug)
        with runtime(sandbox=sandbox) as rt:
            if demo:
                from billing.demo import seed_demo

                log.info("demo customers created: %d", seed_demo(rt.deps, rt.settings.timezone))
            runner = Daemon(rt, transport_from_settings(rt.settings),
                            intervals=Intervals().scaled(tick_scale),
                            receiver=None if no_receiver else _receiver(rt))
            code = runner.run()
        raise typer.Exit(code)

    @app.command("serve")
    def serve(sandbox: SandboxOpt = False) -> None:
        """Serve only HTTP: the JSON API (/v1), notifies, card returns, health, metrics."""
        import threading

        st = state()
        setup_logging(debug=st.debug)
        with runtime(sandbox=sandbox) as rt:
            server = _receiver(rt)
            stop = threading.Event()
            import signal

            signal.signal(signal.SIGTERM, lambda *_: stop.set())
            signal.signal(signal.SIGINT, lambda *_: stop.set())
            server.start()  # type: ignore[attr-defined]
            out.print(f"receiver listening on {server.url}")  # type: ignore[attr-defined]
            if server.internal_url:  # type: ignore[attr-defined]
                out.print(f"/healthz and /metrics on {server.internal_url}")  # type: ignore[attr-defined]
            stop.wait()
            server.stop()  # type: ignore[attr-defined]

    @app.command("simulate")
    def simulate(
        until: Annotated[str, typer.Option(
            "--until", help="Last day to simulate: YYYY-MM-DD, or +DURATION like +90d.")],
        subscription: SubscriptionFilter = None,
        json_out: Annotated[bool, typer.Option("--json")] = False,
    ) -> None:
        """Forecast renewals, charges, retries and dunning until a date; changes nothing."""
        from billing.simulate import simulate as forecast

        st = state()
        last = _until(until, st.clock().now())
        rows = forecast(st.settings(), st.clock(), last, subscription=subscription)
        if json_out:
            print_json(rows)
        else:
            print_table(f"Forecast until {last} (nothing stored)",
                        ["date", "subscription", "customer", "what", "detail"],
                        [(r["date"], r["subscription"], r["customer"], r["what"], r["detail"])
                         for r in rows])
