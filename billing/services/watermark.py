"""A high-water mark kept outside the database, so a database restored from a backup is noticed.

A backup knows nothing of the payments made after it was taken. Restored and run, the engine
would find those invoices open and charge them again. So after each pass that may have charged
or refunded, the engine writes the highest payment-attempt and refund ids the database holds
(and the newest attempt's ``mchOrderNo``) to a small JSON file in the state directory
(``BILLING_STATE_DIR``), named by the database's ``installation_id``. A runtime that is about to
talk to the gateway first checks that the database is not behind that file; if it is, it refuses
until an operator runs ``billing db accept-restore``, which moves the mark back to what the
database holds and records an ``installation.restore_accepted`` event.

The file only ever moves forward on its own (merged with what is already there, under a lock),
so several processes on one machine can write it; each machine keeps its own.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from billing.errors import ConfigError
from billing.services.events import record_event
from billing.services.installation import ensure_installation_id
from billing.store.engine import Store
from billing.store.models import PaymentAttempt, Refund
from billing.store.uow import UnitOfWork

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: writers are not serialized, only merged
    fcntl = None  # type: ignore[assignment]


@dataclass(frozen=True)
class Watermark:
    """How far a database's money records reach: the newest attempt and refund it holds."""

    attempt_id: int = 0
    order: str | None = None
    refund_id: int = 0
    refund_no: str | None = None

    def merged(self, other: Watermark) -> Watermark:
        """The further of two marks, field pair by field pair (an id with its number)."""
        attempt = self if self.attempt_id >= other.attempt_id else other
        refund = self if self.refund_id >= other.refund_id else other
        return Watermark(attempt.attempt_id, attempt.order, refund.refund_id, refund.refund_no)

    def describe(self) -> str:
        attempt = f"payment attempt #{self.attempt_id}" + (f" ({self.order})" if self.order
                                                           else "")
        refund = f"refund #{self.refund_id}" + (f" ({self.refund_no})" if self.refund_no else "")
        return f"{attempt}, {refund}"


def database_watermark(session: Session) -> Watermark:
    """The newest attempt and refund this database holds."""
    attempt = session.execute(select(PaymentAttempt.id, PaymentAttempt.mch_order_no)
                              .order_by(PaymentAttempt.id.desc()).limit(1)).first()
    refund = session.execute(select(Refund.id, Refund.mch_refund_no)
                             .order_by(Refund.id.desc()).limit(1)).first()
    return Watermark(attempt[0] if attempt else 0, attempt[1] if attempt else None,
                     refund[0] if refund else 0, refund[1] if refund else None)


def restore_gaps(session: Session, db: Watermark, mark: Watermark) -> list[str]:
    """Why this database looks older than ``mark``: what the file has seen that it lacks."""
    gaps = []
    if db.attempt_id < mark.attempt_id:
        gaps.append(f"its newest payment attempt is #{db.attempt_id}, the mark's "
                    f"#{mark.attempt_id}")
    elif mark.order and session.scalar(select(func.count()).select_from(PaymentAttempt).where(
            PaymentAttempt.mch_order_no == mark.order)) == 0:
        gaps.append(f"it has no order {mark.order}")
    if db.refund_id < mark.refund_id:
        gaps.append(f"its newest refund is #{db.refund_id}, the mark's #{mark.refund_id}")
    elif mark.refund_no and session.scalar(select(func.count()).select_from(Refund).where(
            Refund.mch_refund_no == mark.refund_no)) == 0:
        gaps.append(f"it has no refund {mark.refund_no}")
    return gaps


