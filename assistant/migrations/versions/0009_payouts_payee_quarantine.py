"""payouts: a payee whose payment fails is quarantined, not retried in every run

One payee that could not be paid (a credit to the zero address or the hub's own address made
``open`` revert) aborted the whole voucher run, which was retried forever while every other
contributor waited. ``payee_quarantine`` records such a payee with its reason; the voucher and
settlement runs leave it out until an operator releases it (``openchat payouts release``) or its
automatic retry is due. No money moves: its credits stay owed.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 10:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'payee_quarantine',
        sa.Column('address', sa.String(length=42), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('stage', sa.String(length=16), nullable=False),
        sa.Column('code', sa.String(length=64), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('failures', sa.Integer(), nullable=False),
        sa.Column('first_failed_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_failed_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('retry_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('released_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('released_by', sa.String(length=200), nullable=True),
        sa.CheckConstraint("status IN ('quarantined', 'released')", name=op.f('ck_payee_quarantine_quarantine_status')),
        sa.CheckConstraint("stage IN ('voucher', 'settle')", name=op.f('ck_payee_quarantine_quarantine_stage')),
        sa.CheckConstraint('failures >= 1', name=op.f('ck_payee_quarantine_quarantine_failures')),
        sa.ForeignKeyConstraint(['address'], ['contributors.address'],
                                name=op.f('fk_payee_quarantine_address_contributors')),
        sa.PrimaryKeyConstraint('address', name=op.f('pk_payee_quarantine')),
    )
    with op.batch_alter_table('payee_quarantine') as batch:
        batch.create_index(batch.f('ix_payee_quarantine_status'), ['status'], unique=False)


def downgrade() -> None:
    op.drop_table('payee_quarantine')
