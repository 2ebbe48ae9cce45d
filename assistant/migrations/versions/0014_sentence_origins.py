"""retrieval: the origin of every sentence long enough to carry a fact

Chunk-level dedupe missed a new text that copies one sentence of an older chunk (its cosine to
the whole chunk stays under the threshold), and the copy could take that sentence's credit.
``sentence_origins`` holds, for each stored sentence of at least ``retrieval.origin.MIN_WORDS``
words, the hash of its words and the first chunk (and contributor) that stored it: unique on the
hash, so the first writer is the origin. ``chunks.sentences_indexed`` marks chunks whose
sentences are recorded; chunks stored before this migration start unmarked and are recorded at
the next start-up, in chunk id order (``Intake.fill_sentence_origins``), so the oldest chunk of
a sentence is its origin.

Revision ID: 0014
Revises: 0011
Create Date: 2026-12-03 08:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table(
        'sentence_origins',
        sa.Column('hash', sa.String(length=64), nullable=False),
        sa.Column('chunk_id', Id, nullable=False),
        sa.Column('contributor', sa.String(length=42), nullable=False),
        sa.ForeignKeyConstraint(['chunk_id'], ['chunks.id'], name=op.f('fk_sentence_origins_chunk_id_chunks')),
        sa.PrimaryKeyConstraint('hash', name=op.f('pk_sentence_origins')),
    )
    op.create_index(op.f('ix_sentence_origins_chunk_id'), 'sentence_origins', ['chunk_id'])
    with op.batch_alter_table('chunks') as batch:
        batch.add_column(sa.Column('sentences_indexed', sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table('chunks') as batch:
        batch.drop_column('sentences_indexed')
    op.drop_index(op.f('ix_sentence_origins_chunk_id'), table_name='sentence_origins')
    op.drop_table('sentence_origins')
