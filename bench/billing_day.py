"""The billing-day benchmark: N due subscriptions renewed and charged, timed phase by phase.

What one run does (see bench/README.md for the figures and how to read them):

1. creates a throwaway database (PostgreSQL from ``--server-url``, or a SQLite file with
   ``--sqlite``), migrates it with ``billing.store.migrate.upgrade`` and applies ``plans/``;
2. starts the sandbox in its own process (``python -m billing sandbox --port P --latency-ms L
   --seed 1``) and, unless ``--notify none``, the notify receiver in a third process
   (``python -m billing serve``), so neither shares the engine's GIL;
3. seeds N customers, each with a vaulted APPROVE card and a ``starter-monthly`` subscription whose
   14-day trial has just ended, so its first invoice is issued and charged on the billing day.
   The first customer goes through the real services (``add_customer``, ``add_direct`` against the
   sandbox, ``create_subscription``); the other N-1 are bulk-inserted copies of that template's
   rows (customer, card, subscription and their three audit events), with only ids, names and
   cardIds changed; their cards are vaulted in the sandbox under the same cardIds in parallel.
   ``--seed services`` seeds everyone through the services instead (slow, for comparison);
4. runs the billing day in this process with the production composition root
   (``billing.bootstrap.open_runtime``): ``renew_due`` (issue invoices), then ``collect_due``
   (charge them), each timed; batches are timed by wrapping ``collection.create_intents``;
   SQL statements, commits and pool checkouts (each one a ``pool_pre_ping`` round trip) are
   counted with engine events; CPU time of every process is read from ``/proc``; on PostgreSQL
   ``pg_stat_activity`` is sampled to see what the backends wait on;
5. verifies: every invoice paid, one succeeded attempt each, and the sandbox ledger
   (``GET /admin/ledger``) holds exactly one approved charge per attempt and nothing else; with
   the receiver, every notify stored and applied;
6. drops the database and stops both processes.

Run from the repository root with the project's venv::

    .venv/bin/python bench/billing_day.py                       # 10,000 subscriptions, 0 ms
    .venv/bin/python bench/billing_day.py --latency-ms 200
    .venv/bin/python bench/billing_day.py --latency-ms 0 200 --runs 3 --sqlite --notify both
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

import profile_summary  # bench/profile_summary.py: the script's folder is on sys.path
import psycopg
import sqlalchemy
import variants  # bench/variants.py
from pydantic import SecretStr
from sqlalchemy import Engine, create_engine, event, func, select
from sqlalchemy.engine import make_url

from billing.bootstrap import open_runtime
from billing.catalog.loader import load_catalog
from billing.clock import FixedClock, SystemClock
from billing.gateway import IotpayClient
from billing.sandbox import cards as test_cards
from billing.sandbox.merchants import DEFAULT_MERCHANT
from billing.services import collection
from billing.services.cards import add_direct
from billing.services.catalog import apply_catalog
from billing.services.customers import add_customer
from billing.services.ports import Deps, EngineConfig
from billing.services.renewal import renew_due
from billing.services.subscriptions import create_subscription
from billing.settings import Settings
from billing.store.migrate import upgrade
from billing.store.models import Base, Card, Customer, Event, Subscription
from billing.store.uow import UnitOfWork

REPO = Path(__file__).resolve().parents[1]
PLANS = REPO / "plans"
PLAN = "starter-monthly"
TRIAL_DAYS = 14
TIMEZONE = "America/Toronto"
CARD_EXPIRY = "1230"
ZERO_LATENCY_TARGET = 500.0
"""Charges per second the engine issue asks for at 0 ms gateway latency."""
LATENCY_TOLERANCE = 0.10
"""At a latency L the target is concurrency / L, within this fraction."""
DEFAULT_SERVER_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PROFILE_RATE = 100


# --- options ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    subscriptions: int
    latencies: tuple[int, ...]
    concurrency: int
    batch_size: int
    runs: int
    server_url: str
    sqlite: bool
    postgres: bool
    notify: str
    seed: str
    vault_workers: int
    profile_dir: Path | None
    variants: tuple[str, ...]
    quiet_wait: float
    quiet_cores: float
    work_dir: Path | None
    json_out: Path | None
    keep_db: bool


def parse_args(argv: Sequence[str] | None = None) -> Options:
    p = argparse.ArgumentParser(
        description="Time a billing day (renew_due + collect_due) against the sandbox.")
    p.add_argument("--subscriptions", "-n", type=int, default=10_000,
                   help="due subscriptions to seed (default 10000)")
    p.add_argument("--latency-ms", type=int, nargs="+", default=[0],
                   help="sandbox latency per purchase, one or more values (default 0)")
    p.add_argument("--concurrency", type=int, default=EngineConfig.charge_concurrency,
                   help="charge_concurrency (default %(default)s)")
    p.add_argument("--batch-size", type=int, default=EngineConfig.batch_size,
                   help="EngineConfig.batch_size (default %(default)s)")
    p.add_argument("--runs", type=int, default=3,
                   help="runs per configuration; the table shows medians (default 3)")
    p.add_argument("--server-url", default=DEFAULT_SERVER_URL,
                   help="PostgreSQL server to create the throwaway database on")
    p.add_argument("--sqlite", action="store_true",
                   help="also run on a SQLite file for comparison")
    p.add_argument("--no-postgres", action="store_true",
                   help="skip PostgreSQL (with --sqlite: SQLite only)")
    p.add_argument("--notify", choices=("receiver", "none", "both"), default="receiver",
                   help="receiver: notifies go to `billing serve` in another process (default); "
                   "none: nothing listens (the sandbox tries once); both: run each")
    p.add_argument("--seed", choices=("bulk", "services"), default="bulk",
                   help="bulk: 1 customer through the services, N-1 copied rows (default); "
                   "services: everyone through the services in a thread pool")
    p.add_argument("--vault-workers", type=int, default=32,
                   help="parallel cc_directaddcard calls while seeding")
    p.add_argument("--profile-dir", type=Path, default=None,
                   help="py-spy the engine (this process) during collect_due of the first run "
                   "of each configuration, GIL holder only; raw stacks and a summary go here")
    p.add_argument("--variant", action="append", default=[], choices=variants.NAMES,
                   help="install a prototype of a proposal (bench/variants.py) for the billing "
                   "day; repeatable")
    p.add_argument("--quiet-wait", type=float, default=120.0,
                   help="before each billing day, wait up to this many seconds for the shared "
                   "machine to be quiet (0: don't wait; default %(default)s)")
    p.add_argument("--quiet-cores", type=float, default=0.3,
                   help="quiet means fewer cores busy than this (default %(default)s)")
    p.add_argument("--work-dir", type=Path, default=None,
                   help="keep the processes' logs here (default: a temporary folder)")
    p.add_argument("--json", dest="json_out", type=Path, default=None,
                   help="also write every run's figures to this JSON file")
    p.add_argument("--keep-db", action="store_true", help="do not drop the databases")
    a = p.parse_args(argv)
    if a.subscriptions < 1 or a.concurrency < 1 or a.runs < 1 or a.batch_size < 1:
        p.error("--subscriptions, --concurrency, --batch-size and --runs must be positive")
    if a.no_postgres and not a.sqlite:
        p.error("--no-postgres needs --sqlite")
    for name in a.variant:
        why = variants.superseded(name)
        if why is not None:
            p.error(f"--variant {name} is superseded by the engine itself: {why}")
    return Options(
        subscriptions=a.subscriptions, latencies=tuple(a.latency_ms), concurrency=a.concurrency,
        batch_size=a.batch_size, runs=a.runs, server_url=a.server_url, sqlite=a.sqlite,
        postgres=not a.no_postgres, notify=a.notify, seed=a.seed, vault_workers=a.vault_workers,
        profile_dir=a.profile_dir, variants=tuple(a.variant), quiet_wait=a.quiet_wait,
        quiet_cores=a.quiet_cores,
        work_dir=a.work_dir, json_out=a.json_out, keep_db=a.keep_db,
    )


# --- child processes --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_json(method: str, url: str, body: dict[str, Any] | None = None,
              timeout: float = 30.0) -> Any:
    """One JSON call to a loopback server (the sandbox's admin API, the receiver's health)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,  # noqa: S310 (loopback http)
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
        return json.loads(resp.read() or b"null")


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of a process, all its threads, in seconds (0 if it is gone)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = text[text.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def postgres_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().startswith("postgres"):
                    pids.append(int(entry.name))
    return pids


def machine_busy_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, all cores."""
    parts = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    ticks = [int(x) for x in parts[:8]]
    idle = ticks[3] + ticks[4]
    return (sum(ticks) - idle) / CLK_TCK, sum(ticks) / CLK_TCK


@dataclass
class Child:
    """A ``python -m billing ...`` child whose output goes to a log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    out: Any

    @classmethod
    def start(cls, name: str, args: list[str], env: dict[str, str], log: Path) -> Child:
        out = log.open("wb")
        cmd = [sys.executable, "-m", "billing", *args]
        popen = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT,  # noqa: S603
                                 cwd=log.parent, start_new_session=True)
        return cls(name, popen, log, out)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def cpu(self) -> float:
        return proc_cpu_seconds(self.pid)

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 30) -> str:
        self.out.flush()
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        self.out.close()


