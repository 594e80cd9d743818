"""Asynchronous notify delivery, as IOTPay does it: signed JSON POSTs to ``notifyUrl``, sent again
with growing delays until the receiver answers HTTP 200 with the exact body ``SUCCESS``, for at
most ``NotifyPolicy.max_attempts`` attempts.

Delivery runs on real (monotonic) time, not the sandbox clock, so tests use short delays instead of
moving a clock. A few worker threads share one schedule (a heap); each keeps its own keep-alive
connections. Notify faults (duplicate, delayed, reordered, forged) are applied when a notify is
submitted; every attempt is logged, so tests and ``GET /admin/notifies`` can see what happened.
"""

from __future__ import annotations

import heapq
import http.client
import itertools
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Literal
from urllib.parse import urlsplit

from billing.clock import SystemClock
from billing.sandbox.faults import FaultDice

__all__ = ["DeliveryAttempt", "Notifier", "NotifyJob", "NotifyPolicy"]

Kind = Literal["real", "duplicate", "forged"]
_ACK = b"SUCCESS"
_DUPLICATE_GAP = 0.05  # seconds a duplicate trails the original
_STALE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)


@dataclass(frozen=True)
class NotifyJob:
    url: str
    body: dict[str, Any]
    kind: Kind = "real"


@dataclass(frozen=True)
class NotifyPolicy:
    """Attempt ``n`` (1-based) is followed, if unacknowledged, by a wait of
    ``min(max_delay, first_retry * factor ** (n - 1))`` seconds. The default (15 s doubling, 6
    attempts, about 8 minutes) follows IOTPay's "several times" (inferred); tests use ~0.01 s."""

    max_attempts: int = 6
    first_retry: float = 15.0
    factor: float = 2.0
    max_delay: float = 300.0
    timeout: float = 5.0
    reorder_hold: float = 1.0  # longest a reordered notify waits for another to overtake it

    def delay(self, attempt: int) -> float:
        return float(min(self.max_delay, self.first_retry * self.factor ** (attempt - 1)))


@dataclass(frozen=True)
class DeliveryAttempt:
    """One POST of one notify; ``acknowledged`` is True only for HTTP 200 with body SUCCESS."""

    notify_id: int
    attempt: int
    kind: Kind
    url: str
    pay_order_id: str
    pay_type: str
    status: int | None
    http_status: int | None
    answer: str
    error: str | None
    acknowledged: bool
    at: str

    def to_json(self) -> dict[str, Any]:
        return {
            "notifyId": self.notify_id, "attempt": self.attempt, "kind": self.kind,
            "url": self.url, "payOrderId": self.pay_order_id, "payType": self.pay_type,
            "status": self.status, "httpStatus": self.http_status, "answer": self.answer,
            "error": self.error, "acknowledged": self.acknowledged, "at": self.at,
        }  # fmt: skip


@dataclass(order=True)
class _Entry:
    due: float
    seq: int
    job: NotifyJob = field(compare=False)
    notify_id: int = field(compare=False)
    attempt: int = field(compare=False, default=1)
    generation: int = field(compare=False, default=0)
    cancelled: bool = field(compare=False, default=False)
    followers: list[_Entry] = field(compare=False, default_factory=list)


