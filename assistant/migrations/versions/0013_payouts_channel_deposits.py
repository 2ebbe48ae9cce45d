"""payouts: channel deposits sized to what is owed, idle channels closed and reclaimed

Each new channel got a fixed deposit whatever was owed (five payees owed 0.009 ocUSD each locked
50 ocUSD) and nothing ever closed an idle channel. The voucher run now sizes deposits to what is
owed and records them; the reclaim run closes idle channels and settles them after the challenge
period. What the ledger records for that:

- ``payee_channels.deposited``: the channel's deposit on chain as the runs last saw or made it
  (existing rows start at their vouchered amount, the least their deposit can be; the next voucher
  or reclaim run reads the chain), and ``state`` (open | closing | settled).
- ``channel_closures``: one row per closing of a channel: deposit and paid at close, the chain
  time the challenge period ends, the close and settle transactions, and ``reclaimed`` (the unused
  deposit refunded to the hub).

Revision ID: 0013
Revises: 0011
Create Date: 2026-12-03 08:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    # payee_channels is referenced by no other table: SQLite may rebuild it (batch mode)
    with op.batch_alter_table('payee_channels') as batch:
        batch.add_column(sa.Column('deposited', sa.BigInteger(), server_default='0', nullable=False))
        batch.add_column(sa.Column('state', sa.String(length=16), server_default='open', nullable=False))
    op.execute("UPDATE payee_channels SET deposited = vouchered")
    op.create_table(
        'channel_closures',
        sa.Column('id', Id, autoincrement=True, nullable=False),
        sa.Column('deployment_id', Id, nullable=False),
        sa.Column('contributor', sa.String(length=42), nullable=False),
        sa.Column('channel_id', sa.String(length=66), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('deposited', sa.BigInteger(), nullable=False),
        sa.Column('paid', sa.BigInteger(), nullable=False),
        sa.Column('closes_at', sa.BigInteger(), nullable=False),
        sa.Column('close_block', sa.BigInteger(), nullable=False),
        sa.Column('close_tx', sa.String(length=66), nullable=True),
        sa.Column('reclaimed', sa.BigInteger(), nullable=True),
        sa.Column('settle_tx', sa.String(length=66), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('settled_at', sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint('paid >= 0 AND paid <= deposited AND (reclaimed IS NULL OR '
                           '(reclaimed >= 0 AND reclaimed <= deposited - paid))',
                           name=op.f('ck_channel_closures_closure_amounts')),
        sa.ForeignKeyConstraint(['deployment_id'], ['payout_deployments.id'],
                                name=op.f('fk_channel_closures_deployment_id_payout_deployments')),
        sa.ForeignKeyConstraint(['contributor'], ['contributors.address'],
                                name=op.f('fk_channel_closures_contributor_contributors')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_channel_closures')),
        sa.UniqueConstraint('deployment_id', 'channel_id', 'deposited', name='uq_channel_closures_closing'),
    )
    with op.batch_alter_table('channel_closures') as batch:
        batch.create_index(batch.f('ix_channel_closures_deployment_id'), ['deployment_id'], unique=False)
        batch.create_index(batch.f('ix_channel_closures_contributor'), ['contributor'], unique=False)
        batch.create_index(batch.f('ix_channel_closures_status'), ['status'], unique=False)


def downgrade() -> None:
    op.drop_table('channel_closures')
    with op.batch_alter_table('payee_channels') as batch:
        batch.drop_column('state')
        batch.drop_column('deposited')
