"""payouts: an answer's price is held before it is delivered

A streamed answer used to be debited after its last byte: N concurrent requests against a
balance for one answer all got the answer. ``answer_holds`` records the price held from the
balance at the start of an answer (journal kind ``hold``), settled when the answer is recorded
(``release`` then the real debit, in one transaction) or released when nothing was delivered.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 15:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None




def upgrade() -> None:
    op.create_table(
        'answer_holds',
        sa.Column('answer_id', sa.String(length=40), nullable=False),
        sa.Column('account_id', sa.String(length=200), nullable=False),
        sa.Column('amount', sa.BigInteger(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint('amount > 0', name=op.f('ck_answer_holds_hold_is_positive')),
        sa.CheckConstraint("status IN ('open', 'settled', 'released')", name=op.f('ck_answer_holds_hold_status')),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_answer_holds_account_id_accounts')),
        sa.PrimaryKeyConstraint('answer_id', name=op.f('pk_answer_holds')),
    )
    with op.batch_alter_table('answer_holds') as batch:
        batch.create_index(batch.f('ix_answer_holds_account_id'), ['account_id'], unique=False)
        batch.create_index(batch.f('ix_answer_holds_status'), ['status'], unique=False)
        batch.create_index(batch.f('ix_answer_holds_created_at'), ['created_at'], unique=False)


def downgrade() -> None:
    op.drop_table('answer_holds')
