"""payment attempts (and refunds, which share the list) may be 'watched' or 'duplicate'

``watched``: a pay-now page abandoned, or never settled, in time; it no longer holds its invoice
(it is outside the one-in-flight index) but is still looked up for a late payment.
``duplicate``: a proven success the invoice did not need; final, outside the one-success index,
refunded automatically. Both partial unique indexes name their states explicitly, so they are
unchanged; only the state CHECKs grow.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD = ('sending', 'pending', 'unknown', 'succeeded', 'failed', 'failed_not_sent')
NEW = (*OLD, 'watched', 'duplicate')
"""Frozen here: a migration must build the same schema whatever the code says later."""


def _states(values: tuple[str, ...]) -> str:
    return "state IN (" + ", ".join(f"'{v}'" for v in values) + ")"


def _recheck(values: tuple[str, ...]) -> None:
    for table in ('payment_attempts', 'refunds'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint('state', type_='check')
            batch_op.create_check_constraint('state', _states(values))


def upgrade() -> None:
    _recheck(NEW)


def downgrade() -> None:
    # The old schema has no word for either: a watched attempt is closed as abandoned; a
    # duplicate becomes 'failed' (not 'unknown', which two duplicates of one invoice could not
    # both be), its failure_reason and refund row still saying that it was paid.
    op.execute("UPDATE payment_attempts SET state = 'failed', next_check_at = NULL "
               "WHERE state IN ('watched', 'duplicate')")
    _recheck(OLD)
