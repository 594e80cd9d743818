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
from functools import partial
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler

from billing.bootstrap import Runtime
from billing.clock import SystemClock
from billing.daemon.ticks import TICKS, TickContext, failures_of
from billing.mail import Transport

log = logging.getLogger("billing.daemon")


@dataclass(frozen=True)
class Intervals:
    """Seconds between runs of each tick (``billing.daemon.ticks.TICKS``), times ``scale``:
    ``--tick-scale`` shrinks them all for demos and tests."""

    scale: float = 1.0

    def of(self, every: float) -> float:
        return max(0.2, every * self.scale)

    def scaled(self, factor: float) -> Intervals:
        return Intervals(self.scale * factor)


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
            started, at = time.monotonic(), self.runtime.deps.clock.now()
            try:
                result = work()
                # the --now guard and the restore high-water mark learn of every tick
                self.runtime.record_pass(at)
            except Exception:
                log.exception("tick %s failed", name)
                return
            self.runs[name] = self.runs.get(name, 0) + 1
            failed = failures_of(result)
            if failed:
                log.warning("tick %s skipped %d item(s)", name, len(failed),
                            extra={"tick": name, "failed": [str(f) for f in failed]})
            if _did_something(result):
                log.info("tick %s", name, extra={"tick": name, "result": _plain(result),
                                                 "seconds": round(time.monotonic() - started, 3)})
        return run

    def _scheduler(self) -> BackgroundScheduler:
        deps = self.runtime.deps
        scheduler = BackgroundScheduler(timezone=UTC, job_defaults={
            "coalesce": True, "max_instances": 1, "misfire_grace_time": 30})
        ctx = TickContext(stop=self.stop, transport=self.transport)
        for tick in TICKS:
            work = partial(tick.run, deps, ctx)
            scheduler.add_job(self._job(tick.name, work), "interval",
                              seconds=self.intervals.of(tick.every), id=tick.name,
                              name=tick.name, next_run_time=_now())
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
        return {k: (dict(v) if isinstance(v, dict) else [str(x) for x in v]
                    if isinstance(v, list) else v) for k, v in vars(result).items()}
    return result
