"""``Sandbox``: the gateway's state and behaviour wired together, with no sockets of its own.

It owns the clock, the fault dice, the ``Processor`` (books) and the ``Notifier``, and offers the
Python API that tests and the admin endpoints share: ledger, faults, clock, reset, request counts
and waiting for notifies. ``SandboxServer`` adds HTTP on top.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from billing.errors import InvalidInput
from billing.sandbox.clock import SettableClock, ShiftedClock
from billing.sandbox.faults import FaultDice, Faults
from billing.sandbox.ledger import LedgerView
from billing.sandbox.merchants import DEFAULT_MERCHANT, Merchant
from billing.sandbox.notifier import DeliveryAttempt, Notifier, NotifyPolicy
from billing.sandbox.processor import Processor, SettleRule, fail
from billing.sandbox.validation import ENDPOINTS

__all__ = ["Sandbox"]

_REFERENCE_FIELDS = ("mchOrderNo", "mchRefundNo", "cardId", "payOrderId")


class Sandbox:
    """An IOTPay-compatible gateway in memory. Thread-safe."""

    def __init__(
        self,
        merchants: Iterable[Merchant] = (DEFAULT_MERCHANT,),
        *,
        clock: SettableClock | None = None,
        faults: Faults | None = None,
        seed: int | None = None,
        notify_policy: NotifyPolicy | None = None,
        settle: SettleRule | None = None,
        zone: str = "America/Toronto",
        notify_workers: int = 4,
    ) -> None:
        self.merchants = {m.mch_id: m for m in merchants}
        if not self.merchants:
            raise InvalidInput("the sandbox needs at least one merchant")
        self.clock: SettableClock = clock or ShiftedClock()
        self.dice = FaultDice(faults, seed)
        self.processor = Processor(self.merchants, self.clock, settle=settle, zone=zone)
        policy = notify_policy or NotifyPolicy()
        self.notifier = Notifier(policy, self.dice, self.processor.mark_notified,
                                 workers=notify_workers)  # fmt: skip
        self._requests: Counter[tuple[str, str]] = Counter()
        self._requests_lock = threading.Lock()

    # --- the gateway -----------------------------------------------------------------------

    def process(
        self, endpoint: str, fields: dict[str, Any] | None, root_url: str
    ) -> dict[str, Any]:
        """Act on one ``/v3/`` call and queue its notifies; returns the JSON reply."""
        if fields is None:
            return fail("invalid request: body must be a JSON object")
        reply, jobs = self.processor.handle(endpoint, fields, root_url)
        self.notifier.submit(jobs)
        return reply

    def count(self, endpoint: str, fields: dict[str, Any] | None) -> None:
        """Count a request as it arrives, before any fault: what the client actually sent."""
        ref = ""
        for name in _REFERENCE_FIELDS:
            if fields and fields.get(name) not in (None, ""):
                ref = str(fields[name])
                break
        with self._requests_lock:
            self._requests[(endpoint, ref)] += 1

    @staticmethod
    def parse(raw: bytes) -> dict[str, Any] | None:
        try:
            doc = json.loads(raw)
        except ValueError:
            return None
        return doc if isinstance(doc, dict) else None

    # --- Python API (also behind /admin/) ----------------------------------------------------

    def ledger(self) -> LedgerView:
        """Every order with its approved-charge count and refunds."""
        return self.processor.ledger()

    @property
    def faults(self) -> Faults:
        return self.dice.faults

    def set_faults(self, **changes: Any) -> Faults:
        """Change some fault switches (``error_500_rate=1.0``, ``seed=7``...); others stay."""
        return self.dice.update(changes)

    def clear_faults(self) -> None:
        self.dice.reset()

    def set_clock(self, at: datetime) -> None:
        self.clock.set(at)
        self.settle_due()

    def advance_clock(self, delta: timedelta) -> None:
        self.clock.advance(delta)
        self.settle_due()

    def settle_due(self) -> None:
        """Settle pending orders whose time has come and send their notifies."""
        self.notifier.submit(self.processor.settle_due())

    def reset(self) -> None:
        """Forget cards, orders, notifies, counters and faults (merchants and clock stay)."""
        self.processor.reset()
        self.notifier.clear()
        self.dice.reset()
        with self._requests_lock:
            self._requests.clear()

    def wait_for_notifies(self, timeout: float = 10.0) -> bool:
        """Block until no notify is scheduled or in flight (retries included); False on timeout."""
        return self.notifier.wait_idle(timeout)

    def notify_log(self) -> list[DeliveryAttempt]:
        return self.notifier.log()

    def request_count(self, endpoint: str | None = None, reference: str | None = None) -> int:
        """Requests received (faulted ones included) for an endpoint and/or a reference
        (mchOrderNo, mchRefundNo, cardId or payOrderId, whichever the request carried first)."""
        with self._requests_lock:
            return sum(
                n
                for (ep, ref), n in self._requests.items()
                if (endpoint is None or ep == endpoint) and (reference is None or ref == reference)
            )

    def request_counts(self) -> dict[str, dict[str, int]]:
        with self._requests_lock:
            out: dict[str, dict[str, int]] = {}
            for (endpoint, ref), n in self._requests.items():
                out.setdefault(endpoint, {})[ref] = n
            return out

    @staticmethod
    def known_endpoint(endpoint: str) -> bool:
        return endpoint in ENDPOINTS