def stop_all(children: list[Child]) -> None:
    for child in reversed(children):
        child.stop()


def wait_until(what: str, ready: Callable[[], bool], child: Child, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError, urllib.error.URLError, ValueError):
            if ready():
                return
        if not child.alive():
            raise RuntimeError(f"{child.name} exited while waiting for {what}:\n{child.tail()}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}:\n{child.tail()}")
        time.sleep(0.05)


def clean_env(**extra: str) -> dict[str, str]:
    """This environment minus anything that could point a child elsewhere."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("BILLING_", "IOTPAY_")) and k != "PYTHONPATH"}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


# --- databases --------------------------------------------------------------------------------


@dataclass
class Database:
    backend: str
    url: str
    drop: Callable[[], None]


def libpq_dsn(url: str) -> str:
    """A SQLAlchemy ``postgresql+psycopg://`` URL as a libpq connection string."""
    u = make_url(url)
    return u.set(drivername="postgresql").render_as_string(hide_password=False)


@contextlib.contextmanager
def postgres_database(server_url: str, name: str, keep: bool) -> Iterator[Database]:
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        url = make_url(server_url).set(database=name).render_as_string(hide_password=False)

        def drop() -> None:
            if keep:
                return
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

        db = Database("postgresql", url, drop)
        try:
            yield db
        finally:
            drop()
    finally:
        admin.dispose()


@contextlib.contextmanager
def sqlite_database(folder: Path, name: str, keep: bool) -> Iterator[Database]:
    path = folder / f"{name}.db"

    def drop() -> None:
        if not keep:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)

    db = Database("sqlite", f"sqlite:///{path}", drop)
    try:
        yield db
    finally:
        drop()