class StateFile:
    """The mark of one database (by ``installation_id``) in one state directory."""

    def __init__(self, state_dir: Path, installation: str) -> None:
        self.dir = state_dir.expanduser()
        self.path = self.dir / f"{installation}.json"
        self.installation = installation

    def ensure_writable(self) -> None:
        """Fail before any charge, not after, when the mark could not be kept."""
        try:
            self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise ConfigError(f"cannot create BILLING_STATE_DIR {self.dir}: {exc.strerror}") \
                from None
        if not os.access(self.dir, os.W_OK | os.X_OK):
            raise ConfigError(f"BILLING_STATE_DIR {self.dir} is not writable")

    def read(self) -> Watermark | None:
        try:
            data = json.loads(self.path.read_text())
            return Watermark(int(data["attempt_id"]), data.get("order"),
                             int(data["refund_id"]), data.get("refund_no"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"cannot read the high-water mark {self.path} ({exc}); it guards "
                              "against running a database restored from a backup: repair it, "
                              "or remove it to trust this database as it is") from None

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Serialize read-merge-write among processes of this machine."""
        self.ensure_writable()
        with open(self.dir / f"{self.installation}.lock", "a") as handle:
            if fcntl is not None:
                fcntl.flock(handle, fcntl.LOCK_EX)
            yield

    def write(self, mark: Watermark, *, at: datetime, database: str) -> None:
        """Replace the file atomically: a crash leaves the old mark or the new, never half."""
        body: dict[str, Any] = {"installation_id": self.installation, "database": database,
                                "updated_at": at.isoformat(), **asdict(mark)}
        fd, tmp = tempfile.mkstemp(prefix=".mark-", dir=self.dir)
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump(body, handle, indent=2)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def state_file(store: Store, state_dir: Path) -> StateFile:
    return StateFile(state_dir, ensure_installation_id(store))


def require_not_restored(store: Store, state_dir: Path) -> None:
    """Refuse a database that is behind its mark: it looks restored from a backup."""
    mark_file = state_file(store, state_dir)
    mark_file.ensure_writable()
    mark = mark_file.read()
    if mark is None:
        return
    with UnitOfWork(store) as uow:
        gaps = restore_gaps(uow.session, database_watermark(uow.session), mark)
    if gaps:
        raise ConfigError(
            f"this database looks restored from a backup ({'; '.join(gaps)}, per "
            f"{mark_file.path}): payments and refunds made after the backup are not in it, so "
            "running it could charge again what was already paid; check those orders at the "
            "gateway, then run `billing db accept-restore`")


def advance(mark_file: StateFile, db: Watermark, *, at: datetime, database: str) -> Watermark:
    """Move the mark up to ``db`` (what the database holds now), never down; returns it."""
    with mark_file.locked():
        old = mark_file.read()
        new = db if old is None else old.merged(db)
        if new != old:
            mark_file.write(new, at=at, database=database)
    return new


@dataclass(frozen=True)
class RestoreCheck:
    """What ``billing db accept-restore`` shows before asking: the mark, the database, gaps."""

    path: Path
    mark: Watermark | None
    database: Watermark
    gaps: list[str]


def check_restore(store: Store, state_dir: Path) -> RestoreCheck:
    mark_file = state_file(store, state_dir)
    mark = mark_file.read()
    with UnitOfWork(store) as uow:
        db = database_watermark(uow.session)
        gaps = restore_gaps(uow.session, db, mark) if mark is not None else []
    return RestoreCheck(mark_file.path, mark, db, gaps)


def accept_restore(store: Store, state_dir: Path, *, at: datetime, database: str) -> Watermark:
    """Trust the database as it is: set the mark to what it holds, and say so in the audit trail.

    The event is committed before the file moves: if the file cannot be written, the next
    start refuses again and the operator sees why, instead of a mark moved with no record.
    """
    mark_file = state_file(store, state_dir)
    with mark_file.locked():
        previous = mark_file.read()
        with UnitOfWork(store) as uow:
            db = database_watermark(uow.session)
            record_event(uow.session, at, "installation.restore_accepted",
                         previous=asdict(previous) if previous else None, accepted=asdict(db),
                         state_file=str(mark_file.path))
            uow.commit()
        mark_file.write(db, at=at, database=database)
    return db
