"""Facts about this database installation, kept in the ``meta`` table."""

from __future__ import annotations

import secrets
import string

from sqlalchemy.orm import Session

from billing.store.models import Meta


def order_prefix(session: Session) -> str:
    """The random prefix of this database's gateway order numbers.

    The first migration sets it; if the row is missing (a restored partial dump) a new random
    one is made, which is always safe: a fresh prefix can only avoid collisions.
    """
    row = session.get(Meta, "order_prefix")
    if row is None:
        alphabet = string.ascii_uppercase + string.digits
        row = Meta(key="order_prefix", value="".join(secrets.choice(alphabet) for _ in range(6)))
        session.add(row)
        session.flush()
    return row.value
