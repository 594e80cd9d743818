"""A billing day killed with SIGKILL over and over, then left to finish: still exactly once.

The engine runs as it does under cron, ``python -m billing run-once --now T``, against this
test's database and an in-test sandbox over HTTP whose answers are sometimes lost (dropped after
charging, 500s, 502s after charging, latency). Notifies go to the real receiver, running in this
process on the same database; half of them arrive a second or two late, so a prompt notify does
not always rescue a run's mistakes. Each run is killed with SIGKILL, alternately:

* by a timer: a seeded random delay after the run's first request reaches the gateway (start-up
  takes ~1 s of imports, where a kill proves nothing, so the clock starts when work does), or
* by the engine's own crash points (``BILLING_CRASH_POINTS``: right after the intent commit,
  right after the gateway answered, right after the outcome was recorded).

Each restart acts a few minutes later (``--now``), so the dead run's ``sending`` leases (2 min)
have expired and reconciliation takes them over. Invoices fall due through the day (their
``next_attempt_at`` is spread over the runs), so every restart also has new charges to make,
which is where the crash points are (reconciliation has none, see ``billing.faults``: the timer
kills cover it). Afterwards the outage ends (faults off) and the engine runs
undisturbed past the reconciliation backoffs and two dunning retries. Then the sandbox ledger and
the database must agree: one approved charge per paid invoice, none for the rest, no attempt
left unresolved, and no new order number before the previous one was settled.

``--crash-runs N`` (per backend, default 20: 40 kills in CI) and ``--crash-seed S`` come from
the suite's conftest; the seed is printed so a failure can be replayed (the kill plan,
crash-point dice and fault dice replay exactly; where a timer kill lands in the work still
depends on the machine).

The receiver itself is killed at its crash points in the second test: ``billing serve`` dies
after storing a notify, before or after acknowledging it.
"""

from __future__ import annotations

import random
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from pydantic import SecretStr
from sqlalchemy import update

from billing.clock import FixedClock
from billing.receiver import ReceiverServer, create_app
from billing.sandbox import cards
from billing.sandbox.merchants import DEFAULT_MERCHANT
from billing.sandbox.testing import running_sandbox
from billing.services.collection import collect_due
from billing.services.ports import Deps, EngineConfig
from billing.services.reconcile import reconcile
from billing.store.engine import Store
from billing.store.models import Invoice
from billing.store.uow import UnitOfWork
from tests.engine.harness import World, at
from tests.resilience.support import (
    PAYABLE,
    PURCHASE,
    Customer,
    Proc,
    assert_all_resolved,
    assert_ledger_agrees,
    assert_no_blind_resend,
    assert_resent_only_after_query,
    billing_cmd,
    engine_env,
    events_of,
    invoice_cards,
    notifications,
    populate,
    processes,
    run_once_cmd,
    spawn,
    unresolved,
    wait_until,
)

pytestmark = pytest.mark.slow

START = at("2026-01-15")
STEP = timedelta(minutes=3)
"""Between restarts: longer than ``send_lease`` and ``query_lease`` (2 min each)."""
KILL_WINDOW = 0.3
"""Seconds after the first gateway request within which a timer kill lands (uniform)."""
CRASH_POINTS = ("after_intent:0.3,after_send:0.25,after_record:0.2,after_query:0.2,"
                "before_resend:0.3")
KILL_FAULTS = dict(drop_after_charge_rate=0.15, error_500_rate=0.1,
                   error_502_after_charge_rate=0.05, latency_ms=25,
                   delayed_notify_rate=0.5, notify_delay_ms=1500, duplicate_notify_rate=0.2)
"""Lost answers and 5xx so outcomes are unknown; half the notifies arrive a run or two late,
so the engine's own recording (and reconciliation) is not always rescued by a prompt notify."""
MAX_FINAL_RUNS = 8


@dataclass
class Run:
    number: int
    mode: str  # "timer" or "points"
    at: str
    delay: float | None
    code: int | None = None
    seconds: float = 0.0


@pytest.fixture
def crash_plan(request: pytest.FixtureRequest) -> tuple[int, int]:
    runs = int(request.config.getoption("--crash-runs", default=20))
    if runs < 2:
        raise pytest.UsageError("--crash-runs: at least 2 (runs alternate timer and crash points)")
    seed = request.config.getoption("--crash-seed", default=None)
    return runs, int(seed) if seed is not None else random.SystemRandom().randrange(1 << 30)