def migrate(url: str) -> None:
    engine = create_engine(url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()


# --- measuring instruments --------------------------------------------------------------------


class SqlCounter:
    """Counts what the engine sends to the database, by phase (thread) and kind.

    ``main`` is the thread that calls ``renew_due``/``collect_due`` (renewal, and the intent phase
    of collection); ``record`` the ``charge_*`` pool threads (send + record). ``checkout`` counts
    pool checkouts: with ``pool_pre_ping`` each is a ``SELECT 1`` round trip the statement hook
    does not see; psycopg also sends ``BEGIN`` before a transaction's first statement.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.lock = threading.Lock()
        self.kinds: Counter[tuple[str, str]] = Counter()
        self.texts: Counter[tuple[str, str]] = Counter()
        event.listen(engine, "before_cursor_execute", self._statement)
        event.listen(engine, "commit", self._commit)
        event.listen(engine, "rollback", self._rollback)
        event.listen(engine.pool, "checkout", self._checkout)

    def close(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._statement)
        event.remove(self.engine, "commit", self._commit)
        event.remove(self.engine, "rollback", self._rollback)
        event.remove(self.engine.pool, "checkout", self._checkout)

    @staticmethod
    def phase() -> str:
        return "record" if threading.current_thread().name.startswith("charge") else "main"

    def _add(self, kind: str, text: str | None = None) -> None:
        phase = self.phase()
        with self.lock:
            self.kinds[(phase, kind)] += 1
            if text is not None:
                self.texts[(phase, text)] += 1

    def _statement(self, conn: Any, cursor: Any, statement: str, parameters: Any,
                   context: Any, executemany: bool) -> None:
        head = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else "?"
        if head == "SELECT" and "FOR UPDATE" in statement:
            head = "SELECT FOR UPDATE"
        self._add("statement", statement)
        self._add(head)

    def _commit(self, conn: Any) -> None:
        self._add("commit")

    def _rollback(self, conn: Any) -> None:
        self._add("rollback")

    def _checkout(self, dbapi_conn: Any, record: Any, proxy: Any) -> None:
        self._add("checkout")

    def reset(self) -> None:
        with self.lock:
            self.kinds.clear()
            self.texts.clear()

    def snapshot(self) -> dict[str, dict[str, int]]:
        with self.lock:
            out: dict[str, dict[str, int]] = {}
            for (phase, kind), n in self.kinds.items():
                out.setdefault(phase, {})[kind] = n
            return out

    def top_statements(self, limit: int = 40) -> list[tuple[str, int, str]]:
        with self.lock:
            return [(phase, n, " ".join(text.split())[:110])
                    for (phase, text), n in self.texts.most_common(limit)]


def postgres_backends(database: str) -> list[int]:
    """The server processes serving connections to ``database`` (their title names it)."""
    pids = []
    for pid in postgres_pids():
        with contextlib.suppress(OSError):
            title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            if f" {database} " in title:
                pids.append(pid)
    return pids


@dataclass
class CpuSnapshot:
    at: float
    parts: dict[str, float]
    busy: float


class CpuMeter:
    """CPU seconds of each party during an interval: this process (the engine), the sandbox, the
    receiver, the PostgreSQL backends of the benchmark's database, every other postgres process
    (background writers and other users' databases), and the rest of the machine."""

    def __init__(self, sandbox: Child, receiver: Child | None, database: str | None) -> None:
        self.sandbox, self.receiver, self.database = sandbox, receiver, database
        self.ours: set[int] = set()

    def snap(self) -> CpuSnapshot:
        busy, _ = machine_busy_seconds()
        pg_ours = pg_all = 0.0
        if self.database is not None:
            self.ours |= set(postgres_backends(self.database))
            for pid in postgres_pids():
                cpu = proc_cpu_seconds(pid)
                pg_all += cpu
                if pid in self.ours:
                    pg_ours += cpu
        return CpuSnapshot(time.perf_counter(), {
            "engine": proc_cpu_seconds(os.getpid()), "sandbox": self.sandbox.cpu(),
            "receiver": self.receiver.cpu() if self.receiver else 0.0,
            "postgres": pg_ours, "postgres other": pg_all - pg_ours,
        }, busy)

    @staticmethod
    def seconds(a: CpuSnapshot, b: CpuSnapshot) -> dict[str, float]:
        """CPU seconds used by each party between two snapshots, plus ``wall`` and ``machine``.

        A backend that connected after ``a`` (pool growth) counts from zero: its whole CPU time
        so far is added, which is at most its connection set-up."""
        parts = {k: max(0.0, b.parts[k] - a.parts.get(k, 0.0)) for k in b.parts}
        machine = b.busy - a.busy
        parts["rest of machine"] = max(0.0, machine - sum(parts.values()))
        parts["machine"] = machine
        parts["wall"] = b.at - a.at
        return {k: round(v, 3) for k, v in parts.items()}


def wait_quiet(cores: float, patience: float, window: float = 2.0) -> tuple[float, float]:
    """Wait (at most ``patience`` s) until the machine uses under ``cores`` cores over a
    ``window``: this machine is shared. Returns (seconds waited, cores busy in the last window)."""
    start = time.perf_counter()
    while True:
        busy0, _ = machine_busy_seconds()
        time.sleep(window)
        busy = (machine_busy_seconds()[0] - busy0) / window
        waited = time.perf_counter() - start
        if busy < cores or waited >= patience:
            return waited, busy


class PgSampler:
    """Samples ``pg_stat_activity`` for one database: what its backends are doing."""

    def __init__(self, server_url: str, database: str, interval: float = 0.1) -> None:
        self.dsn, self.database, self.interval = libpq_dsn(server_url), database, interval
        self.counts: Counter[str] = Counter()
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pg-sampler", daemon=True)

    def __enter__(self) -> PgSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        query = ("SELECT state, wait_event_type, wait_event FROM pg_stat_activity WHERE "
                 "datname = %s AND pid <> pg_backend_pid() AND backend_type = 'client backend'")
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            while not self._stop.wait(self.interval):
                rows = conn.execute(query, (self.database,)).fetchall()
                self.samples += 1
                for state, wtype, wevent in rows:
                    if state == "active":
                        key = f"active:{wtype}:{wevent}" if wtype else "active:cpu"
                    elif state == "idle in transaction":
                        key = "idle in transaction"
                    else:
                        key = str(state)
                    self.counts[key] += 1

    def averages(self) -> dict[str, float]:
        """Average number of backends in each state over the samples."""
        n = max(self.samples, 1)
        return {k: round(v / n, 2) for k, v in self.counts.most_common()}


@dataclass
class BatchMark:
    start: float
    intents_done: float
    intents: int
    claimed: int


@contextlib.contextmanager
def timed_batches() -> Iterator[list[BatchMark]]:
    """Wrap ``collection.create_intents`` (looked up by ``collect_due`` at call time) to mark
    where each batch starts and how long its intent phase takes; restored afterwards."""
    marks: list[BatchMark] = []
    original = collection.create_intents

    def wrapper(deps: Deps, at: datetime, limit: int,
                *rest: Any) -> tuple[list[collection.Intent], int]:
        start = time.perf_counter()
        intents, claimed = original(deps, at, limit, *rest)
        marks.append(BatchMark(start, time.perf_counter(), len(intents), claimed))
        return intents, claimed

    collection.create_intents = wrapper
    try:
        yield marks
    finally:
        collection.create_intents = original


@dataclass
class Batch:
    intents: int
    seconds: float
    intent_seconds: float

    @property
    def rate(self) -> float:
        return self.intents / self.seconds if self.seconds > 0 else 0.0


def batches_of(marks: list[BatchMark], end: float) -> list[Batch]:
    out = []
    for i, m in enumerate(marks):
        stop = marks[i + 1].start if i + 1 < len(marks) else end
        if m.intents:
            out.append(Batch(m.intents, stop - m.start, m.intents_done - m.start))
    return out


@contextlib.contextmanager
def py_spy(targets: Sequence[tuple[int, Path]], rate: int = PROFILE_RATE) -> Iterator[None]:
    """py-spy each (pid, output) while the block runs: GIL holder only, raw folded stacks with
    thread names. ``--nonblocking`` keeps the sampled processes running."""
    exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if targets and not Path(exe).exists():
        print(f"  (py-spy not found at {exe}; not profiling)", flush=True)
        targets = ()
    spies: list[tuple[subprocess.Popen[bytes], Any]] = []
    for pid, out in targets:
        out.parent.mkdir(parents=True, exist_ok=True)
        log = out.with_suffix(".log").open("wb")
        cmd = [exe, "record", "--pid", str(pid), "--rate", str(rate), "--gil", "--nonblocking",
               "--threads", "--format", "raw", "--output", str(out)]
        spies.append((subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT), log))  # noqa: S603
    if spies:
        time.sleep(0.5)
    try:
        yield
    finally:
        for spy, _ in spies:
            spy.send_signal(signal.SIGINT)
        for spy, log in spies:
            try:
                spy.wait(60)
            except subprocess.TimeoutExpired:
                spy.kill()
                spy.wait()
            log.close()


# --- seeding ----------------------------------------------------------------------------------


@dataclass
class SeedReport:
    mode: str
    customers: int
    seconds: float
    rows_seconds: float
    vault_seconds: float


def apply_plans(deps: Deps) -> None:
    with UnitOfWork(deps.store) as uow:
        apply_catalog(uow, deps.clock, load_catalog(PLANS))
        uow.commit()


def ref_of(i: int) -> str:
    return f"bench-{i:06d}"


def seed_one(deps: Deps, i: int) -> None:
    """One customer through the services, as the engine's tests and CLI create them."""
    ref = ref_of(i)
    with UnitOfWork(deps.store) as uow:
        add_customer(uow, deps.clock, external_id=ref, email=f"{ref}@example.com",
                     name=ref.title(), timezone=TIMEZONE)
    add_direct(deps, ref, number=SecretStr(test_cards.APPROVE), cvv=SecretStr("123"),
               expiry=CARD_EXPIRY, holder=ref.title())
    with UnitOfWork(deps.store) as uow:
        create_subscription(uow, deps.clock, customer=ref, plan=PLAN, trial_days=TRIAL_DAYS)


def _substitute(value: Any, swaps: dict[str, str]) -> Any:
    if isinstance(value, str):
        return swaps.get(value, value)
    if isinstance(value, dict):
        return {k: _substitute(v, swaps) for k, v in value.items()}
    return value


def clone_template(deps: Deps, template_ref: str, count: int) -> list[tuple[str, str]]:
    """Insert ``count`` copies of the template customer's rows (customer, card, subscription and
    every event about them), changing only ids, names and the cardId. Returns (cardId, holder)
    of every copy, to vault in the sandbox."""
    tables = Base.metadata.tables
    customers, cards, subs, events = (tables[m.__tablename__]
                                      for m in (Customer, Card, Subscription, Event))
    with deps.store.engine.begin() as conn:
        cust = dict(conn.execute(select(customers).where(
            customers.c.external_id == template_ref)).mappings().one())
        card = dict(conn.execute(select(cards).where(
            cards.c.customer_id == cust["id"])).mappings().one())
        sub = dict(conn.execute(select(subs).where(
            subs.c.customer_id == cust["id"])).mappings().one())
        evs = [dict(r) for r in conn.execute(select(events).where(
            events.c.customer_id == cust["id"]).order_by(events.c.id)).mappings()]
        base = {t.name: int(conn.execute(select(func.max(t.c.id))).scalar() or 0)
                for t in (customers, cards, subs, events)}
        prefix = card["gateway_card_id"].rsplit("-C", 1)[0]
        vault: list[tuple[str, str]] = []
        rows: dict[str, list[dict[str, Any]]] = {t: [] for t in base}
        for i in range(1, count + 1):
            ref = ref_of(i)
            cid, kid, sid = (base["customers"] + i, base["cards"] + i,
                             base["subscriptions"] + i)
            card_id = f"{prefix}-C{kid:09d}"
            swaps = {cust["external_id"]: ref, cust["email"]: f"{ref}@example.com",
                     cust["name"]: ref.title(), card["gateway_card_id"]: card_id}
            rows["customers"].append({**_substitute(cust, swaps), "id": cid})
            rows["cards"].append({**_substitute(card, swaps), "id": kid, "customer_id": cid})
            rows["subscriptions"].append({**_substitute(sub, swaps), "id": sid,
                                          "customer_id": cid, "card_id": kid})
            for n, ev in enumerate(evs):
                rows["events"].append({
                    **_substitute(ev, swaps), "id": base["events"] + (i - 1) * len(evs) + n + 1,
                    "customer_id": cid,
                    "subscription_id": sid if ev["subscription_id"] is not None else None,
                })
            vault.append((card_id, ref.title()))
        for table in (customers, cards, subs, events):
            batch = rows[table.name]
            for start in range(0, len(batch), 2000):
                conn.execute(table.insert(), batch[start:start + 2000])
            if conn.dialect.name == "postgresql":
                conn.execute(select(func.setval(
                    func.pg_get_serial_sequence(table.name, "id"),
                    select(func.max(table.c.id)).scalar_subquery())))
    return vault


def vault_cards(base_url: str, cards: list[tuple[str, str]], workers: int) -> None:
    """``cc_directaddcard`` for every copied card, in parallel, under the same cardIds."""
    client = IotpayClient(base_url=base_url, mch_id=DEFAULT_MERCHANT.mch_id,
                          mch_key=DEFAULT_MERCHANT.key, login_name=DEFAULT_MERCHANT.login_name,
                          pool_size=workers)

    def one(item: tuple[str, str]) -> None:
        card_id, holder = item
        reply = client.cc_directaddcard(card_id=card_id, card_num=SecretStr(test_cards.APPROVE),
                                        holder=holder, cvv=SecretStr("123"),
                                        expiry_date=CARD_EXPIRY)
        if not reply.ok:
            raise RuntimeError(f"the sandbox refused card {card_id}: {reply.ret_msg}")

    try:
        with ThreadPoolExecutor(workers, "vault") as pool:
            list(pool.map(one, cards))
    finally:
        client.close()


def seed(deps: Deps, opts: Options, sandbox_base: str) -> SeedReport:
    start = time.perf_counter()
    apply_plans(deps)
    n = opts.subscriptions
    if opts.seed == "services":
        with ThreadPoolExecutor(opts.vault_workers // 4 or 1, "seed") as pool:
            list(pool.map(lambda i: seed_one(deps, i), range(n)))
        took = time.perf_counter() - start
        return SeedReport("services", n, took, took, 0.0)
    seed_one(deps, 0)
    copies = clone_template(deps, ref_of(0), n - 1)
    rows_done = time.perf_counter()
    vault_cards(sandbox_base, copies, opts.vault_workers)
    end = time.perf_counter()
    return SeedReport("bulk", n, end - start, rows_done - start, end - rows_done)


# --- verification -----------------------------------------------------------------------------


@dataclass
class Verdict:
    ok: bool
    problems: list[str] = field(default_factory=list)
    facts: dict[str, int] = field(default_factory=dict)


def verify(deps: Deps, n: int, sandbox_root: str, with_receiver: bool) -> Verdict:
    """Every invoice paid exactly once: by the database and by the sandbox's ledger."""
    problems: list[str] = []
    ledger = http_json("GET", f"{sandbox_root}/admin/ledger", timeout=120)
    charges: dict[str, int] = ledger["charges"].get(DEFAULT_MERCHANT.mch_id, {})
    with deps.store.engine.connect() as conn:
        inv = conn.execute(sqlalchemy.text(
            "SELECT i.id, i.status, i.total, i.amount_paid, i.attempt_count "
            "FROM invoices i")).all()
        att = conn.execute(sqlalchemy.text(
            "SELECT invoice_id, mch_order_no, state, amount FROM payment_attempts")).all()
        notes = conn.execute(sqlalchemy.text(
            "SELECT outcome, count(*) FROM gateway_notifications GROUP BY outcome")).all()
    by_invoice: dict[int, list[Any]] = {}
    for a in att:
        by_invoice.setdefault(a.invoice_id, []).append(a)
    if len(inv) != n:
        problems.append(f"{len(inv)} invoices, expected {n}")
    bad = 0
    for i in inv:
        mine = by_invoice.get(i.id, [])
        ok = (i.status == "paid" and i.amount_paid == i.total > 0 and len(mine) == 1
              and mine[0].state == "succeeded" and mine[0].amount == i.total
              and charges.get(mine[0].mch_order_no) == 1)
        if not ok:
            bad += 1
            if bad <= 5:
                problems.append(f"invoice {i.id}: {i.status} paid {i.amount_paid}/{i.total}, "
                                f"attempts {[(a.mch_order_no, a.state) for a in mine]}, "
                                f"ledger {[charges.get(a.mch_order_no) for a in mine]}")
    known = {a.mch_order_no for a in att}
    strays = [o for o in charges if o not in known]
    if strays:
        problems.append(f"{len(strays)} orders in the ledger that the database does not know")
    if ledger["totalCharges"] != n:
        problems.append(f"ledger totalCharges {ledger['totalCharges']}, expected {n}")
    if any(c != 1 for c in charges.values()):
        problems.append("an order was charged more than once")
    outcomes = {str(k): int(v) for k, v in notes}
    if with_receiver and outcomes.get("applied", 0) != n:
        problems.append(f"notifies by outcome {outcomes}, expected {n} applied")
    facts = {"invoices": len(inv), "attempts": len(att), "bad_invoices": bad,
             "ledger_orders": len(charges), "ledger_charges": int(ledger["totalCharges"]),
             "notifies_applied": outcomes.get("applied", 0),
             "notifies_stored": sum(outcomes.values())}
    return Verdict(not problems, problems, facts)


def wait_notifies_applied(deps: Deps, sandbox_root: str, n: int, timeout: float) -> float:
    """Seconds until the sandbox has nothing left to send and the receiver applied all ``n``."""
    start = time.perf_counter()
    http_json("POST", f"{sandbox_root}/admin/wait-idle", {"timeout": timeout}, timeout + 10)
    query = sqlalchemy.text(
        "SELECT count(*) FROM gateway_notifications WHERE processed_at IS NOT NULL")
    deadline = start + timeout
    while time.perf_counter() < deadline:
        with deps.store.engine.connect() as conn:
            if int(conn.execute(query).scalar() or 0) >= n:
                break
        time.sleep(0.1)
    return time.perf_counter() - start


# --- one run ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    backend: str
    latency_ms: int
    receiver: bool
    variants: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        label = f"{self.backend} {self.latency_ms}ms {'notify' if self.receiver else 'no-notify'}"
        return label + "".join(f" +{v}" for v in self.variants)


@dataclass
class RunResult:
    config: Config
    run: int
    seed: SeedReport
    quiet_wait: tuple[float, float]
    renew_seconds: float
    invoices: int
    renew_cpu: dict[str, float]
    collect_seconds: float
    charges: int
    outcomes: dict[str, int]
    batches: list[Batch]
    sql_renew: dict[str, dict[str, int]]
    sql_collect: dict[str, dict[str, int]]
    renew_statements: list[tuple[str, int, str]]
    collect_statements: list[tuple[str, int, str]]
    cpu: dict[str, float]
    cpu_drain: dict[str, float]
    pg_activity: dict[str, float]
    notify_drain_seconds: float
    verdict: Verdict
    profiles: dict[str, str]

    @property
    def rate(self) -> float:
        return self.charges / self.collect_seconds if self.collect_seconds else 0.0

    @property
    def median_batch_rate(self) -> float:
        return statistics.median(b.rate for b in self.batches) if self.batches else 0.0

    @property
    def intent_share(self) -> float:
        total = sum(b.seconds for b in self.batches)
        return sum(b.intent_seconds for b in self.batches) / total if total else 0.0

    def per_charge(self, kind: str, phase: str | None = None) -> float:
        phases = [phase] if phase else list(self.sql_collect)
        total = sum(self.sql_collect.get(p, {}).get(kind, 0) for p in phases)
        return total / max(self.charges, 1)

    def cpu_ms(self, party: str) -> float:
        """CPU milliseconds per charge of one party during collect_due."""
        return 1000 * self.cpu.get(party, 0.0) / max(self.charges, 1)

    @property
    def system_cpu_ms(self) -> float:
        """CPU ms per charge of everything the billing day needs (no other users' load)."""
        return sum(self.cpu_ms(p) for p in SYSTEM)

    @property
    def drain_cpu_ms(self) -> float:
        """CPU ms per charge spent after collect_due on notifies (receiver, postgres, sandbox)."""
        spent = sum(self.cpu_drain.get(p, 0.0) for p in ("receiver", "postgres", "sandbox"))
        return 1000 * spent / max(self.charges, 1)

    @property
    def cores_busy_foreign(self) -> float:
        """Cores used by others (other postgres databases, other processes) during collect."""
        wall = self.cpu.get("wall", 0.0)
        foreign = self.cpu.get("rest of machine", 0.0) + self.cpu.get("postgres other", 0.0)
        return foreign / wall if wall else 0.0


SYSTEM = ("engine", "sandbox", "receiver", "postgres")
"""The parties of a billing day: CPU used by anything else is other users' load."""


def expected_rate(latency_ms: int, concurrency: int) -> float:
    return ZERO_LATENCY_TARGET if latency_ms == 0 else concurrency / (latency_ms / 1000)


def start_children(opts: Options, config: Config, db: Database, folder: Path,
                   children: list[Child]) -> tuple[Child, str, Child | None, str]:
    """The sandbox (and the receiver) in their own processes, ready to serve."""
    sb_port = free_port()
    sb_args = ["sandbox", "--port", str(sb_port), "--latency-ms", str(config.latency_ms),
               "--seed", "1"]
    if not config.receiver:
        sb_args += ["--notify-attempts", "1"]
    sandbox = Child.start("sandbox", sb_args, clean_env(), folder / "sandbox.log")
    children.append(sandbox)
    sb_root = f"http://127.0.0.1:{sb_port}"
    wait_until("the sandbox", lambda: bool(http_json("GET", f"{sb_root}/admin/health",
                                                     timeout=2)["ok"]), sandbox)
    # the latency is the purchase's: vaulting the seed cards need not wait for it
    http_json("POST", f"{sb_root}/admin/faults", {"endpoints": ["cc_purchasewithtoken"]})
    rc_port = free_port()
    public_url = f"http://127.0.0.1:{rc_port}"
    receiver: Child | None = None
    if config.receiver:
        env = clean_env(
            BILLING_DATABASE_URL=db.url, BILLING_HTTP_HOST="127.0.0.1",
            BILLING_HTTP_PORT=str(rc_port), BILLING_PUBLIC_URL=public_url,
            BILLING_OUTBOX_DIR=str(folder / "outbox"), IOTPAY_BASE_URL=f"{sb_root}/v3/",
            IOTPAY_MCH_ID=DEFAULT_MERCHANT.mch_id, IOTPAY_MCH_KEY=DEFAULT_MERCHANT.key,
            IOTPAY_LOGIN_NAME=DEFAULT_MERCHANT.login_name,
            BILLING_CHARGE_CONCURRENCY=str(opts.concurrency),
        )
        receiver = Child.start("receiver", ["serve"], env, folder / "receiver.log")
        children.append(receiver)
        wait_until("the receiver", lambda: http_json(
            "GET", f"{public_url}/healthz", timeout=2)["status"] == "ok", receiver)
    return sandbox, sb_root, receiver, public_url


def run_once(opts: Options, config: Config, run: int, work: Path) -> RunResult:
    n = opts.subscriptions
    name = f"billing_bench_{os.getpid()}_{config.backend}_{config.latency_ms}_{run}"
    folder = work / name
    folder.mkdir(parents=True, exist_ok=True)
    database = (postgres_database(opts.server_url, name, opts.keep_db)
                if config.backend == "postgresql" else sqlite_database(folder, name, opts.keep_db))
    children: list[Child] = []
    with database as db, contextlib.ExitStack() as stack:
        stack.callback(stop_all, children)
        migrate(db.url)
        sandbox, sb_root, receiver, public_url = start_children(opts, config, db, folder,
                                                                children)
        settings = Settings(
            database_url=db.url, public_url=public_url, iotpay_base_url=f"{sb_root}/v3/",
            iotpay_mch_id=DEFAULT_MERCHANT.mch_id,
            iotpay_mch_key=SecretStr(DEFAULT_MERCHANT.key),
            iotpay_login_name=DEFAULT_MERCHANT.login_name, charge_concurrency=opts.concurrency,
            state_dir=folder / "state",
        )
        seeded_at = SystemClock().now() - timedelta(days=TRIAL_DAYS + 1)
        rt = stack.enter_context(open_runtime(settings, SystemClock(),
                                              batch_size=opts.batch_size))
        deps = rt.deps
        print(f"  seeding {n} customers ({opts.seed})...", end=" ", flush=True)
        seeded = seed(dataclasses.replace(deps, clock=FixedClock(seeded_at)), opts,
                      f"{sb_root}/v3/")
        print(f"{seeded.seconds:.1f} s", flush=True)

        quiet = (0.0, 0.0)
        if opts.quiet_wait > 0:
            quiet = wait_quiet(opts.quiet_cores, opts.quiet_wait)
            print(f"  machine: {quiet[1]:.2f} cores busy after waiting {quiet[0]:.0f} s",
                  flush=True)
        stack.enter_context(variants.installed(config.variants, deps))
        counter = SqlCounter(deps.store.engine)
        stack.callback(counter.close)
        meter = CpuMeter(sandbox, receiver, name if config.backend == "postgresql" else None)
        at = SystemClock().now()
        before = meter.snap()
        start = time.perf_counter()
        renewed = renew_due(deps, at=at)
        renew_seconds = time.perf_counter() - start
        renew_cpu = CpuMeter.seconds(before, meter.snap())
        sql_renew, renew_top = counter.snapshot(), counter.top_statements()
        if renewed.invoices != n or renewed.failed:
            raise RuntimeError(f"renew_due issued {renewed.invoices} invoices of {n} "
                               f"({len(renewed.failed)} failed)")
        print(f"  renew_due: {n} invoices in {renew_seconds:.2f} s; collecting...", end=" ",
              flush=True)

        counter.reset()
        profiles: dict[str, str] = {}
        if opts.profile_dir is not None and run == 1:
            stem = opts.profile_dir / f"{config.label.replace(' ', '-')}-run{run}"
            profiles = {"engine": f"{stem}-engine.txt", "sandbox": f"{stem}-sandbox.txt"}
            if receiver is not None:
                profiles["receiver"] = f"{stem}-receiver.txt"
        pids = {"engine": os.getpid(), "sandbox": sandbox.pid,
                "receiver": receiver.pid if receiver else 0}
        sampler = (PgSampler(opts.server_url, name) if config.backend == "postgresql"
                   else contextlib.nullcontext())
        with py_spy([(pids[k], Path(v)) for k, v in profiles.items()]), sampler as pg, \
                timed_batches() as marks:
            before = meter.snap()
            start = time.perf_counter()
            summary = collection.collect_due(deps, at=at)
            end = time.perf_counter()
            after = meter.snap()
        collect_seconds = end - start
        print(f"{summary.attempts} charges in {collect_seconds:.2f} s", flush=True)
        sql_collect, collect_top = counter.snapshot(), counter.top_statements()
        drain = (wait_notifies_applied(deps, sb_root, n, timeout=300) if config.receiver
                 else 0.0)
        cpu_drain = CpuMeter.seconds(after, meter.snap())
        verdict = verify(deps, n, sb_root, config.receiver)
        for child in children:
            if not child.alive():
                verdict.ok = False
                verdict.problems.append(f"{child.name} died:\n{child.tail()}")
        return RunResult(
            config=config, run=run, seed=seeded, quiet_wait=quiet, renew_seconds=renew_seconds,
            invoices=renewed.invoices, renew_cpu=renew_cpu, collect_seconds=collect_seconds,
            charges=summary.attempts, outcomes=dict(summary.outcomes),
            batches=batches_of(marks, end), sql_renew=sql_renew, sql_collect=sql_collect,
            renew_statements=renew_top, collect_statements=collect_top,
            cpu=CpuMeter.seconds(before, after), cpu_drain=cpu_drain,
            pg_activity=pg.averages() if isinstance(pg, PgSampler) else {},
            notify_drain_seconds=drain, verdict=verdict, profiles=profiles,
        )


# --- reporting --------------------------------------------------------------------------------


def machine_facts(opts: Options) -> dict[str, str]:
    facts = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": f"{os.cpu_count()} (usable {len(os.sched_getaffinity(0))})",
        "cpu": next((line.split(":", 1)[1].strip() for line in
                     Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("model name")), platform.processor() or "?"),
        "memory": f"{os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE') / 2**30:.0f} GiB",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "sqlalchemy / psycopg": f"{sqlalchemy.__version__} / {psycopg.__version__}",
        "kernel": platform.release(),
        "load average": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }
    if opts.postgres:
        try:
            with psycopg.connect(libpq_dsn(opts.server_url), autocommit=True) as conn:
                version = conn.execute("SHOW server_version").fetchone()
                settings = conn.execute(
                    "SELECT name, setting, unit FROM pg_settings WHERE name IN ("
                    "'shared_buffers', 'synchronous_commit', 'fsync', 'max_connections') "
                    "ORDER BY name").fetchall()
            facts["postgresql"] = str(version[0] if version else "?")
            facts["postgresql settings"] = ", ".join(
                f"{k}={v}{'x' + u if u else ''}" for k, v, u in settings)
        except psycopg.Error as exc:
            facts["postgresql"] = f"unreachable: {exc}"
    return facts


def med(values: Sequence[float]) -> float:
    return statistics.median(values) if values else 0.0


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]], out: TextIO) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)), file=out)
    print("  ".join("-" * w for w in widths), file=out)
    for r in rows:
        print("  ".join(c.rjust(w) if i else c.ljust(w)
                        for i, (c, w) in enumerate(zip(r, widths, strict=True))), file=out)