class Notifier:
    """Schedules, sends and logs notifies; ``wait_idle`` returns once nothing is left to send."""

    def __init__(
        self,
        policy: NotifyPolicy,
        dice: FaultDice,
        on_ack: Callable[[NotifyJob], None] = lambda job: None,
        *,
        workers: int = 4,
        log_size: int = 200_000,
    ) -> None:
        self.policy = policy
        self._dice = dice
        self._on_ack = on_ack
        self._cond = threading.Condition()
        self._heap: list[_Entry] = []
        self._held: list[_Entry] = []
        self._live = 0  # scheduled or held entries, followers included
        self._in_flight = 0
        self._generation = 0
        self._seq = itertools.count()
        self._ids = itertools.count(1)
        self._log: deque[DeliveryAttempt] = deque(maxlen=log_size)
        self._running = False
        self._threads = [
            threading.Thread(target=self._work, name=f"sandbox-notify-{i}", daemon=True)
            for i in range(workers)
        ]

    def start(self) -> None:
        self._running = True
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        with self._cond:
            self._running = False
            self._cond.notify_all()
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout=self.policy.timeout + 1)

    def clear(self) -> None:
        """Drop everything scheduled and the log (``POST /admin/reset``)."""
        with self._cond:
            self._generation += 1  # in-flight deliveries of the old generation are not retried
            self._heap.clear()
            self._held.clear()
            self._live = 0
            self._log.clear()
            self._cond.notify_all()

    def log(self) -> list[DeliveryAttempt]:
        with self._cond:
            return list(self._log)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until nothing is scheduled, held or in flight; False if ``timeout`` ran out."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._live or self._in_flight:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def submit(self, jobs: Iterable[NotifyJob]) -> None:
        """Schedule notifies, applying the notify faults rolled for each."""
        for job in jobs:
            self._submit_one(job)

    def _submit_one(self, job: NotifyJob) -> None:
        dice, faults = self._dice, self._dice.faults
        now = time.monotonic()
        due = (
            now + faults.notify_delay_ms / 1000 if dice.roll_notify("delayed_notify_rate") else now
        )
        reorder = dice.roll_notify("reorder_notify_rate")
        duplicate = dice.roll_notify("duplicate_notify_rate")
        forged = dice.roll_notify("forged_notify_rate")
        with self._cond:
            notify_id = next(self._ids)
            if reorder:
                self._held.append(self._push(job, notify_id, now + self.policy.reorder_hold, 1))
            else:
                self._attach_held(self._push(job, notify_id, due, 1))
            if duplicate:
                self._push(replace(job, kind="duplicate"), next(self._ids), due + _DUPLICATE_GAP, 1)
            if forged:
                self._push(_forge(job), next(self._ids), due, 1)
            self._cond.notify_all()

    def _push(self, job: NotifyJob, notify_id: int, due: float, attempt: int) -> _Entry:
        entry = _Entry(due, next(self._seq), job, notify_id, attempt, self._generation)
        heapq.heappush(self._heap, entry)
        self._live += 1
        return entry

    def _attach_held(self, leader: _Entry) -> None:
        """Held (reordered) notifies go out right after ``leader``'s first attempt has finished,
        so the overtaking is certain, not a race between workers. They stay counted as live."""
        for entry in self._held:
            if not entry.cancelled:
                entry.cancelled = True
                leader.followers.append(entry)
        self._held.clear()

    def _next(self) -> _Entry | None:
        with self._cond:
            while self._running:
                while self._heap and self._heap[0].cancelled:
                    heapq.heappop(self._heap)
                now = time.monotonic()
                if self._heap and self._heap[0].due <= now:
                    entry = heapq.heappop(self._heap)
                    entry.cancelled = True  # a held copy must not be released again
                    self._live -= 1
                    self._in_flight += 1
                    return entry
                self._cond.wait(self._heap[0].due - now if self._heap else None)
            return None

    def _work(self) -> None:
        connections: dict[tuple[str, str], http.client.HTTPConnection] = {}
        try:
            while (entry := self._next()) is not None:
                attempt: DeliveryAttempt | None = None
                try:
                    attempt = self._deliver(entry, connections)
                finally:
                    self._finish(entry, attempt)
        finally:
            for conn in connections.values():
                conn.close()

    def _finish(self, entry: _Entry, attempt: DeliveryAttempt | None) -> None:
        acknowledged = attempt is not None and attempt.acknowledged
        if acknowledged and entry.job.kind != "forged":
            self._on_ack(entry.job)
        with self._cond:
            self._in_flight -= 1
            if attempt is not None:
                self._log.append(attempt)
            current = entry.generation == self._generation and self._running
            retry = entry.job.kind != "forged" and entry.attempt < self.policy.max_attempts
            if not acknowledged and retry and current:
                due = time.monotonic() + self.policy.delay(entry.attempt)
                self._push(entry.job, entry.notify_id, due, entry.attempt + 1)
            for follower in entry.followers if current else ():
                self._live -= 1
                self._push(follower.job, follower.notify_id, time.monotonic(), follower.attempt)
            self._cond.notify_all()

    def _deliver(
        self, entry: _Entry, connections: dict[tuple[str, str], http.client.HTTPConnection]
    ) -> DeliveryAttempt:
        job = entry.job
        status, answer, error = post_json(job.url, job.body, connections, self.policy.timeout)
        return DeliveryAttempt(
            notify_id=entry.notify_id, attempt=entry.attempt, kind=job.kind, url=job.url,
            pay_order_id=str(job.body.get("payOrderId", "")),
            pay_type=str(job.body.get("payType", "")), status=_int(job.body.get("status")),
            http_status=status, answer=answer.decode("utf-8", "replace")[:200], error=error,
            acknowledged=status == 200 and answer == _ACK, at=SystemClock().now().isoformat(),
        )  # fmt: skip


def _int(value: object) -> int | None:
    return value if isinstance(value, int) else None


def _forge(job: NotifyJob) -> NotifyJob:
    """A copy claiming a different amount under the original sign: it must fail verification."""
    body = dict(job.body)
    amount = body.get("amount")
    body["amount"] = amount + 1 if isinstance(amount, int) else 1
    return NotifyJob(url=job.url, body=body, kind="forged")


def post_json(
    url: str,
    body: dict[str, Any],
    connections: dict[tuple[str, str], http.client.HTTPConnection],
    timeout: float,
) -> tuple[int | None, bytes, str | None]:
    """POST ``body``; ``(http status, answer, error)``. Reuses a keep-alive connection and, if
    that one turns out to be stale, tries once more on a fresh one (the receiver saw nothing)."""
    parts = urlsplit(url)
    key = (parts.scheme, parts.netloc)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    data = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    headers = {"Content-Type": "application/json;charset=UTF-8"}
    for fresh in (key not in connections, True):
        conn = connections.get(key) or _connect(parts.scheme, parts.netloc, timeout)
        connections[key] = conn
        try:
            conn.request("POST", path, body=data, headers=headers)
            response = conn.getresponse()
            answer = response.read()
            if response.will_close:
                connections.pop(key).close()
            return response.status, answer, None
        except (OSError, http.client.HTTPException) as exc:
            connections.pop(key).close()
            stale = isinstance(exc, _STALE)
            if fresh or not stale:
                return None, b"", type(exc).__name__
    return None, b"", "unreachable"


def _connect(scheme: str, netloc: str, timeout: float) -> http.client.HTTPConnection:
    if scheme == "https":
        return http.client.HTTPSConnection(netloc, timeout=timeout)
    return http.client.HTTPConnection(netloc, timeout=timeout)
