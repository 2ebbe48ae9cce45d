"""retrieval: each chunk's sentence vectors, made at ingest

The extractive responder scores every sentence of the retrieved chunks by its embedding; made at
answer time, those embeddings were about nine tenths of its time (hotpotqa-dev profile, docs/
assistant.md). ``sentence_vectors`` keeps, per chunk, each sentence the responder embeds (the text
it embeds, a message's with its speaker) and its float32 vector, written in the chunk's insert
transaction. Chunks stored before this migration have none; the responder embeds theirs when it
reads them, as before.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 18:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table(
        'sentence_vectors',
        sa.Column('chunk_id', Id, nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('vector', sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(['chunk_id'], ['chunks.id'], name=op.f('fk_sentence_vectors_chunk_id_chunks')),
        sa.PrimaryKeyConstraint('chunk_id', 'position', name=op.f('pk_sentence_vectors')),
    )


def downgrade() -> None:
    op.drop_table('sentence_vectors')
