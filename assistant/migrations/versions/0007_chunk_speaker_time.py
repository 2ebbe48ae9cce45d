"""retrieval: a chunk's speaker and the time it was said or written

A chat message's speaker and time are part of what it says; rows of data sets and snippets may
carry them (``speaker``, ``timestamp`` in ISO 8601). Both nullable: knowledge without them is
unchanged.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 14:30:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('chunks') as batch:
        batch.add_column(sa.Column('speaker', sa.Text(), nullable=True))
        batch.add_column(sa.Column('said_at', sa.String(length=40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('chunks') as batch:
        batch.drop_column('said_at')
        batch.drop_column('speaker')
