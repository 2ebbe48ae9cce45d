"""payouts: batch membership in narrow tables; credits become insert-only

``credits.batch_id`` goes. Batching used to UPDATE that column on every credit it took: on
PostgreSQL each such UPDATE writes a new version of the wide row with five index entries (no HOT,
the column was indexed) plus a foreign-key check per row, which kept aggregate under 20,000
credits/s. Now a credit gets an ``unbatched_credits`` row when it is written and, when batched, a
``batch_credits (credit_id PK, batch_id)`` row while its queue row is deleted (docs/payouts.md).

Existing rows move: batched credits → ``batch_credits``, unbatched ones → ``unbatched_credits``.
The credits' (id, batch_id) pairs are copied to a plain stash table first, because on SQLite
dropping a column rebuilds ``credits`` (DROP + rename), which the foreign keys of rows already
pointing at it would refuse.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 19:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
STASH = '_credit_batches_0006'
APPEND_ONLY = ('credits', 'batch_credits')


def _append_only_sql(dialect: str) -> list[str]:
    if dialect == 'sqlite':
        return [f"CREATE TRIGGER {t}_no_{verb.lower()} BEFORE {verb} ON {t} "
                f"BEGIN SELECT RAISE(ABORT, '{t} is insert-only'); END"
                for t in APPEND_ONLY for verb in ('UPDATE', 'DELETE')]
    if dialect == 'postgresql':
        return [("CREATE FUNCTION ledger_insert_only() RETURNS trigger LANGUAGE plpgsql AS "
                 "$$ BEGIN RAISE EXCEPTION '% is insert-only', TG_TABLE_NAME; END $$")] + [
            f"CREATE TRIGGER {t}_no_change BEFORE UPDATE OR DELETE ON {t} "
            "FOR EACH ROW EXECUTE FUNCTION ledger_insert_only()" for t in APPEND_ONLY]
    return []


def _drop_append_only_sql(dialect: str) -> list[str]:
    if dialect == 'sqlite':
        return [f"DROP TRIGGER IF EXISTS {t}_{k}" for t in APPEND_ONLY for k in ('no_update', 'no_delete')]
    if dialect == 'postgresql':
        return [f"DROP TRIGGER IF EXISTS {t}_no_change ON {t}" for t in APPEND_ONLY] + [
            "DROP FUNCTION IF EXISTS ledger_insert_only()"]
    return []


def _stash() -> None:
    op.create_table(STASH, sa.Column('credit_id', Id, primary_key=True, autoincrement=False),
                    sa.Column('batch_id', Id, nullable=True))


def upgrade() -> None:
    _stash()
    op.execute(f"INSERT INTO {STASH} (credit_id, batch_id) SELECT id, batch_id FROM credits")
    with op.batch_alter_table('credits', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_credits_batch_id'))
        batch_op.drop_constraint(batch_op.f('fk_credits_batch_id_payout_batches'), type_='foreignkey')
        batch_op.drop_column('batch_id')

    op.create_table('unbatched_credits',
    sa.Column('credit_id', Id, autoincrement=False, nullable=False),
    sa.ForeignKeyConstraint(['credit_id'], ['credits.id'], name=op.f('fk_unbatched_credits_credit_id_credits')),
    sa.PrimaryKeyConstraint('credit_id', name=op.f('pk_unbatched_credits'))
    )
    op.create_table('batch_credits',
    sa.Column('credit_id', Id, autoincrement=False, nullable=False),
    sa.Column('batch_id', Id, nullable=False),
    sa.ForeignKeyConstraint(['batch_id'], ['payout_batches.id'], name=op.f('fk_batch_credits_batch_id_payout_batches')),
    sa.ForeignKeyConstraint(['credit_id'], ['credits.id'], name=op.f('fk_batch_credits_credit_id_credits')),
    sa.PrimaryKeyConstraint('credit_id', name=op.f('pk_batch_credits'))
    )
    with op.batch_alter_table('batch_credits', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_batch_credits_batch_id'), ['batch_id'], unique=False)

    op.execute(f"INSERT INTO batch_credits (credit_id, batch_id) "
               f"SELECT credit_id, batch_id FROM {STASH} WHERE batch_id IS NOT NULL ORDER BY credit_id")
    op.execute(f"INSERT INTO unbatched_credits (credit_id) "
               f"SELECT credit_id FROM {STASH} WHERE batch_id IS NULL ORDER BY credit_id")
    op.drop_table(STASH)
    for sql in _append_only_sql(op.get_bind().dialect.name):
        op.execute(sql)


def downgrade() -> None:
    for sql in _drop_append_only_sql(op.get_bind().dialect.name):
        op.execute(sql)
    _stash()
    op.execute(f"INSERT INTO {STASH} (credit_id, batch_id) SELECT credit_id, batch_id FROM batch_credits")
    with op.batch_alter_table('batch_credits', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_batch_credits_batch_id'))
    op.drop_table('batch_credits')
    op.drop_table('unbatched_credits')

    with op.batch_alter_table('credits', schema=None) as batch_op:
        batch_op.add_column(sa.Column('batch_id', Id, nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_credits_batch_id_payout_batches'), 'payout_batches',
                                    ['batch_id'], ['id'])
        batch_op.create_index(batch_op.f('ix_credits_batch_id'), ['batch_id'], unique=False)
    op.execute(f"UPDATE credits SET batch_id = (SELECT batch_id FROM {STASH} WHERE {STASH}.credit_id = credits.id) "
               f"WHERE id IN (SELECT credit_id FROM {STASH})")
    op.drop_table(STASH)
