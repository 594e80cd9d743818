"""An IOTPay ExpressPay v3 compatible gateway for development and tests, like stripe-mock.

Serves the same ``/v3/`` paths and JSON as IOTPay, with a card vault, test cards, signed notifies
with redelivery, fault switches, a settable clock and an admin API exposing the ledger of every
charge. Run it with ``billing sandbox`` or in-process with ``SandboxServer``; see
``docs/gateway.md``.
"""

from billing.sandbox import cards
from billing.sandbox.clock import SettableClock, ShiftedClock
from billing.sandbox.core import Sandbox
from billing.sandbox.faults import Faults
from billing.sandbox.ledger import LedgerOrder, LedgerRefund, LedgerView
from billing.sandbox.merchants import DEFAULT_MERCHANT, Merchant, parse_merchant
from billing.sandbox.notifier import DeliveryAttempt, NotifyPolicy
from billing.sandbox.processor import SettleRule
from billing.sandbox.server import SandboxServer

__all__ = [
    "DEFAULT_MERCHANT",
    "DeliveryAttempt",
    "Faults",
    "LedgerOrder",
    "LedgerRefund",
    "LedgerView",
    "Merchant",
    "NotifyPolicy",
    "Sandbox",
    "SandboxServer",
    "SettableClock",
    "SettleRule",
    "ShiftedClock",
    "cards",
    "parse_merchant",
]
