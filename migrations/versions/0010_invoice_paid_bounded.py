"""invoices: amount_paid may never exceed total (CHECK paid_bounded)

A late payment racing a credit once stored an invoice paid 1850 of a 1650 total with nothing
refunded. ``apply_outcome`` now locks the invoice before deciding; this CHECK makes the schema
refuse the state itself, whatever code path would write it. Invoices already in that state (the
bug having happened) are named and the upgrade stops: each needs a refund of the difference
decided by a person before the constraint can hold.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    overpaid = op.get_bind().execute(sa.text(
        "SELECT number FROM invoices WHERE amount_paid > total ORDER BY id LIMIT 20")).scalars()
    numbers = list(overpaid)
    if numbers:
        raise RuntimeError("invoices paid beyond their total (refund the difference, then set "
                           f"amount_paid to total before upgrading): {', '.join(numbers)}")
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.create_check_constraint('paid_bounded', 'amount_paid <= total')


def downgrade() -> None:
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.drop_constraint('paid_bounded', type_='check')
