"""alerts and item_failures; drop invoices.escalated_after_attempts

Alerts are deduplicated per cause (one row with a count instead of one event per occurrence);
item failures let a tick back one item off while every other item proceeds. Escalations no
longer wait for a retry of their own, so the count of attempts at the last escalation is gone.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('alerts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('type', sa.String(length=64), nullable=False),
    sa.Column('first_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alerts')),
    sa.UniqueConstraint('key', name=op.f('uq_alerts_key'))
    )
    op.create_table('item_failures',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tick', sa.String(length=20), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('item_id', sa.BigInteger(), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('first_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('retry_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('error', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_item_failures')),
    sa.UniqueConstraint('kind', 'item_id', name=op.f('uq_item_failures_kind_item_id'))
    )
    with op.batch_alter_table('item_failures', schema=None) as batch_op:
        batch_op.create_index('ix_item_failures_retry', ['kind', 'retry_at'], unique=False)
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.drop_column('escalated_after_attempts')


def downgrade() -> None:
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.add_column(sa.Column('escalated_after_attempts', sa.Integer(), nullable=False,
                                      server_default='0'))
    with op.batch_alter_table('item_failures', schema=None) as batch_op:
        batch_op.drop_index('ix_item_failures_retry')
    op.drop_table('item_failures')
    op.drop_table('alerts')
