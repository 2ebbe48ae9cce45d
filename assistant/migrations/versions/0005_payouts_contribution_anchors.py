"""payouts: contribution anchors (Merkle roots on the ContributionRegistry) and their leaves

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 13:47:56.965634
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('contribution_anchors',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('root', sa.String(length=66), nullable=False),
    sa.Column('leaf_count', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('chain_id', sa.BigInteger(), nullable=True),
    sa.Column('registry_address', sa.String(length=42), nullable=True),
    sa.Column('registry_batch_id', sa.BigInteger(), nullable=True),
    sa.Column('tx_hash', sa.String(length=66), nullable=True),
    sa.Column('block_number', sa.BigInteger(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('anchored_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_contribution_anchors')),
    sa.UniqueConstraint('root', name=op.f('uq_contribution_anchors_root'))
    )
    with op.batch_alter_table('contribution_anchors', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_contribution_anchors_status'), ['status'], unique=False)

    op.create_table('anchored_leaves',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('anchor_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('contributor', sa.String(length=42), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('contribution_id', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['anchor_id'], ['contribution_anchors.id'], name=op.f('fk_anchored_leaves_anchor_id_contribution_anchors')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_anchored_leaves')),
    sa.UniqueConstraint('content_hash', name=op.f('uq_anchored_leaves_content_hash'))
    )
    with op.batch_alter_table('anchored_leaves', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_anchored_leaves_anchor_id'), ['anchor_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_anchored_leaves_contribution_id'), ['contribution_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('anchored_leaves', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_anchored_leaves_contribution_id'))
        batch_op.drop_index(batch_op.f('ix_anchored_leaves_anchor_id'))

    op.drop_table('anchored_leaves')
    with op.batch_alter_table('contribution_anchors', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_contribution_anchors_status'))

    op.drop_table('contribution_anchors')
