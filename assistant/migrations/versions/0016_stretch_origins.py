"""retrieval: the origin of word stretches (copies wrapped, trimmed, reworded by a word, merged or split)

Sentence origin (0014) matches whole sentences only: a copied sentence wrapped in other words,
trimmed by a word, a copied clause inside a longer sentence, or two sentences merged into one
passed. ``stretch_origins`` holds the winnowed fingerprints of each stored chunk's runs of
``retrieval.origin.STRETCH_WORDS`` words (64-bit hash) and the first chunk (and contributor) that
stored each: unique on the hash, so the first writer is the origin. ``chunks.stretches_indexed``
marks chunks whose fingerprints are recorded; chunks stored before this migration start unmarked
and are recorded at the next start-up in chunk id order (``Intake.fill_stretch_origins``).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03 18:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table(
        'stretch_origins',
        sa.Column('hash', sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column('chunk_id', Id, nullable=False),
        sa.Column('contributor', sa.String(length=42), nullable=False),
        sa.ForeignKeyConstraint(['chunk_id'], ['chunks.id'], name=op.f('fk_stretch_origins_chunk_id_chunks')),
        sa.PrimaryKeyConstraint('hash', name=op.f('pk_stretch_origins')),
    )
    op.create_index(op.f('ix_stretch_origins_chunk_id'), 'stretch_origins', ['chunk_id'])
    # A plain ADD COLUMN, not a batch: batch mode rebuilds SQLite's chunks table (DROP TABLE), which
    # sentence_origins' rows (a foreign key to chunks, filled since 0014) make fail.
    op.add_column('chunks', sa.Column('stretches_indexed', sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table('chunks') as batch:
        batch.drop_column('stretches_indexed')
    op.drop_index(op.f('ix_stretch_origins_chunk_id'), table_name='stretch_origins')
    op.drop_table('stretch_origins')
