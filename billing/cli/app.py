"""The root ``billing`` command and the one place exceptions become exit codes.

User mistakes (``UserError``, bad usage) print one line on stderr and exit 2; anything else is a
bug or an outage and exits 1 with one line, and only ``--debug`` shows the traceback.
"""

from __future__ import annotations

import io
import logging
import sys
import traceback
from typing import Annotated

import typer

from billing.cli import context
from billing.cli.output import error_line
from billing.errors import BillingError, FileProblems, UserError
from billing.gateway.masking import redact_pans

app = typer.Typer(
    name="billing",
    help="Recurring billing for UnionPay cards through IOTPay ExpressPay v3.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _set_now(value: str | None) -> None:
    if value is None:
        return
    try:
        context.state().set_now(value)
    except UserError as exc:
        raise typer.BadParameter(str(exc)) from None


@app.callback()
def root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks and debug logs.")] = False,
    now: Annotated[
        str | None,
        typer.Option("--now", help="Act as if it were this ISO 8601 instant, or +DURATION "
                     "from now like +30d (time travel; writes may not go back in time)."),
    ] = None,
    sandbox: Annotated[
        bool,
        typer.Option("--sandbox", envvar="BILLING_SANDBOX",
                     help="Use the in-process sandbox gateway and the sandbox's own data "
                     "(billing-sandbox.db unless BILLING_DATABASE_URL is set)."),
    ] = False,
) -> None:
    """Recurring billing for UnionPay cards through IOTPay ExpressPay v3."""
    state = context.state()
    state.debug = state.debug or debug
    if sandbox:
        state.use_sandbox()
    _set_now(now)


def _register_commands() -> None:
    """Add every command to ``app``, once per process: ``main`` runs many times in one test
    process, and registering again each time grew the command tree (and the time typer takes to
    build it) with every call."""
    from billing.cli import commands

    if app.registered_commands or app.registered_groups:
        return
    for module in commands.MODULES:
        module.register(app)


def command_path(args: list[str]) -> str:
    """The command ``args`` name, like ``subscriptions list``, read the way click will read it:
    root options are skipped (with their values), then group names lead to a command."""
    group: object = typer.main.get_command(app)
    takes_value = {opt for param in getattr(group, "params", ())
                   if not getattr(param, "is_flag", False) for opt in param.opts}
    names: list[str] = []
    pending_value = False
    for arg in args:
        if pending_value or arg.startswith("-"):
            pending_value = not pending_value and not names and arg in takes_value
            continue
        names.append(arg)
        group = getattr(group, "commands", {}).get(arg)
        if not hasattr(group, "commands"):
            break
    return " ".join(names)


def print_traceback() -> None:
    """``--debug``'s traceback of the exception being handled, card numbers masked: the message
    at its end is the same text the error line redacts."""
    sys.stderr.write(redact_pans(traceback.format_exc()))


def _is_usage_error(exc: Exception) -> bool:
    """A click/typer command-line error (bad option, missing argument...), whichever click."""
    return hasattr(exc, "show") and isinstance(getattr(exc, "exit_code", None), int)


def _invoke(args: list[str]) -> int:
    """Run the typer app and turn its own exits and usage errors into an exit code."""
    try:
        result = app(args=args, prog_name="billing", standalone_mode=False)
        return result if isinstance(result, int) else 0
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort:
        error_line("aborted")
        return 1
    except Exception as exc:
        if isinstance(exc, BillingError) or not _is_usage_error(exc):
            raise
        # Usage errors echo arguments back; a card number typed on the command line must not be.
        shown = io.StringIO()
        exc.show(file=shown)  # type: ignore[attr-defined]
        sys.stderr.write(redact_pans(shown.getvalue()))
        return int(exc.exit_code)  # type: ignore[attr-defined]


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the process exit code instead of raising."""
    args = list(sys.argv[1:] if argv is None else argv)
    context.reset_state()
    state = context.state()
    state.debug = "--debug" in args
    logging.basicConfig(level=logging.DEBUG if state.debug else logging.WARNING)
    try:
        _register_commands()
        state.command = command_path(args)
        return _invoke(args)
    except FileProblems as exc:
        for problem in exc.problems:
            error_line(str(problem))
        return 2
    except UserError as exc:
        if state.debug:
            print_traceback()
        error_line(str(exc))
        return 2
    except BillingError as exc:
        if state.debug:
            print_traceback()
        error_line(str(exc))
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if state.debug:
            print_traceback()
        error_line(f"internal error: {type(exc).__name__}: {exc} (run with --debug for details)")
        return 1
