"""payouts: on-chain top-ups (TopUps deposits credited to askers' balances)

- ``account_deposit_refs``: each account's random bytes32 deposit reference.
- ``chain_deposits``: every ``Deposited`` log, keyed by (chain id, tx hash, log index), with its
  block (number, hash) and status pending → credited | unassigned (or dropped by a reorg).
- ``deposit_cursors``: how far the follower read each TopUps contract for good.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 08:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table(
        'account_deposit_refs',
        sa.Column('account_id', sa.String(length=200), nullable=False),
        sa.Column('ref', sa.String(length=66), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_account_deposit_refs_account_id_accounts')),
        sa.PrimaryKeyConstraint('account_id', name=op.f('pk_account_deposit_refs')),
        sa.UniqueConstraint('ref', name=op.f('uq_account_deposit_refs_ref')),
    )
    op.create_table(
        'chain_deposits',
        sa.Column('id', Id, autoincrement=True, nullable=False),
        sa.Column('chain_id', sa.BigInteger(), nullable=False),
        sa.Column('tx_hash', sa.String(length=66), nullable=False),
        sa.Column('log_index', sa.Integer(), nullable=False),
        sa.Column('contract', sa.String(length=42), nullable=False),
        sa.Column('block_number', sa.BigInteger(), nullable=False),
        sa.Column('block_hash', sa.String(length=66), nullable=False),
        sa.Column('account_ref', sa.String(length=66), nullable=False),
        sa.Column('sender', sa.String(length=42), nullable=False),
        sa.Column('amount_raw', sa.String(length=78), nullable=False),
        sa.Column('amount', sa.BigInteger(), nullable=True),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('account_id', sa.String(length=200), nullable=True),
        sa.Column('note', sa.String(length=200), nullable=True),
        sa.Column('seen_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('final_at', sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('pending', 'credited', 'unassigned', 'dropped')",
                           name=op.f('ck_chain_deposits_deposit_status')),
        sa.CheckConstraint('amount IS NULL OR amount > 0', name=op.f('ck_chain_deposits_deposit_amount_positive')),
        sa.CheckConstraint("status != 'credited' OR (account_id IS NOT NULL AND amount IS NOT NULL)",
                           name=op.f('ck_chain_deposits_deposit_credited_has_account')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_chain_deposits')),
        sa.UniqueConstraint('chain_id', 'tx_hash', 'log_index', name='uq_chain_deposits_log'),
    )
    op.create_index(op.f('ix_chain_deposits_account_ref'), 'chain_deposits', ['account_ref'])
    op.create_index(op.f('ix_chain_deposits_status'), 'chain_deposits', ['status'])
    op.create_index(op.f('ix_chain_deposits_account_id'), 'chain_deposits', ['account_id'])
    op.create_table(
        'deposit_cursors',
        sa.Column('id', Id, autoincrement=True, nullable=False),
        sa.Column('chain_id', sa.BigInteger(), nullable=False),
        sa.Column('contract', sa.String(length=42), nullable=False),
        sa.Column('start_block_hash', sa.String(length=66), nullable=False),
        sa.Column('next_block', sa.BigInteger(), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_deposit_cursors')),
        sa.UniqueConstraint('chain_id', 'contract', 'start_block_hash', name='uq_deposit_cursors_identity'),
    )


def downgrade() -> None:
    op.drop_table('deposit_cursors')
    op.drop_index(op.f('ix_chain_deposits_account_id'), table_name='chain_deposits')
    op.drop_index(op.f('ix_chain_deposits_status'), table_name='chain_deposits')
    op.drop_index(op.f('ix_chain_deposits_account_ref'), table_name='chain_deposits')
    op.drop_table('chain_deposits')
    op.drop_table('account_deposit_refs')
