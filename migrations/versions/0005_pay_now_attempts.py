"""payment attempts carry their source (scheduled or pay_now) and a hosted-page expiry

A pay-now attempt is the customer paying an open invoice on the gateway's hosted ``cc_purchase``
page. ``source`` tells it from the collection tick's attempts (every attempt made before this
revision was the tick's: ``scheduled``), and ``expires_at`` is when its hosted page counts as
abandoned if the gateway has no paid order for it.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SOURCES = "source IN ('scheduled', 'pay_now')"
"""Frozen here: a migration must build the same schema whatever the code says later."""


def upgrade() -> None:
    with op.batch_alter_table('payment_attempts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('source', sa.String(length=16),
                                      server_default='scheduled', nullable=False))
        batch_op.add_column(sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_check_constraint('source', SOURCES)


def downgrade() -> None:
    with op.batch_alter_table('payment_attempts', schema=None) as batch_op:
        batch_op.drop_constraint('source', type_='check')
        batch_op.drop_column('expires_at')
        batch_op.drop_column('source')
