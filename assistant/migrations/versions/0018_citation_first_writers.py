"""assistant: a citation can credit the first writer of words its source copied

An answer sentence credited to a source that carries a run of words an older chunk of another
contributor wrote first now pays that part to the older chunk (``retrieval.first_writers``). Its
citation row names the chunk that copied the words in ``copied_by`` (null for a source's own
credit), under the marker of that copy.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-05 22:30:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.add_column('citations', sa.Column('copied_by', Id, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('citations') as batch:
        batch.drop_column('copied_by')