def summary_row(opts: Options, label: str, rs: list[RunResult]) -> list[str]:
    c = rs[0].config
    target = expected_rate(c.latency_ms, opts.concurrency)
    rate = med([r.rate for r in rs])
    goal = 1.0 if c.latency_ms == 0 else 1.0 - LATENCY_TOLERANCE
    return [
        label, str(len(rs)), f"{med([r.seed.seconds for r in rs]):.1f}",
        f"{med([r.renew_seconds for r in rs]):.2f}",
        f"{med([r.invoices / r.renew_seconds for r in rs]):.0f}",
        f"{med([r.collect_seconds for r in rs]):.2f}", f"{rate:.1f}",
        f"{med([r.median_batch_rate for r in rs]):.1f}", f"{target:.0f}",
        f"{rate / target:.2f}", "met" if rate / target >= goal else "MISSED",
        f"{med([r.per_charge('statement') for r in rs]):.1f}",
        f"{med([r.cores_busy_foreign for r in rs]):.2f}",
        "yes" if all(r.verdict.ok for r in rs) else "NO",
    ]


def cost_row(label: str, rs: list[RunResult]) -> list[str]:
    def ms(party: str) -> str:
        return f"{med([r.cpu_ms(party) for r in rs]):.2f}"

    cores = len(os.sched_getaffinity(0))
    total = med([r.system_cpu_ms for r in rs])
    return [
        label, f"{med([r.intent_share for r in rs]) * 100:.0f}%",
        f"{med([r.per_charge('statement', 'main') for r in rs]):.1f}",
        f"{med([r.per_charge('statement', 'record') for r in rs]):.1f}",
        f"{med([r.per_charge('commit') for r in rs]):.2f}",
        f"{med([r.per_charge('checkout') for r in rs]):.2f}",
        ms("engine"), ms("sandbox"), ms("receiver"), ms("postgres"), f"{total:.2f}",
        f"{1000 * cores / total:.0f}" if total else "-",
        f"{med([r.notify_drain_seconds for r in rs]):.1f}",
        f"{med([r.drain_cpu_ms for r in rs]):.2f}",
    ]


