"""refunds: next_check_at and check_count, so reconciliation resolves unknown refunds

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('refunds', schema=None) as batch_op:
        batch_op.add_column(sa.Column('next_check_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('check_count', sa.Integer(), server_default='0',
                                      nullable=False))
    # Refunds already unresolved are looked up on the first reconciliation tick.
    op.execute("UPDATE refunds SET next_check_at = created_at "
               "WHERE state IN ('sending', 'pending', 'unknown')")


def downgrade() -> None:
    with op.batch_alter_table('refunds', schema=None) as batch_op:
        batch_op.drop_column('check_count')
        batch_op.drop_column('next_check_at')
