"""The unit of work: one transaction, rolled back unless explicitly committed.

Services open one per atomic step (``with UnitOfWork(store) as uow: ...; uow.commit()``), so a crash
or an exception between two lines can never leave half a change behind.
"""

from __future__ import annotations

from types import TracebackType

from sqlalchemy.orm import Session

from billing.store.engine import Store

TRANSACTION_INFO = ("kept", "locked", "webhook_endpoints")
"""``session.info`` keys that hold what one transaction learnt (rows kept alive, rows it holds
locked, the webhook endpoints it read): dropped when the transaction ends, never carried over."""


def _forget(session: Session) -> None:
    for key in TRANSACTION_INFO:
        session.info.pop(key, None)


class UnitOfWork:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._session: Session | None = None

    @property
    def session(self) -> Session:
        if self._session is None:
            raise RuntimeError("unit of work used outside its 'with' block")
        return self._session

    def __enter__(self) -> UnitOfWork:
        self._session = self.store.sessions()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # close() rolls back whatever was not committed, and unlike rollback() it leaves the
        # loaded objects readable (detached, not expired) for the caller.
        _forget(self.session)
        self.session.close()
        self._session = None

    def commit(self) -> None:
        self.session.commit()
        _forget(self.session)

    def rollback(self) -> None:
        self.session.rollback()
        _forget(self.session)