COST_NOTES = """\
  intent phase: share of collect time spent in create_intents (before d77ef8d no charge was in
    flight meanwhile; since then sends go on). checkouts: pool checkouts, each also a ping round
    trip with pool_pre_ping. cpu ms: CPU milliseconds per charge of each process during
    collect_due; postgres = the benchmark database's backends (engine and receiver). cpu ceiling:
    charges/s if every core did nothing but this (cores / total). notify drain: seconds after
    collect_due until every notify was applied; drain cpu ms: CPU ms per charge the receiver,
    postgres and sandbox spent in that time, not included in total."""


def report(opts: Options, facts: dict[str, str], results: list[RunResult],
           out: TextIO = sys.stdout) -> None:
    print("\n== machine", file=out)
    for k, v in facts.items():
        print(f"{k:>22}: {v}", file=out)
    print(f"{'engine':>22}: charge_concurrency={opts.concurrency} batch_size={opts.batch_size} "
          f"subscriptions={opts.subscriptions} seed={opts.seed} "
          f"variants={','.join(opts.variants) or 'none'}", file=out)
    configs: dict[str, list[RunResult]] = {}
    for r in results:
        configs.setdefault(r.config.label, []).append(r)

    print("\n== billing day (medians of runs)", file=out)
    print_table(["configuration", "runs", "seed s", "renew s", "inv/s", "collect s",
                 "charges/s", "median batch/s", "target/s", "ratio", "target", "stmts/charge",
                 "foreign cores", "verified"],
                [summary_row(opts, label, rs) for label, rs in configs.items()], out)
    print("  (foreign cores: CPU used during collect_due by other users of this shared machine: "
          "other processes and other databases' postgres backends)", file=out)

    print("\n== cost per charge during collect_due (medians)", file=out)
    print_table(["configuration", "intent phase", "stmts intent", "stmts record", "commits",
                 "checkouts", "cpu ms engine", "sandbox", "receiver", "postgres", "total",
                 "cpu ceiling/s", "notify drain s", "drain cpu ms"],
                [cost_row(label, rs) for label, rs in configs.items()], out)
    print(COST_NOTES, file=out)

    for label, rs in configs.items():
        detail(rs[len(rs) // 2], label, out)


def detail(r: RunResult, label: str, out: TextIO) -> None:
    print(f"\n== {label}: run {r.run} in detail", file=out)
    rates = sorted(b.rate for b in r.batches)
    if rates:
        print(f"batches: {len(r.batches)} of {r.batches[0].intents}; charges/s min "
              f"{rates[0]:.1f} median {med(rates):.1f} max {rates[-1]:.1f}; intent phase "
              f"median {med([b.intent_seconds for b in r.batches]) * 1000:.0f} ms of "
              f"{med([b.seconds for b in r.batches]) * 1000:.0f} ms per batch", file=out)
    print(f"seed: {r.seed.mode}, {r.seed.seconds:.1f} s (rows {r.seed.rows_seconds:.1f} s, "
          f"vaulting {r.seed.vault_seconds:.1f} s)", file=out)
    print(f"outcomes: {r.outcomes}; verification: "
          f"{'ok' if r.verdict.ok else 'FAILED'} {r.verdict.facts}", file=out)
    for p in r.verdict.problems:
        print(f"  problem: {p}", file=out)
    print(f"cpu seconds during collect_due: {r.cpu}", file=out)
    print(f"cpu seconds from the end of collect_due until every notify was applied: "
          f"{r.cpu_drain}", file=out)
    print(f"cpu seconds during renew_due: {r.renew_cpu}", file=out)
    for what, counts, per in (("collect", r.sql_collect, r.charges),
                              ("renew", r.sql_renew, r.invoices)):
        for phase, kinds in sorted(counts.items()):
            shown = {k: round(v / max(per, 1), 2) for k, v in sorted(kinds.items())
                     if k != "statement"}
            unit = "charge" if what == "collect" else "invoice"
            print(f"{what} sql per {unit}, {phase} thread: {shown}", file=out)
    for what, top, per in (("renew_due", r.renew_statements, r.invoices),
                           ("collect_due", r.collect_statements, r.charges)):
        print(f"statements during {what} (thread, per {'invoice' if 'renew' in what else 'charge'}"
              ", text):", file=out)
        for phase, count, text in top:
            if count / max(per, 1) >= 0.05:
                print(f"  {phase:6} {count / max(per, 1):5.2f}  {text}", file=out)
    if r.pg_activity:
        print(f"postgres backends of this database, average over samples: {r.pg_activity}",
              file=out)
    for party, path in r.profiles.items():
        if Path(path).exists():
            print(f"\n-- profile of the {party} process during collect_due (py-spy --gil): "
                  f"{path}", file=out)
            prof = profile_summary.parse(Path(path).read_text(errors="replace").splitlines())
            print(profile_summary.render(prof, seconds=r.collect_seconds, rate=PROFILE_RATE,
                                         top=15), file=out)


def as_json(r: RunResult) -> dict[str, Any]:
    d = dataclasses.asdict(r)
    d["config"]["label"] = r.config.label
    d["rate"], d["median_batch_rate"] = r.rate, r.median_batch_rate
    d["system_cpu_ms_per_charge"] = r.system_cpu_ms
    return d


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    # Stop cleanly (children stopped, databases dropped) on SIGTERM, and on SIGINT even when
    # started in the background, where the shell leaves SIGINT ignored.
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    facts = machine_facts(opts)
    backends = (["postgresql"] if opts.postgres else []) + (["sqlite"] if opts.sqlite else [])
    receivers = {"receiver": [True], "none": [False], "both": [True, False]}[opts.notify]
    configs = [Config(b, lat, rc, opts.variants)
               for b in backends for lat in opts.latencies for rc in receivers]
    results: list[RunResult] = []
    with contextlib.ExitStack() as stack:
        if opts.work_dir is not None:
            work = opts.work_dir
            work.mkdir(parents=True, exist_ok=True)
        else:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="billing-bench-")))
        for config in configs:
            for run in range(1, opts.runs + 1):
                print(f"{config.label}, run {run}/{opts.runs}", flush=True)
                results.append(run_once(opts, config, run, work))
    report(opts, facts, results)
    if opts.json_out is not None:
        opts.json_out.write_text(json.dumps(
            {"machine": facts, "options": {k: str(v) for k, v in vars(opts).items()},
             "runs": [as_json(r) for r in results]}, indent=1, default=str))
    return 0 if all(r.verdict.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
