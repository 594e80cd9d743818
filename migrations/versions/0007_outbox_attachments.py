"""outbox attachments: what each customer email attaches, rendered when it is sent

Receipts attach their invoice and refund emails their credit note. The row stores a reference
(JSON list of ``{"kind", "number"}``), never the PDF, so queuing stays fast inside the
transaction that paid or refunded, and each send renders the same document from its recorded
template version. Emails queued before this migration attach nothing (NULL).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('attachments', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_column('attachments')
