"""The project's exception tree, so callers can branch on what went wrong.

    BillingError                 root of every error this package raises on purpose
    ├── UserError                input the user can fix; the CLI prints one line, exit 2
    │   ├── ConfigError          settings or config file are invalid
    │   ├── FileProblems         a user's file is invalid; carries every problem, with locations
    │   │   └── CatalogError     plan YAML is invalid
    │   ├── InvalidInput         a command argument or field is invalid
    │   ├── NotFound             a referenced customer, plan, invoice... does not exist
    │   └── Conflict             the request contradicts stored state (duplicate id, wrong status)
    └── GatewayError             talking to the payment gateway failed (see billing.gateway.errors)

A declined card is not an exception: it is an outcome recorded on the payment attempt.
"""

from __future__ import annotations

from dataclasses import dataclass


class BillingError(Exception):
    """Root of every error raised on purpose by this package."""


class UserError(BillingError):
    """Input the user can correct; never shown with a traceback."""


class ConfigError(UserError):
    """Settings are invalid."""


class InvalidInput(UserError):
    """An argument or field is invalid."""


class NotFound(UserError):
    """A referenced record does not exist."""


class Conflict(UserError):
    """The request contradicts stored state."""


@dataclass(frozen=True)
class Problem:
    """One located mistake in a user's file: ``file:line: path: message``."""

    file: str
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class FileProblems(UserError):
    """A file the user gave is invalid; ``problems`` lists every mistake found, not only the first,
    so one run shows everything to fix."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class CatalogError(FileProblems):
    """The plan catalog is invalid."""


class GatewayError(BillingError):
    """Root of payment-gateway failures; subclasses say whether retrying is safe."""
