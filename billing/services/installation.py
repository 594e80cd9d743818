"""Facts about this database installation, kept in the ``meta`` table."""

from __future__ import annotations

import secrets
import string

from sqlalchemy.orm import Session

from billing.domain.payments import NONCE_ALPHABET, NONCE_LENGTH
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


def new_nonce() -> str:
    """A fresh random part for an order, refund or card number (``NONCE_LENGTH`` characters of
    Crockford base 32, about 30 bits), so a restored database never reissues a number."""
    return "".join(secrets.choice(NONCE_ALPHABET) for _ in range(NONCE_LENGTH))