@pytest.fixture
def day(store: Store) -> Iterator[World]:
    """The test's world, plus the real receiver in this process on the same database."""
    clock = FixedClock(START)
    receiver = ReceiverServer()
    receiver.bind()
    with running_sandbox(clock=clock, seed=7) as sandbox, sandbox.client() as gateway:
        deps = Deps(store, gateway, clock, EngineConfig(public_url=receiver.url, worker="pytest"))
        receiver.app = create_app(deps, mch_id=DEFAULT_MERCHANT.mch_id,
                                  mch_key=SecretStr(DEFAULT_MERCHANT.key))
        with receiver:
            world = World(deps, sandbox, clock)
            world.apply_plans()
            yield world


def _spread_due_times(world: World, runs: int) -> None:
    """Invoice ``k`` falls due at the start of run ``k % runs``: every restart has new charges."""
    with UnitOfWork(world.deps.store) as uow:
        for k, invoice in enumerate(world.invoices()):
            uow.session.execute(update(Invoice).where(Invoice.id == invoice.id)
                                .values(next_attempt_at=START + (k % runs) * STEP))
        uow.commit()


def _run_killed(world: World, run: Run, proc: Proc, requests_before: int) -> None:
    """Wait for the run's first gateway request, then ``run.delay`` seconds, then SIGKILL."""
    started = time.monotonic()
    while proc.popen.poll() is None and world.sandbox.request_count() == requests_before:
        if time.monotonic() - started > 60:
            raise AssertionError(f"run {run.number} never reached the gateway:\n{proc.tail()}")
        time.sleep(0.003)
    assert run.delay is not None
    try:
        proc.popen.wait(run.delay)
    except subprocess.TimeoutExpired:  # still running: this is the moment
        proc.kill()


def _final_times(end_of_day: timedelta) -> Iterator[timedelta]:
    """After the outage: past the leases and the 1 min, 5 min and 1 h query backoffs, then a day
    (the daily backoff, and the first dunning retry), then two more (the second retry, at +3 d
    from the first decline), then daily while anything is unresolved."""
    yield end_of_day + timedelta(hours=1)
    yield end_of_day + timedelta(days=1, hours=1)
    for days in range(3, MAX_FINAL_RUNS + 2):
        yield end_of_day + timedelta(days=days, hours=1)


def test_billing_day_killed_at_random_points_charges_every_invoice_exactly_once(
    day: World, db_url: str, tmp_path: Path, crash_plan: tuple[int, int]
) -> None:
    runs, seed = crash_plan
    print(f"crash test: seed={seed} runs={runs} backend={day.deps.store.dialect}")
    customers: list[Customer] = populate(day, max(40, 4 * runs))
    _spread_due_times(day, runs)
    rng = random.Random(seed)
    plan = [Run(n, "timer" if n % 2 == 0 else "points", (START + n * STEP).isoformat(),
                rng.uniform(0.0, KILL_WINDOW) if n % 2 == 0 else None) for n in range(runs)]
    crash_seeds = [rng.randrange(1 << 30) for _ in range(runs)]
    base_env = engine_env(db_url, day.sandbox, tmp_path, public_url=day.deps.config.public_url,
                          BILLING_CHARGE_CONCURRENCY="2")
    day.sandbox.set_faults(seed=seed, **KILL_FAULTS)

    with processes() as procs:
        for run, crash_seed in zip(plan, crash_seeds, strict=True):
            now = START + run.number * STEP
            day.sandbox.set_clock(now)
            env = dict(base_env)
            if run.mode == "points":
                env.update(BILLING_CRASH_POINTS=CRASH_POINTS, BILLING_CRASH_SEED=str(crash_seed))
            before, began = day.sandbox.request_count(), time.monotonic()
            proc = spawn(run_once_cmd(now), env, tmp_path, tmp_path / f"run-{run.number}.log")
            procs.append(proc)
            if run.mode == "timer":
                _run_killed(day, run, proc, before)
            run.code = proc.wait(120)
            run.seconds = round(time.monotonic() - began, 2)
            assert run.code in (0, -9), f"run {run.number} failed (seed {seed}):\n{proc.tail()}"

        day.sandbox.clear_faults()
        end_of_day = runs * STEP
        finals: list[int] = []
        for offset in _final_times(end_of_day):
            now = START + offset
            day.sandbox.set_clock(now)
            proc = spawn(run_once_cmd(now), base_env, tmp_path, tmp_path / f"final-{now:%d%H%M}")
            procs.append(proc)
            finals.append(proc.wait(120))
            assert finals[-1] == 0, f"final run at {now} failed (seed {seed}):\n{proc.tail()}"
            day.sandbox.wait_for_notifies(5.0)
            if offset >= timedelta(days=3) and not unresolved(day):
                break

    kills = [r for r in plan if r.code == -9]
    print(f"crash test: {len(kills)}/{runs} runs killed, {len(finals)} final runs; "
          f"{[(r.mode, r.code, r.seconds) for r in plan]}")
    assert len(kills) > runs // 2, (seed, [(r.mode, r.code) for r in plan])
    assert any(r.mode == "timer" for r in kills) and any(r.mode == "points" for r in kills)

    assert_all_resolved(day)
    paid = assert_ledger_agrees(day)
    day.assert_exactly_once()
    settled = assert_no_blind_resend(day)
    orders = [a.mch_order_no for a in day.attempts()]
    resent = assert_resent_only_after_query(day.sandbox, orders)
    expected = invoice_cards(day, customers)
    for invoice in day.invoices():
        payable = expected[invoice.id] in PAYABLE
        assert (invoice.status == "paid") is payable, (invoice.number, expected[invoice.id],
                                                       invoice.status, seed)
    assert paid == sum(1 for c in customers if c.card in PAYABLE)
    # the kills really left work behind: attempts committed but never sent, taken over after
    # their lease and sent again under the same number; declines that had to be looked up
    taken_over = events_of(day, "payment.resent_same_order")
    print(f"crash test: {len(taken_over)} dead attempts re-sent under their own number, "
          f"{settled} uncertain attempts settled by query before a retry, {resent} orders "
          f"received twice by the gateway, {paid} invoices paid")
    assert taken_over and settled > 0
    assert any(c.card == cards.DECLINE_INSUFFICIENT_FUNDS for c in customers)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_listening(url: str, proc: Proc) -> None:
    with requests.Session() as http:
        def up() -> bool:
            assert proc.popen.poll() is None, f"the receiver died at start:\n{proc.tail()}"
            try:
                return http.get(f"{url}/healthz", timeout=1).status_code == 200
            except requests.ConnectionError:
                return False
        assert wait_until(up, 30, interval=0.05), proc.tail()


