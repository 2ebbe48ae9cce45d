"""payouts: small payees wait, queued, for hub funds under their cap

Many addresses each owed just over the minimum payout could make the hub lock a deposit per
address with no limit on the total. The deposits of payees with small lifetime earnings now share
a cap (``payouts.small_payees``); a payee whose deposit would go over it waits in
``payee_waits``, in queue order (``since``, then address), with the reason and the figures its
last voucher run saw, until funds are freed. No money moves: what it is owed stays in
``contributors``.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-03 18:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'payee_waits',
        sa.Column('address', sa.String(length=42), nullable=False),
        sa.Column('since', sa.DateTime(timezone=True), nullable=False),
        sa.Column('checked_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('needed', sa.BigInteger(), nullable=False),
        sa.Column('owed', sa.BigInteger(), nullable=False),
        sa.Column('cap', sa.BigInteger(), nullable=False),
        sa.Column('committed', sa.BigInteger(), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.CheckConstraint('needed >= 0 AND owed >= 0 AND cap >= 0 AND committed >= 0',
                           name=op.f('ck_payee_waits_wait_amounts')),
        sa.ForeignKeyConstraint(['address'], ['contributors.address'], name=op.f('fk_payee_waits_address_contributors')),
        sa.PrimaryKeyConstraint('address', name=op.f('pk_payee_waits')),
    )
    with op.batch_alter_table('payee_waits') as batch:
        batch.create_index(batch.f('ix_payee_waits_since'), ['since'], unique=False)


def downgrade() -> None:
    op.drop_table('payee_waits')
