"""``billing sandbox``: run the IOTPay-compatible sandbox gateway in the foreground.

Developers point the engine at it with ``IOTPAY_BASE_URL=http://127.0.0.1:8765/v3/`` and the dev
merchant (``10000701`` / ``sandbox-secret-key`` / ``sandbox``); no IOTPay credentials needed. It
runs until SIGINT or SIGTERM, then closes its sockets and exits 0. The global ``--now`` starts the
sandbox clock at that instant (it then runs forward in real time).
"""

from __future__ import annotations

import signal
import threading
from datetime import timedelta
from types import FrameType
from typing import Annotated

import typer

from billing.cli.context import state
from billing.cli.output import out
from billing.domain.timeutil import parse_duration
from billing.errors import ConfigError, InvalidInput
from billing.sandbox import DEFAULT_MERCHANT, NotifyPolicy, SandboxServer, SettleRule
from billing.sandbox.clock import ShiftedClock
from billing.sandbox.merchants import Merchant, parse_merchant


def _rate(flag: str, text: str) -> object:
    return typer.Option(flag, min=0.0, max=1.0, help=text)


def register(app: typer.Typer) -> None:
    @app.command("sandbox")
    def sandbox(
        host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
        port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port (0: any free).")] = 8765,
        merchant: Annotated[
            list[str] | None,
            typer.Option(
                "--merchant",
                help="A merchant as MCHID:MCHKEY:LOGINNAME, repeatable. "
                "Default: 10000701:sandbox-secret-key:sandbox (docs/gateway.md).",
            ),
        ] = None,
        seed: Annotated[int | None, typer.Option(help="Seed for reproducible faults.")] = None,
        latency_ms: Annotated[int, typer.Option(min=0, help="Delay before each call.")] = 0,
        error_500_rate: Annotated[float, _rate("--error-500-rate", "500 before processing.")] = 0.0,
        drop_rate: Annotated[
            float, _rate("--drop-after-charge-rate", "Process, then close with no response.")
        ] = 0.0,
        error_502_rate: Annotated[
            float, _rate("--error-502-after-charge-rate", "Process, then answer 502.")
        ] = 0.0,
        duplicate_rate: Annotated[
            float, _rate("--duplicate-notify-rate", "Send a notify twice.")
        ] = 0.0,
        delayed_rate: Annotated[
            float, _rate("--delayed-notify-rate", "Delay a notify by --notify-delay-ms.")
        ] = 0.0,
        notify_delay_ms: Annotated[
            int, typer.Option(min=0, help="Delay of delayed notifies, in ms.")
        ] = 500,
        reorder_rate: Annotated[
            float, _rate("--reorder-notify-rate", "Let the next notify overtake this one.")
        ] = 0.0,
        forged_rate: Annotated[
            float, _rate("--forged-notify-rate", "Also send a copy with a bad sign.")
        ] = 0.0,
        notify_attempts: Annotated[int, typer.Option(min=1, help="Deliveries per notify.")] = 6,
        notify_first_retry: Annotated[
            float, typer.Option(min=0.0, help="Seconds before the 2nd delivery; doubles after.")
        ] = 15.0,
        settle_after: Annotated[
            str, typer.Option(help="When a pending test card settles, on the sandbox clock.")
        ] = "2m",
    ) -> None:
        """Run an IOTPay-compatible sandbox gateway until interrupted (see docs/gateway.md)."""
        clock = ShiftedClock()
        now = state().now
        if now is not None:
            clock.set(now)
        policy = NotifyPolicy(max_attempts=notify_attempts, first_retry=notify_first_retry)
        server = SandboxServer(
            _merchants(merchant), host=host, port=port, clock=clock, seed=seed,
            notify_policy=policy, settle=SettleRule(after=_duration(settle_after)),
        )  # fmt: skip
        server.set_faults(
            latency_ms=latency_ms, error_500_rate=error_500_rate,
            drop_after_charge_rate=drop_rate, error_502_after_charge_rate=error_502_rate,
            duplicate_notify_rate=duplicate_rate, delayed_notify_rate=delayed_rate,
            notify_delay_ms=notify_delay_ms, reorder_notify_rate=reorder_rate,
            forged_notify_rate=forged_rate,
        )  # fmt: skip
        _serve(server)


def _merchants(specs: list[str] | None) -> list[Merchant]:
    return [parse_merchant(s) for s in specs] if specs else [DEFAULT_MERCHANT]


def _duration(text: str) -> timedelta:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise InvalidInput(f"--settle-after {exc}") from None


def _serve(server: SandboxServer) -> None:
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            server.start()
        except OSError as exc:
            where = f"{server.host}:{server.port}"
            raise ConfigError(f"cannot listen on {where}: {exc.strerror}") from None
        ids = ", ".join(f"{m.mch_id} (loginName {m.login_name})" for m in server.merchants.values())
        out.print(f"IOTPay sandbox on {server.base_url}  merchants: {ids}", highlight=False)
        out.print(f"admin: {server.root_url}/admin/ledger  (Ctrl-C to stop)", highlight=False)
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    out.print("sandbox stopped", highlight=False)