@pytest.mark.parametrize("point", ["after_notify_store", "before_notify_apply"])
def test_receiver_killed_between_storing_and_applying_a_notify_loses_nothing(
    store: Store, db_url: str, tmp_path: Path, point: str
) -> None:
    """``billing serve`` dies on its first notify, after committing it (before answering, or
    after answering and before applying). Every purchase answer was lost too, so the stored
    notify is the only news: the next reconciliation applies it, before any query is due."""
    clock = FixedClock(START)
    port = _free_port()
    public = f"http://127.0.0.1:{port}"
    with (
        running_sandbox(clock=clock) as sandbox, sandbox.client() as gateway,
        processes() as procs,
    ):
        deps = Deps(store, gateway, clock, EngineConfig(public_url=public, worker="pytest"))
        world = World(deps, sandbox, clock)
        world.apply_plans()
        populate(world, 3, mix=(cards.APPROVE,))
        env = engine_env(db_url, sandbox, tmp_path, public_url=public,
                         BILLING_HTTP_PORT=str(port), BILLING_CRASH_POINTS=f"{point}:1")
        serve = spawn(billing_cmd("serve"), env, tmp_path, tmp_path / "serve.log")
        procs.append(serve)
        _wait_listening(public, serve)
        sandbox.set_faults(drop_after_charge_rate=1.0, endpoints=(PURCHASE,))

        collect_due(deps)
        assert serve.wait(30) == -9, serve.tail()
        assert sandbox.wait_for_notifies(10.0)
        stored = notifications(world)
        assert stored and all(n.processed_at is None for n in stored)
        assert {a.state for a in world.attempts()} == {"unknown"}
        # killed before answering, the gateway was never told; killed after, it was
        acknowledged = [d for d in sandbox.notify_log() if d.acknowledged]
        assert bool(acknowledged) is (point == "before_notify_apply")

        clock.advance(timedelta(seconds=30))  # the first query is due only after a minute
        reconcile(deps)
        assert all(n.outcome == "applied" for n in notifications(world))
        for n in stored:
            assert sandbox.request_count("cc_query", n.mch_order_no) == 0
        paid = {i.id for i in world.invoices() if i.status == "paid"}
        assert len(paid) == len(stored)

        sandbox.clear_faults()
        clock.advance(timedelta(minutes=2))
        reconcile(deps)  # the notifies that found no receiver: settled by query
        assert_all_resolved(world)
        assert assert_ledger_agrees(world) == 3
        world.assert_exactly_once()
