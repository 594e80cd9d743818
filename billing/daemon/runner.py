"""The long-lived daemon: APScheduler as a ticker, the database as the arbiter, a clean stop.

The scheduler only decides *when* a tick runs in this process (``coalesce=True`` so a backlog of
missed runs collapses into one, ``max_instances=1`` so a slow tick never overlaps itself, an
explicit ``misfire_grace_time``); the database decides *who* works on which row, so any number
of daemons can tick at once. SIGTERM or SIGINT stops claiming new work at once; in-flight charges
get a short grace period, after which they are abandoned safely (their attempts stay ``sending``
and the next start reconciles them with ``cc_query``), and the process exits 0.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler

from billing.bootstrap import Runtime
from billing.clock import SystemClock
from billing.daemon import ticks
from billing.mail import Transport
from billing.services.cards import notify_expiring_cards
from billing.services.collection import collect_due
from billing.services.dunning import run_dunning
from billing.services.reconcile import reconcile
from billing.services.renewal import renew_due

log = logging.getLogger("billing.daemon")


@dataclass(frozen=True)
class Intervals:
    """Seconds between ticks; ``scaled`` shrinks them all for demos and tests."""

    renew: float = 30
    collect: float = 5
    reconcile: float = 30
    dunning: float = 60
    outbox: float = 10
    daily: float = 3600

    def scaled(self, factor: float) -> Intervals:
        return Intervals(*(max(0.2, v * factor) for v in vars(self).values()))


class Daemon:
    def __init__(self, runtime: Runtime, transport: Transport, *,
                 intervals: Intervals = Intervals(), grace: float = 5.0,
                 receiver: Any | None = None) -> None:
        self.runtime, self.transport, self.intervals = runtime, transport, intervals
        self.grace, self.receiver = grace, receiver
        self.stop = threading.Event()
        self.runs: dict[str, int] = {}

    def _job(self, name: str, work: Callable[[], Any]) -> Callable[[], None]:
        def run() -> None:
            if self.stop.is_set():
                return
            started = time.monotonic()
            try:
                result = work()
            except Exception:
                log.exception("tick %s failed", name)
                return
            self.runs[name] = self.runs.get(name, 0) + 1
            if _did_something(result):
                log.info("tick %s", name, extra={"tick": name, "result": _plain(result),
                                                 "seconds": round(time.monotonic() - started, 3)})
        return run

    def _scheduler(self) -> BackgroundScheduler:
        deps, iv = self.runtime.deps, self.intervals
        scheduler = BackgroundScheduler(timezone=UTC, job_defaults={
            "coalesce": True, "max_instances": 1, "misfire_grace_time": 30})
        jobs: dict[str, tuple[float, Callable[[], Any]]] = {
            "renew": (iv.renew, lambda: renew_due(deps)),
            "collect": (iv.collect, lambda: collect_due(deps, stop=self.stop)),
            "reconcile": (iv.reconcile, lambda: reconcile(deps, stop=self.stop)),
            "dunning": (iv.dunning, lambda: run_dunning(deps)),
            "outbox": (iv.outbox, lambda: ticks.send_outbox(deps, self.transport)),
            "daily": (iv.daily, lambda: notify_expiring_cards(deps)),
        }
        for name, (seconds, work) in jobs.items():
            scheduler.add_job(self._job(name, work), "interval", seconds=seconds, id=name,
                              name=name, next_run_time=_now())
        return scheduler

    def run(self) -> int:
        """Tick until SIGTERM/SIGINT; returns the exit code."""
        self._install_signals()
        if self.receiver is not None:
            self.receiver.start()
            log.info("receiver listening", extra={"url": self.receiver.url})
        scheduler = self._scheduler()
        scheduler.start()
        log.info("daemon started", extra={"worker": self.runtime.deps.config.worker})
        self.stop.wait()
        log.info("stopping: no new claims; waiting up to %.0fs for in-flight work", self.grace)
        scheduler.shutdown(wait=False)
        finished = _wait_for_jobs(self.grace)
        if self.receiver is not None:
            self.receiver.stop()
        log.info("daemon stopped", extra={"ticks": self.runs, "abandoned": not finished})
        if not finished:
            logging.shutdown()
            os._exit(0)  # in-flight attempts stay 'sending'; the next start reconciles them
        return 0

    def _install_signals(self) -> None:
        def handle(signum: int, _frame: object) -> None:
            log.info("received signal %s", signal.Signals(signum).name)
            self.stop.set()

        signal.signal(signal.SIGTERM, handle)
        signal.signal(signal.SIGINT, handle)


def _now() -> Any:
    return SystemClock().now()


def _wait_for_jobs(grace: float) -> bool:
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        busy = [t for t in threading.enumerate()
                if t.name.startswith(("charge", "reconcile", "APScheduler", "ThreadPool"))
                and t.is_alive()]
        if not busy:
            return True
        time.sleep(0.1)
    return False


def _did_something(result: Any) -> bool:
    if isinstance(result, int):
        return result > 0
    values = vars(result).values() if hasattr(result, "__dict__") else []
    return any(bool(v) for v in values)


def _plain(result: Any) -> Any:
    if hasattr(result, "__dict__"):
        return {k: (dict(v) if isinstance(v, dict) else v) for k, v in vars(result).items()}
    return result
