"""customer provinces, invoice taxes and the catalog's tax rates

Invoices now carry sales taxes computed when they are drafted: one ``invoice_taxes`` row per
named tax, with the rate it was computed at, and their sum in ``invoices.tax`` (0 for every
invoice issued before, so ``total = subtotal - credit_applied + tax`` holds for them too). The
rates come from the catalog's ``taxes:`` section, stored in ``tax_rates`` by ``plans apply``,
and apply by the customer's ``province``.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PROVINCES = ("AB", "BC", "MB", "NB", "NL", "NS", "NT", "NU", "ON", "PE", "QC", "SK", "YT")
"""Frozen here: a migration must build the same schema whatever the code says later."""
IN_PROVINCES = "province IN (" + ", ".join(f"'{p}'" for p in PROVINCES) + ")"


def upgrade() -> None:
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('province', sa.String(length=2), nullable=True))
        batch_op.create_check_constraint('province', IN_PROVINCES)
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.add_column(sa.Column('tax', sa.BigInteger(), server_default='0',
                                      nullable=False))
        batch_op.create_check_constraint('tax_nonnegative', 'tax >= 0')
        batch_op.create_check_constraint('total_adds_up',
                                         'total = subtotal - credit_applied + tax')
    op.create_table('invoice_taxes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('invoice_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=20), nullable=False),
    sa.Column('province', sa.String(length=2), nullable=False),
    sa.Column('rate', sa.String(length=16), nullable=False),
    sa.Column('taxable', sa.BigInteger(), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.CheckConstraint('amount >= 0', name=op.f('ck_invoice_taxes_amount_nonnegative')),
    sa.CheckConstraint('taxable >= 0', name=op.f('ck_invoice_taxes_taxable_nonnegative')),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'],
                            name=op.f('fk_invoice_taxes_invoice_id_invoices')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_invoice_taxes')),
    sa.UniqueConstraint('invoice_id', 'name', name=op.f('uq_invoice_taxes_invoice_id_name'))
    )
    with op.batch_alter_table('invoice_taxes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_invoice_taxes_invoice_id'), ['invoice_id'],
                              unique=False)
    op.create_table('tax_rates',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('province', sa.String(length=2), nullable=False),
    sa.Column('name', sa.String(length=20), nullable=False),
    sa.Column('rate', sa.String(length=16), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint(IN_PROVINCES, name=op.f('ck_tax_rates_province')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tax_rates')),
    sa.UniqueConstraint('province', 'name', name=op.f('uq_tax_rates_province_name'))
    )


def downgrade() -> None:
    op.drop_table('tax_rates')
    with op.batch_alter_table('invoice_taxes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_invoice_taxes_invoice_id'))
    op.drop_table('invoice_taxes')
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.drop_constraint('total_adds_up', type_='check')
        batch_op.drop_constraint('tax_nonnegative', type_='check')
        batch_op.drop_column('tax')
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.drop_constraint('province', type_='check')
        batch_op.drop_column('province')
