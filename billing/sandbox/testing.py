"""Helpers for tests that talk to the sandbox: a fast-notify sandbox, a notify receiver, a card.

    from billing.sandbox.testing import NotifySink, add_card, running_sandbox

    @pytest.fixture
    def sandbox():
        with running_sandbox() as server:     # FixedClock at TEST_START, notify retries in ms
            yield server

    @pytest.fixture
    def sink():
        with NotifySink() as receiver:        # answers SUCCESS unless scripted otherwise
            yield receiver

``NotifySink`` can also verify signs like a real receiver (``verify_with=merchant``), answering
``FAIL`` (HTTP 400) to a forged notify, which makes the sandbox stop or retry as IOTPay would.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Self, cast

from billing.clock import FixedClock
from billing.gateway.client import IotpayClient
from billing.gateway.errors import NotifyError
from billing.gateway.notify import verify_notify
from billing.gateway.replies import CardInfo, GatewayReply
from billing.sandbox import cards
from billing.sandbox.httpd import LoopbackServer, QuietHandler
from billing.sandbox.merchants import Merchant
from billing.sandbox.notifier import NotifyPolicy
from billing.sandbox.server import SandboxServer

__all__ = [
    "FAST_NOTIFY",
    "TEST_START",
    "NotifySink",
    "Received",
    "add_card",
    "running_sandbox",
]

TEST_START = datetime(2025, 1, 15, 17, 0, tzinfo=UTC)
"""Noon in Toronto, mid-month: far from day and month boundaries unless a test moves the clock."""

FAST_NOTIFY = NotifyPolicy(
    max_attempts=5, first_retry=0.01, factor=2.0, max_delay=0.1, timeout=2.0, reorder_hold=0.2
)
"""Five attempts within about 0.2 s, for tests."""


@contextmanager
def running_sandbox(**kwargs: Any) -> Iterator[SandboxServer]:
    """A started ``SandboxServer`` with a ``FixedClock`` at ``TEST_START`` and ``FAST_NOTIFY``,
    unless given; stopped on exit."""
    kwargs.setdefault("clock", FixedClock(TEST_START))
    kwargs.setdefault("notify_policy", FAST_NOTIFY)
    kwargs.setdefault("seed", 1)
    with SandboxServer(**kwargs) as server:
        yield server


def add_card(
    client: IotpayClient, card_id: str, number: str = cards.APPROVE, expiry: str = "1230"
) -> GatewayReply[CardInfo]:
    """Vault a test card with ``cc_directaddcard``; fails the test if the sandbox refuses it."""
    reply = client.cc_directaddcard(
        card_id=card_id, card_num=number, expiry_date=expiry, holder="Test Holder", cvv="123"
    )
    if not reply.ok:
        raise AssertionError(f"cc_directaddcard refused: {reply.ret_msg}")
    return reply


@dataclass(frozen=True)
class Received:
    """One POST the sink received, with the answer it gave."""

    path: str
    body: bytes
    status: int
    answer: str

    def json(self) -> dict[str, Any]:
        return cast(dict[str, Any], json.loads(self.body))


class NotifySink:
    """A loopback receiver for notifies. Answers come from ``script(...)`` first, then the default
    ``(200, "SUCCESS")``; with ``verify_with`` a notify that fails ``verify_notify`` gets
    ``(400, "FAIL")`` and does not consume a scripted answer."""

    def __init__(self, verify_with: Merchant | None = None) -> None:
        self.verify_with = verify_with
        self._lock = threading.Condition()
        self._script: list[tuple[int, str]] = []
        self._received: list[Received] = []
        self._server = LoopbackServer(("127.0.0.1", 0), _SinkHandler)
        self._server.sink = self  # type: ignore[attr-defined]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.port}/notify"

    def script(self, *answers: tuple[int, str]) -> None:
        """Answer the next notifies with these ``(status, body)`` pairs, in order."""
        with self._lock:
            self._script.extend(answers)

    @property
    def received(self) -> list[Received]:
        with self._lock:
            return list(self._received)

    def bodies(self) -> list[dict[str, Any]]:
        return [r.json() for r in self.received]

    def wait_for(self, count: int, timeout: float = 5.0) -> bool:
        """Block until at least ``count`` POSTs arrived; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self._received) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(left)
            return True

    def answer(self, path: str, body: bytes) -> tuple[int, str]:
        with self._lock:
            status, text = self._decide(body)
            self._received.append(Received(path, body, status, text))
            self._lock.notify_all()
            return status, text

    def _decide(self, body: bytes) -> tuple[int, str]:
        if self.verify_with is not None:
            try:
                verify_notify(body, self.verify_with.key, self.verify_with.mch_id)
            except NotifyError:
                return 400, "FAIL"
        return self._script.pop(0) if self._script else (200, "SUCCESS")

    def start(self) -> Self:
        self._server.start(name=f"notify-sink-{self._server.port}")
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _SinkHandler(QuietHandler):
    server_version = "notify-sink"

    def do_POST(self) -> None:
        sink: NotifySink = self.server.sink  # type: ignore[attr-defined]
        status, text = sink.answer(self.path, self.read_body())
        self.reply(status, text.encode("utf-8"), "text/plain; charset=utf-8")
