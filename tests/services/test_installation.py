"""Installation facts made lazily in ``meta`` by processes that may start at the same moment."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from billing.services.installation import installation_id, record_run
from billing.services.watermark import state_file
from billing.store.engine import Store
from billing.store.models import Meta
from billing.store.uow import UnitOfWork


def test_processes_naming_a_new_database_at_once_agree_on_one_installation_id(
    store: Store, tmp_path: Path
) -> None:
    """Three daemons started together on a new PostgreSQL database: the one whose insert of
    ``installation_id`` loses the race must read the winner's, not die on the primary key."""
    found: list[str] = []
    errors: list[BaseException] = []

    def other_process() -> None:
        try:
            found.append(state_file(store, tmp_path).installation)
        except BaseException as exc:  # pragma: no cover - the failure this test is about
            errors.append(exc)

    with UnitOfWork(store) as first:
        mine = installation_id(first.session)  # inserted, not yet committed
        thread = threading.Thread(target=other_process)
        thread.start()
        time.sleep(0.5)  # the other inserts too, and waits on our uncommitted row (or lock)
        first.commit()
    thread.join(30)
    assert errors == [] and found == [mine]


def test_the_last_run_only_moves_forward(store: Store) -> None:
    at = datetime(2026, 3, 1, tzinfo=UTC)
    record_run(store, at)
    record_run(store, at - timedelta(days=1))  # a slower process finishing an older pass
    with UnitOfWork(store) as uow:
        row = uow.session.get(Meta, "last_run_at")
        assert row is not None and datetime.fromisoformat(row.value) == at
    record_run(store, at + timedelta(seconds=1))
    with UnitOfWork(store) as uow:
        row = uow.session.get(Meta, "last_run_at")
        assert row is not None and datetime.fromisoformat(row.value) == at + timedelta(seconds=1)
