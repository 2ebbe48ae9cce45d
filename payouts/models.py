"""Ledger tables of the payouts package (SQLAlchemy 2, own ``MetaData``).

Money is integer base units in ``BigInteger`` columns (the 6-decimal dev stablecoin: 2**63 base
units is 9.2e12 ocUSD, far above any balance here), guarded by CHECK constraints; never a float.
The table names do not collide with the assistant's (answers, citations, ...) or the knowledge
base's; ``credits.answer_id`` names the assistant's answer without a foreign key, because
``payouts`` does not depend on other packages' tables.

Lifecycle of money (each row is one state, every change of a balance is also a journal row):
``accounts.balance`` (asker) → ``answer_payments`` (one per answer: total = fee + pool) →
``credits`` (per answer and contributor; insert-only) + ``unbatched_credits`` (its queue entry,
written in the same transaction) → ``batch_credits`` (the credit's one batch; the queue entry is
deleted in the same transaction) → ``payout_batches``
/ ``payout_batch_items`` (raise ``contributors.batched``, the cumulative amount owed) →
``vouchers`` (signed EIP-712 cumulative amount of one channel of one deployment;
``payee_channels.vouchered``, ``contributors.vouchered``) → ``settlements`` / ``settlement_items``
(on-chain pushes on one deployment; ``payee_channels.settled``, ``contributors.settled``). Each
deployment is a ``payout_deployments`` row: amounts on chain are bound to it, never carried over. A payee
whose payment fails is parked in ``payee_quarantine`` (no money moves) so nobody else waits.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Same naming convention as retrieval/models.py: identical constraint names on SQLite and PG.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# SQLite only autoincrements INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT.
Id = BigInteger().with_variant(Integer(), "sqlite")
Money = BigInteger


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = metadata


class Account(Base):
    """An asker's prepaid balance (the ``account`` string the API keys name)."""

    __tablename__ = "accounts"
    __table_args__ = (CheckConstraint("balance >= 0", name="balance_nonnegative"),)

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    balance: Mapped[int] = mapped_column(Money, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ApiKey(Base):
    """An API key of an account; only its sha256 is stored."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    name: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Contributor(Base):
    """A payee (EIP-55 address) and its cumulative amounts, each never decreasing:
    earned (Σ credits) ≥ batched (Σ batched credits) ≥ vouchered ≥ settled (paid on chain)."""

    __tablename__ = "contributors"
    __table_args__ = (
        CheckConstraint(
            "earned >= batched AND batched >= vouchered AND vouchered >= settled AND settled >= 0",
            name="amounts_ordered",
        ),
    )

    address: Mapped[str] = mapped_column(String(42), primary_key=True)
    display_name: Mapped[str | None] = mapped_column(String(200))
    earned: Mapped[int] = mapped_column(Money, default=0)
    batched: Mapped[int] = mapped_column(Money, default=0)
    vouchered: Mapped[int] = mapped_column(Money, default=0)
    settled: Mapped[int] = mapped_column(Money, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AnswerPayment(Base):
    """What one answer cost its asker: total = fee + pool; Σ credits of the answer = pool.

    ``price`` is the answer's base price; ``fee`` is the platform's part: its fee on the price
    (``price·fee_bps // 10000``) plus, for a metered (LLM) answer, the tokens' cost."""

    __tablename__ = "answer_payments"
    __table_args__ = (
        CheckConstraint("fee >= 0 AND pool >= 0 AND total = fee + pool", name="total_is_fee_plus_pool"),
    )

    answer_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    price: Mapped[int] = mapped_column(Money)
    fee_bps: Mapped[int] = mapped_column(Integer)
    total: Mapped[int] = mapped_column(Money)
    fee: Mapped[int] = mapped_column(Money)
    pool: Mapped[int] = mapped_column(Money)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)


class AnswerHold(Base):
    """An answer's price held from its asker's balance before the first byte is delivered;
    settled when the answer is recorded (the real charge is debited in the same transaction)
    or released when no answer was given (a failed model call, a stream ended before any text)."""

    __tablename__ = "answer_holds"
    __table_args__ = (
        CheckConstraint("amount > 0", name="hold_is_positive"),
        CheckConstraint("status IN ('open', 'settled', 'released')", name="hold_status"),
    )

    answer_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    amount: Mapped[int] = mapped_column(Money)
    status: Mapped[str] = mapped_column(String(16), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class PayoutBatch(Base):
    """One run of ``aggregate``: the credits it took (each credit is in at most one batch)."""

    __tablename__ = "payout_batches"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    credit_count: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int] = mapped_column(Money, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Credit(Base):
    """A contributor's share of one answer's pool. Insert-only (the database refuses UPDATE and
    DELETE): which batch took it is a ``batch_credits`` row, so batching never rewrites this wide,
    five-index row (that rewrite was most of aggregate's time on PostgreSQL, see docs/payouts.md)."""

    __tablename__ = "credits"
    __table_args__ = (
        UniqueConstraint("answer_id", "contributor", name="uq_credits_answer_contributor"),
        CheckConstraint("amount > 0", name="amount_positive"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    answer_id: Mapped[str] = mapped_column(ForeignKey("answer_payments.answer_id"), index=True)
    contributor: Mapped[str] = mapped_column(ForeignKey("contributors.address"), index=True)
    amount: Mapped[int] = mapped_column(Money)
    weight: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class UnbatchedCredit(Base):
    """The queue of credits no batch has taken yet: a row is inserted with its credit (same
    transaction) and deleted by the aggregate that inserts the credit's ``batch_credits`` row
    (same transaction), so every credit is in exactly one of the two tables."""

    __tablename__ = "unbatched_credits"

    credit_id: Mapped[int] = mapped_column(Id, ForeignKey("credits.id"), primary_key=True, autoincrement=False)


class BatchCredit(Base):
    """Which batch took a credit. The primary key is the credit: the database itself refuses a
    credit in two batches. Append-only (UPDATE and DELETE refused by triggers)."""

    __tablename__ = "batch_credits"

    credit_id: Mapped[int] = mapped_column(Id, ForeignKey("credits.id"), primary_key=True, autoincrement=False)
    batch_id: Mapped[int] = mapped_column(Id, ForeignKey("payout_batches.id"), index=True)


class PayoutBatchItem(Base):
    """Per batch and contributor: the amount batched and the cumulative owed after it."""

    __tablename__ = "payout_batch_items"
    __table_args__ = (
        UniqueConstraint("batch_id", "contributor", name="uq_payout_batch_items_batch_contributor"),
        CheckConstraint("amount > 0", name="amount_positive"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("payout_batches.id"), index=True)
    contributor: Mapped[str] = mapped_column(ForeignKey("contributors.address"), index=True)
    amount: Mapped[int] = mapped_column(Money)
    credit_count: Mapped[int] = mapped_column(Integer)
    cumulative: Mapped[int] = mapped_column(Money)


class PayoutDeployment(Base):
    """A PaymentChannels deployment the ledger paid on: chain id, contract and the chain state it
    lives in (the hash of its deployment block; a reset anvil redeploys at the same addresses).
    Every voucher, settlement and channel row names one. ``retired_at``: its unsettled vouchers
    were returned to owed (``openchat payouts retire``), exactly once; nothing is paid there since.
    ``deploy_block_hash`` is NULL only for a row migration 0011 made from older vouchers, until
    the first deployment file of that chain and contract whose chain agrees with it adopts it."""

    __tablename__ = "payout_deployments"
    __table_args__ = (
        UniqueConstraint("chain_id", "contract", "deploy_block_hash", name="uq_payout_deployments_identity"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    contract: Mapped[str] = mapped_column(String(42))
    deploy_block: Mapped[int | None] = mapped_column(BigInteger)
    deploy_block_hash: Mapped[str | None] = mapped_column(String(66))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    retired_by: Mapped[str | None] = mapped_column(String(200))


class PayeeChannel(Base):
    """One payee's channel on one deployment, in the channel's own cumulative amounts (what its
    vouchers and pushes say): ``opening_paid`` (what it had paid when the ledger first used it,
    normally 0) ≤ ``settled`` (its ``paid`` on chain) ≤ ``vouchered`` − ``retired`` (the unsettled
    part returned to owed when its deployment was retired). The contributor's ledger amounts are
    the sums: vouchered = Σ (vouchered − opening_paid − retired), settled = Σ (settled − opening_paid)."""

    __tablename__ = "payee_channels"
    __table_args__ = (
        UniqueConstraint("deployment_id", "channel_id", name="uq_payee_channels_deployment_channel"),
        CheckConstraint(
            "opening_paid >= 0 AND settled >= opening_paid AND retired >= 0 AND vouchered >= settled + retired",
            name="channel_amounts_ordered",
        ),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("payout_deployments.id"), index=True)
    contributor: Mapped[str] = mapped_column(ForeignKey("contributors.address"), index=True)
    payer: Mapped[str] = mapped_column(String(42))
    channel_id: Mapped[str] = mapped_column(String(66))
    opening_paid: Mapped[int] = mapped_column(Money, default=0)
    vouchered: Mapped[int] = mapped_column(Money, default=0)
    settled: Mapped[int] = mapped_column(Money, default=0)
    retired: Mapped[int] = mapped_column(Money, default=0)
    # The channel's deposit on chain as the payout runs last saw or made it, and its state there
    # (open | closing | settled): what the hub has committed, for status and metrics (0013).
    deposited: Mapped[int] = mapped_column(Money, default=0, server_default="0")
    state: Mapped[str] = mapped_column(String(16), default="open", server_default="open")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ChannelClosure(Base):
    """An idle channel the reclaim run closed (status closing), then settled after the challenge
    period (status settled, ``reclaimed`` = the unused deposit refunded to the hub). One row per
    closing of a channel: deposits are cumulative on chain and every re-open adds one, so
    (deployment, channel, deposit at close) names a closing exactly (migration 0013)."""

    __tablename__ = "channel_closures"
    __table_args__ = (
        UniqueConstraint("deployment_id", "channel_id", "deposited", name="uq_channel_closures_closing"),
        CheckConstraint("paid >= 0 AND paid <= deposited AND (reclaimed IS NULL OR "
                        "(reclaimed >= 0 AND reclaimed <= deposited - paid))", name="closure_amounts"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("payout_deployments.id"), index=True)
    contributor: Mapped[str] = mapped_column(ForeignKey("contributors.address"), index=True)
    channel_id: Mapped[str] = mapped_column(String(66))
    status: Mapped[str] = mapped_column(String(16), default="closing", index=True)
    deposited: Mapped[int] = mapped_column(Money)  # on chain when closed
    paid: Mapped[int] = mapped_column(Money)  # on chain when closed: every voucher of it
    closes_at: Mapped[int] = mapped_column(BigInteger)  # chain time the challenge period ends
    close_block: Mapped[int] = mapped_column(BigInteger)  # at or before the close (settle logs are after)
    close_tx: Mapped[str | None] = mapped_column(String(66))  # None: adopted from the chain after a crash
    reclaimed: Mapped[int | None] = mapped_column(Money)
    settle_tx: Mapped[str | None] = mapped_column(String(66))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    settled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Voucher(Base):
    """A hub-signed EIP-712 voucher for a contributor's channel on one deployment (its chain id
    and contract are also the voucher's EIP-712 domain). ``cumulative_amount`` is the channel's.
    One row per (deployment, channel, amount): signing the same amount again stores nothing new."""

    __tablename__ = "vouchers"
    __table_args__ = (
        UniqueConstraint("deployment_id", "channel_id", "cumulative_amount", name="uq_vouchers_deployment_channel_amount"),
        CheckConstraint("cumulative_amount > 0", name="amount_positive"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    contributor: Mapped[str] = mapped_column(ForeignKey("contributors.address"), index=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("payout_deployments.id"), index=True)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    contract: Mapped[str] = mapped_column(String(42))
    payer: Mapped[str] = mapped_column(String(42))
    channel_id: Mapped[str] = mapped_column(String(66), index=True)
    cumulative_amount: Mapped[int] = mapped_column(Money)
    signature: Mapped[str] = mapped_column(String(132))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Settlement(Base):
    """One batched ``pushPayments`` transaction on one deployment (status pending → confirmed |
    failed | reconciled: confirmed from the chain's state after a crash lost the receipt). The
    deployment columns are NULL only for a settlement from before migration 0011 that no voucher
    could place."""

    __tablename__ = "settlements"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    deployment_id: Mapped[int | None] = mapped_column(ForeignKey("payout_deployments.id"), index=True)
    chain_id: Mapped[int | None] = mapped_column(BigInteger)
    contract: Mapped[str | None] = mapped_column(String(42))
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    tx_hash: Mapped[str | None] = mapped_column(String(66), unique=True)
    block_number: Mapped[int | None] = mapped_column(BigInteger)
    gas_used: Mapped[int | None] = mapped_column(BigInteger)
    total: Mapped[int] = mapped_column(Money, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class SettlementItem(Base):
    """One channel of a settlement: paid up to the channel's ``cumulative_amount`` (``amount`` new)."""

    __tablename__ = "settlement_items"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    settlement_id: Mapped[int] = mapped_column(ForeignKey("settlements.id"), index=True)
    contributor: Mapped[str] = mapped_column(ForeignKey("contributors.address"), index=True)
    cumulative_amount: Mapped[int] = mapped_column(Money)
    amount: Mapped[int] = mapped_column(Money)


class PayeeQuarantine(Base):
    """A payee whose payment failed inside a voucher or settlement run, kept out of those runs so
    that everyone else is paid. No money moves: its credits stay owed (batched, not vouchered, or
    vouchered, not settled) until it is released. ``status`` quarantined → released (by the
    operator, or by the run that retried it after ``retry_at`` and paid it); NULL ``retry_at``:
    only the operator releases it. One row per payee, kept after release (``failures`` counts on
    and sets the next backoff)."""

    __tablename__ = "payee_quarantine"
    __table_args__ = (
        CheckConstraint("status IN ('quarantined', 'released')", name="quarantine_status"),
        CheckConstraint("stage IN ('voucher', 'settle')", name="quarantine_stage"),
        CheckConstraint("failures >= 1", name="quarantine_failures"),
    )

    address: Mapped[str] = mapped_column(ForeignKey("contributors.address"), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    stage: Mapped[str] = mapped_column(String(16))
    code: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    failures: Mapped[int] = mapped_column(Integer)
    first_failed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_failed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    retry_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    released_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    released_by: Mapped[str | None] = mapped_column(String(200))


class PayeeWait(Base):
    """A small payee (lifetime earnings below ``small_payee_earned_below``) whose channel deposit
    would take small payees' committed funds over their cap: it waits, in queue order (``since``,
    then address), until funds are freed (``payouts.small_payees``, migration 0017). No money
    moves: what it is owed stays in ``contributors``. ``needed``/``owed``/``cap``/``committed``
    and ``reason`` are as the last voucher run (``checked_at``) saw them; the row is deleted once
    the payee is paid."""

    __tablename__ = "payee_waits"
    __table_args__ = (
        CheckConstraint("needed >= 0 AND owed >= 0 AND cap >= 0 AND committed >= 0", name="wait_amounts"),
    )

    address: Mapped[str] = mapped_column(ForeignKey("contributors.address"), primary_key=True)
    since: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    checked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    needed: Mapped[int] = mapped_column(Money)
    owed: Mapped[int] = mapped_column(Money)
    cap: Mapped[int] = mapped_column(Money)
    committed: Mapped[int] = mapped_column(Money)
    reason: Mapped[str] = mapped_column(Text)


class JournalEntry(Base):
    """Append-only record of every balance change (UPDATE/DELETE refused by DB triggers,
    created in the migration).

    ``holder`` is ``account:<id>``, ``contributor:<address>`` (kind ``earned``/``batched``/
    ``vouchered``/``settled``: which cumulative amount moved) or ``platform`` (kind ``fee``, and
    ``model_usage``: a metered answer's token cost, kept to pay the model's provider).
    """

    __tablename__ = "journal_entries"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    holder: Mapped[str] = mapped_column(String(260), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    delta: Mapped[int] = mapped_column(Money)
    balance_after: Mapped[int | None] = mapped_column(Money)
    answer_id: Mapped[str | None] = mapped_column(String(40), index=True)
    ref: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ContributionAnchor(Base):
    """One Merkle root of contribution leaves anchored on the ContributionRegistry (status
    pending → confirmed). Committed ``pending`` before the transaction is sent, so a crash or a
    dropped transaction leaves a trace the next run finishes (the registry refuses a root twice)."""

    __tablename__ = "contribution_anchors"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    root: Mapped[str] = mapped_column(String(66), unique=True)
    leaf_count: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    chain_id: Mapped[int | None] = mapped_column(BigInteger)
    registry_address: Mapped[str | None] = mapped_column(String(42))
    registry_batch_id: Mapped[int | None] = mapped_column(BigInteger)
    tx_hash: Mapped[str | None] = mapped_column(String(66))
    block_number: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    anchored_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AnchoredLeaf(Base):
    """A contribution leaf (contributor, content hash, contribution id) in exactly one anchor:
    the content hash is unique (its first contributor is its origin), so nothing is anchored twice."""

    __tablename__ = "anchored_leaves"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    anchor_id: Mapped[int] = mapped_column(ForeignKey("contribution_anchors.id"), index=True)
    contributor: Mapped[str] = mapped_column(String(42))
    content_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 hex, as the knowledge base keeps it
    contribution_id: Mapped[int] = mapped_column(BigInteger, index=True)


class AccountDepositRef(Base):
    """An account's deposit reference: the bytes32 an on-chain ``TopUps.deposit`` names. It is
    the keccak of 32 random bytes drawn when the account first needs it, so it says nothing of
    the account's id or its keys, and knowing it only lets someone pay into the account."""

    __tablename__ = "account_deposit_refs"

    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    ref: Mapped[str] = mapped_column(String(66), unique=True)  # 0x + 64 lowercase hex
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ChainDeposit(Base):
    """One ``Deposited`` log of the TopUps contract, keyed by (chain id, tx hash, log index).

    ``pending`` (seen, not final: fewer confirmations than required, or its block was replaced
    and it is waiting to be seen again) → ``credited`` (final and in its recorded block; the
    account's balance rose in the same transaction) or ``unassigned`` (final, but its reference
    names no account or its amount does not fit a balance: kept for the operator, never lost);
    ``dropped``: its block was replaced at a final height and the node no longer has the
    transaction (it returns to ``pending`` if it is mined again). Only pending and dropped rows
    ever change; a credited one is never un-credited."""

    __tablename__ = "chain_deposits"
    __table_args__ = (
        UniqueConstraint("chain_id", "tx_hash", "log_index", name="uq_chain_deposits_log"),
        CheckConstraint("status IN ('pending', 'credited', 'unassigned', 'dropped')", name="deposit_status"),
        CheckConstraint("amount IS NULL OR amount > 0", name="deposit_amount_positive"),
        CheckConstraint("status != 'credited' OR (account_id IS NOT NULL AND amount IS NOT NULL)",
                        name="deposit_credited_has_account"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    tx_hash: Mapped[str] = mapped_column(String(66))
    log_index: Mapped[int] = mapped_column(Integer)
    contract: Mapped[str] = mapped_column(String(42))
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[str] = mapped_column(String(66))
    account_ref: Mapped[str] = mapped_column(String(66), index=True)
    sender: Mapped[str] = mapped_column(String(42))
    amount_raw: Mapped[str] = mapped_column(String(78))  # the uint256 as logged, in decimal
    amount: Mapped[int | None] = mapped_column(Money)  # NULL when it does not fit a balance
    status: Mapped[str] = mapped_column(String(16), index=True)
    account_id: Mapped[str | None] = mapped_column(String(200), index=True)
    note: Mapped[str | None] = mapped_column(String(200))
    seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    final_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class DepositCursor(Base):
    """How far the deposit follower has read a TopUps contract's logs for good: every block
    below ``next_block`` was final when read. Keyed by the contract's deployment block hash too:
    a reset anvil redeploys at the same address and its blocks start again."""

    __tablename__ = "deposit_cursors"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    contract: Mapped[str] = mapped_column(String(42))
    start_block_hash: Mapped[str] = mapped_column(String(66))
    next_block: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (UniqueConstraint("chain_id", "contract", "start_block_hash", name="uq_deposit_cursors_identity"),)
