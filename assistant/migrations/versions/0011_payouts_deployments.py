"""payouts: every amount paid on chain is bound to the deployment it was paid on

Vouchers are cumulative per channel, and a channel belongs to one PaymentChannels contract on
one chain. The ledger kept one cumulative amount per contributor, so after a redeploy (a new
contract, or a reset anvil that redeploys at the same addresses) the first voucher on the new
channel carried everything ever vouchered: 99,000 paid for 9,000 owed. Now:

- ``payout_deployments``: chain id, PaymentChannels address and the hash of the deployment's
  block (the chain state; NULL for the rows made here from older vouchers, until a deployment
  file whose chain agrees with them adopts them).
- ``payee_channels``: per payee and deployment, the channel's own cumulative amounts (opening
  paid, vouchered, settled, retired); ``contributors.vouchered``/``settled`` are their sums.
- ``vouchers.deployment_id`` (NOT NULL) and the unique key (deployment, channel, amount), since
  a reset chain reuses the contract address and channel id; ``settlements`` get the deployment,
  chain id and contract.

Existing rows: one deployment per (chain id, contract) of the vouchers, one channel per
(deployment, channel) at its highest voucher, each contributor's settled amount spread over its
channels in voucher order (one channel each, unless a redeploy already happened), each
settlement placed on the deployment of the voucher its items pushed.

Revision ID: 0011
Revises: 0009
Create Date: 2026-12-04 10:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0009'  # 0010 is reserved by another branch; chain it after 0010 when both land
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table(
        'payout_deployments',
        sa.Column('id', Id, autoincrement=True, nullable=False),
        sa.Column('chain_id', sa.BigInteger(), nullable=False),
        sa.Column('contract', sa.String(length=42), nullable=False),
        sa.Column('deploy_block', sa.BigInteger(), nullable=True),
        sa.Column('deploy_block_hash', sa.String(length=66), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('retired_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('retired_by', sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_payout_deployments')),
        sa.UniqueConstraint('chain_id', 'contract', 'deploy_block_hash', name='uq_payout_deployments_identity'),
    )
    op.create_table(
        'payee_channels',
        sa.Column('id', Id, autoincrement=True, nullable=False),
        sa.Column('deployment_id', Id, nullable=False),
        sa.Column('contributor', sa.String(length=42), nullable=False),
        sa.Column('payer', sa.String(length=42), nullable=False),
        sa.Column('channel_id', sa.String(length=66), nullable=False),
        sa.Column('opening_paid', sa.BigInteger(), nullable=False),
        sa.Column('vouchered', sa.BigInteger(), nullable=False),
        sa.Column('settled', sa.BigInteger(), nullable=False),
        sa.Column('retired', sa.BigInteger(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint('opening_paid >= 0 AND settled >= opening_paid AND retired >= 0 AND vouchered >= settled + retired',
                           name=op.f('ck_payee_channels_channel_amounts_ordered')),
        sa.ForeignKeyConstraint(['deployment_id'], ['payout_deployments.id'],
                                name=op.f('fk_payee_channels_deployment_id_payout_deployments')),
        sa.ForeignKeyConstraint(['contributor'], ['contributors.address'],
                                name=op.f('fk_payee_channels_contributor_contributors')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_payee_channels')),
        sa.UniqueConstraint('deployment_id', 'channel_id', name='uq_payee_channels_deployment_channel'),
    )
    with op.batch_alter_table('payee_channels') as batch:
        batch.create_index(batch.f('ix_payee_channels_deployment_id'), ['deployment_id'], unique=False)
        batch.create_index(batch.f('ix_payee_channels_contributor'), ['contributor'], unique=False)

    conn = op.get_bind()
    conn.execute(sa.text(
        "INSERT INTO payout_deployments (chain_id, contract, created_at) "
        "SELECT chain_id, contract, MIN(created_at) FROM vouchers GROUP BY chain_id, contract"))
    with op.batch_alter_table('vouchers') as batch:
        batch.add_column(sa.Column('deployment_id', Id, nullable=True))
    conn.execute(sa.text(
        "UPDATE vouchers SET deployment_id = (SELECT d.id FROM payout_deployments d "
        "WHERE d.chain_id = vouchers.chain_id AND d.contract = vouchers.contract)"))
    # vouchers is referenced by no other table, so SQLite may rebuild it
    with op.batch_alter_table('vouchers') as batch:
        batch.alter_column('deployment_id', existing_type=Id, nullable=False)
        batch.drop_constraint('uq_vouchers_channel_amount', type_='unique')
        batch.create_unique_constraint('uq_vouchers_deployment_channel_amount',
                                       ['deployment_id', 'channel_id', 'cumulative_amount'])
        batch.create_foreign_key(batch.f('fk_vouchers_deployment_id_payout_deployments'),
                                 'payout_deployments', ['deployment_id'], ['id'])
        batch.create_index(batch.f('ix_vouchers_deployment_id'), ['deployment_id'], unique=False)

    conn.execute(sa.text(
        "INSERT INTO payee_channels (deployment_id, contributor, payer, channel_id, opening_paid, vouchered, "
        "settled, retired, created_at) "
        "SELECT deployment_id, contributor, MIN(payer), channel_id, 0, MAX(cumulative_amount), 0, 0, MIN(created_at) "
        "FROM vouchers GROUP BY deployment_id, contributor, channel_id"))
    # settled: spread over the contributor's channels in the order they were first vouchered
    settled = dict(conn.execute(sa.text("SELECT address, settled FROM contributors WHERE settled > 0")).all())
    channels = conn.execute(sa.text("SELECT id, contributor, vouchered FROM payee_channels ORDER BY created_at, id")).all()
    for channel_id, contributor, vouchered in channels:
        left = int(settled.get(contributor, 0))
        part = min(left, int(vouchered))
        if part:
            conn.execute(sa.text("UPDATE payee_channels SET settled = :p WHERE id = :i"), {"p": part, "i": channel_id})
            settled[contributor] = left - part

    # settlements is referenced by settlement_items: add columns, never rebuild it on SQLite
    # (its DROP would break their foreign keys); SQLite takes the REFERENCES inline.
    fk = 'fk_settlements_deployment_id_payout_deployments'
    if conn.dialect.name == 'sqlite':
        op.execute(f"ALTER TABLE settlements ADD COLUMN deployment_id INTEGER CONSTRAINT {fk} "
                   "REFERENCES payout_deployments (id)")
    else:
        op.add_column('settlements', sa.Column('deployment_id', Id, nullable=True))
        op.create_foreign_key(op.f(fk), 'settlements', 'payout_deployments', ['deployment_id'], ['id'])
    op.add_column('settlements', sa.Column('chain_id', sa.BigInteger(), nullable=True))
    op.add_column('settlements', sa.Column('contract', sa.String(length=42), nullable=True))
    op.create_index(op.f('ix_settlements_deployment_id'), 'settlements', ['deployment_id'], unique=False)
    conn.execute(sa.text(
        "UPDATE settlements SET deployment_id = (SELECT MIN(v.deployment_id) FROM settlement_items i "
        "JOIN vouchers v ON v.contributor = i.contributor AND v.cumulative_amount = i.cumulative_amount "
        "WHERE i.settlement_id = settlements.id)"))
    conn.execute(sa.text(
        "UPDATE settlements SET chain_id = (SELECT d.chain_id FROM payout_deployments d WHERE d.id = settlements.deployment_id), "
        "contract = (SELECT d.contract FROM payout_deployments d WHERE d.id = settlements.deployment_id) "
        "WHERE deployment_id IS NOT NULL"))


def downgrade() -> None:
    # Back to one cumulative amount per contributor: correct only while one deployment was used.
    op.drop_index(op.f('ix_settlements_deployment_id'), table_name='settlements')
    if op.get_bind().dialect.name == 'postgresql':
        op.drop_constraint(op.f('fk_settlements_deployment_id_payout_deployments'), 'settlements', type_='foreignkey')
    # SQLite (3.35+) drops a column that has a REFERENCES clause and no index
    for column in ('contract', 'chain_id', 'deployment_id'):
        op.execute(f"ALTER TABLE settlements DROP COLUMN {column}")
    with op.batch_alter_table('vouchers') as batch:
        batch.drop_index(batch.f('ix_vouchers_deployment_id'))
        batch.drop_constraint(batch.f('fk_vouchers_deployment_id_payout_deployments'), type_='foreignkey')
        batch.drop_constraint('uq_vouchers_deployment_channel_amount', type_='unique')
        batch.create_unique_constraint('uq_vouchers_channel_amount', ['contract', 'channel_id', 'cumulative_amount'])
        batch.drop_column('deployment_id')
    op.drop_table('payee_channels')
    op.drop_table('payout_deployments')
