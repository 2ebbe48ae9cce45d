"""The ledger: exact money movements in the caller's (or one) database transaction.

Every function takes a SQLAlchemy ``Session`` and works inside its current transaction; the
caller commits (``with Session(engine) as s, s.begin(): ...``). Integer base units only.

Concurrency: balances move with single conditional ``UPDATE ... SET x = x + :d WHERE ...``
statements (no read-modify-write), so concurrent writers never lose an update; ``aggregate``
takes credits off the ``unbatched_credits`` queue (PostgreSQL: ``DELETE ... FOR UPDATE SKIP
LOCKED ... RETURNING``; SQLite: its first statement is a write, which takes the database's write
lock) and records each in ``batch_credits``, whose primary key is the credit: no credit is ever
batched twice, and the database would refuse it if the code tried.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from eth_utils import is_address, to_checksum_address
from sqlalchemy import Connection, bindparam, delete, func, insert, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from payouts import quarantine
from payouts.models import (
    Account,
    AnswerHold,
    AnswerPayment,
    ApiKey,
    BatchCredit,
    Contributor,
    Credit,
    JournalEntry,
    PayeeChannel,
    PayoutBatch,
    PayoutBatchItem,
    PayoutDeployment,
    Settlement,
    SettlementItem,
    UnbatchedCredit,
    Voucher,
    utcnow,
)
from payouts.split import BPS, Charge, price_answer, split

PLATFORM = "platform"
# Core tables: executemany UPDATEs, and the per-answer statements (see record_answer_payment)
_C = Contributor.__table__
_Q = UnbatchedCredit.__table__
_A = Account.__table__
_AP = AnswerPayment.__table__
_CR = Credit.__table__
_J = JournalEntry.__table__
_H = AnswerHold.__table__
_CHUNK = 5_000  # ids per UPDATE ... IN (...) (well under SQLite's variable limit)

# The statements every answer runs, built once: constructing a statement and computing its
# cache key cost more Python than SQLite spends executing it, and on SQLite that time is inside
# the serialised write (one answer's payment, commit included: 3.5 ms -> 1.2 ms on this machine).
_SELECT_BALANCE = select(_A.c.balance).where(_A.c.id == bindparam("account"))
_SELECT_PAYMENT = select(_AP.c.total, _AP.c.fee, _AP.c.pool, _AP.c.price, _AP.c.fee_bps).where(_AP.c.answer_id == bindparam("answer_id"))
_SELECT_CREDITS = select(_CR.c.contributor, _CR.c.amount).where(_CR.c.answer_id == bindparam("answer_id"))
_DEBIT = (update(_A).where(_A.c.id == bindparam("account"), _A.c.balance >= bindparam("total"))
          .values(balance=_A.c.balance - bindparam("total")).returning(_A.c.balance))
_INSERT_PAYMENT = insert(_AP)
_INSERT_CREDITS = insert(_CR)
_INSERT_JOURNAL = insert(_J)
_QUEUE_CREDITS = insert(_Q).from_select(
    ["credit_id"], select(_CR.c.id).where(_CR.c.answer_id == bindparam("answer_id")))
_CREDIT_BACK = (update(_A).where(_A.c.id == bindparam("account"))
                .values(balance=_A.c.balance + bindparam("total")).returning(_A.c.balance))
_INSERT_HOLD = insert(_H)
_SELECT_HOLD = select(_H.c.amount, _H.c.status).where(_H.c.answer_id == bindparam("answer_id"))
_RAISE_HOLD = (update(_H).where(_H.c.answer_id == bindparam("hold_answer"), _H.c.status == "open",
                                _H.c.amount == bindparam("held")).values(amount=bindparam("new_amount")))
_SELECT_USAGE = select(func.coalesce(func.sum(_J.c.delta), 0)).where(
    _J.c.answer_id == bindparam("answer_id"), _J.c.kind == "model_usage")
# Closing a hold is one conditional UPDATE: of two closers (the answer's record, a release on
# a failure, a stale-hold sweep) exactly one sees the row open and moves the money.
_CLOSE_HOLD = (update(_H).where(_H.c.answer_id == bindparam("hold_answer"), _H.c.status == "open")
               .values(status=bindparam("new_status"), closed_at=bindparam("now")).returning(_H.c.account_id, _H.c.amount))
_ADD_EARNED = update(_C).where(_C.c.address == bindparam("a")).values(earned=_C.c.earned + bindparam("amt"))


class LedgerError(Exception):
    """A ledger operation was refused."""


class InsufficientBalance(LedgerError):
    """The asker's balance does not cover the charge (the API maps this to HTTP 402)."""

    def __init__(self, account: str, balance: int, needed: int):
        self.account, self.balance, self.needed = account, balance, needed
        super().__init__(f"account {account!r} has {balance} base units, needs {needed}")


def checksum(address: str) -> str:
    """The EIP-55 form of an address; ValueError for anything that is not one."""
    if not isinstance(address, str):
        raise ValueError(f"not an Ethereum address: {address!r}")  # noqa: TRY004 - callers catch ValueError for any bad address
    return _checksum(address)


@functools.lru_cache(maxsize=65_536)
def _checksum(address: str) -> str:
    # Every answer checksums its contributors (two keccak hashes each); the same few thousand
    # addresses come back all day. lru_cache does not keep the ValueError of a bad address.
    if not is_address(address):
        raise ValueError(f"not an Ethereum address: {address!r}")
    return to_checksum_address(address)


def _int(value: object, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int (base units), got {value!r}")
    return value


def _core(session: Session) -> Connection:
    """The session's connection for Core statements, after flushing any pending ORM changes
    (``Session.execute`` autoflushes; a bare connection would not see them)."""
    if session.new or session.dirty or session.deleted:
        session.flush()
    return session.connection()


@functools.cache
def _insert_ignore_stmt(dialect: str, table):  # type: ignore[no-untyped-def]
    mod = postgresql if dialect == "postgresql" else sqlite
    return mod.insert(table).on_conflict_do_nothing()


def _insert_ignore(session: Session, table, rows: list[dict]) -> None:  # type: ignore[no-untyped-def]
    """INSERT ... ON CONFLICT DO NOTHING on SQLite and PostgreSQL."""
    if not rows:
        return
    conn = _core(session)
    conn.execute(_insert_ignore_stmt(conn.dialect.name, table), rows)


def _journal(session: Session, rows: list[dict]) -> None:
    if rows:
        now = utcnow()
        for r in rows:
            r.setdefault("created_at", now)
            r.setdefault("balance_after", None)
            r.setdefault("answer_id", None)
            r.setdefault("ref", None)
        _core(session).execute(_INSERT_JOURNAL, rows)


# ---------------------------------------------------------------- accounts and keys


def ensure_account(session: Session, account: str) -> None:
    _insert_ignore(session, Account.__table__, [{"id": account, "balance": 0, "created_at": utcnow()}])


def balance(session: Session, account: str) -> int:
    value = _core(session).scalar(_SELECT_BALANCE, {"account": account})
    return int(value or 0)


def deposit(session: Session, account: str, amount: int, *, ref: str | None = None) -> int:
    """Add prepaid funds to an asker's balance (creates the account); returns the new balance."""
    if _int(amount, "amount") <= 0:
        raise ValueError("deposit must be > 0")
    ensure_account(session, account)
    new = session.execute(
        update(Account).where(Account.id == account)
        .values(balance=Account.balance + amount).returning(Account.balance)
    ).scalar_one()
    _journal(session, [{"holder": f"account:{account}", "kind": "deposit", "delta": amount,
                        "balance_after": int(new), "ref": ref}])
    return int(new)


def deposit_once(session: Session, account: str, amount: int, *, ref: str) -> bool:
    """Deposit ``amount`` unless a deposit with this ``ref`` was ever made to the account (e.g.
    the development balance granted at every start-up). Returns True when it deposited."""
    _int(amount, "amount")
    ensure_account(session, account)  # a write first: SQLite's write lock; the row exists
    # PostgreSQL: lock the account row, so two processes starting at once cannot both deposit.
    session.execute(select(Account.id).where(Account.id == account).with_for_update())
    done = session.scalar(select(func.count()).select_from(JournalEntry).where(
        JournalEntry.holder == f"account:{account}", JournalEntry.kind == "deposit", JournalEntry.ref == ref))
    if done or amount <= 0:
        return False
    deposit(session, account, amount, ref=ref)
    return True


def account_summary(session: Session, account: str, *, entries: int = 20) -> dict[str, object] | None:
    """An asker's balance and newest journal entries (deposits, answer debits); None if unknown."""
    row = session.get(Account, account)
    if row is None:
        return None
    journal = session.execute(
        select(JournalEntry.kind, JournalEntry.delta, JournalEntry.balance_after, JournalEntry.answer_id,
               JournalEntry.ref, JournalEntry.created_at)
        .where(JournalEntry.holder == f"account:{account}").order_by(JournalEntry.id.desc()).limit(entries)).all()
    return {"account": account, "balance": int(row.balance), "journal": [
        {"kind": k, "delta": int(d), "balance_after": None if b is None else int(b), "answer_id": a, "ref": r,
         "created_at": t.isoformat()} for k, d, b, a, r, t in journal]}


def _hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_api_key(session: Session, account: str, *, name: str | None = None) -> str:
    """A new random API key for ``account`` (created if missing). The key is returned once;
    only its sha256 is stored."""
    ensure_account(session, account)
    key = "oc-" + secrets.token_urlsafe(32)
    session.add(ApiKey(account_id=account, key_hash=_hash_key(key), prefix=key[:10], name=name))
    session.flush()
    return key


def lookup_api_key(session: Session, key: str) -> str | None:
    """The account of a live API key, or None. (A hash lookup: no timing oracle on the key.)"""
    return session.scalar(
        select(ApiKey.account_id).where(ApiKey.key_hash == _hash_key(key), ApiKey.revoked_at.is_(None))
    )


def revoke_api_key(session: Session, key: str) -> bool:
    res = session.execute(
        update(ApiKey).where(ApiKey.key_hash == _hash_key(key), ApiKey.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    return bool(res.rowcount)


def ensure_can_pay(session: Session, account: str, price: int) -> None:
    """Raise :class:`InsufficientBalance` unless the account can pay ``price`` (call this before
    the LLM: a cited answer costs the full price)."""
    have = balance(session, account)
    if have < _int(price, "price"):
        raise InsufficientBalance(account, have, price)


# ------------------------------------------------------------------ contributors


def ensure_contributors(session: Session, addresses: list[str]) -> None:
    now = utcnow()
    _insert_ignore(
        session, Contributor.__table__,
        [{"address": a, "earned": 0, "batched": 0, "vouchered": 0, "settled": 0, "created_at": now}
         for a in sorted(set(addresses))],
    )


def set_display_name(session: Session, address: str, name: str | None) -> None:
    address = checksum(address)
    ensure_contributors(session, [address])
    session.execute(update(Contributor).where(Contributor.address == address).values(display_name=name))


# --------------------------------------------------------------------- answers


@dataclass(frozen=True)
class AnswerPaymentResult:
    answer_id: str
    charge: Charge
    credits: dict[str, int]  # contributor (EIP-55) -> base units
    balance_after: int
    already_recorded: bool = False
    usage: int = 0  # the model's token cost charged (part of charge.fee), at most what the hold left
    held: int = 0  # what the answer's hold held (0: it had none)


def record_answer_payment(
    session: Session,
    account: str,
    answer_id: str,
    price: int,
    weights_by_contributor: Mapping[str, int],
    *,
    fee_bps: int,
    usage: int = 0,
) -> AnswerPaymentResult:
    """Debit the asker and credit the cited contributors of one answer, in the caller's
    transaction.

    ``weights_by_contributor``: integer weights (e.g. ppm) of the VERIFIED citations, summed per
    contributor address. No positive weight → no credit, and the asker pays only the fee part.
    ``usage``: a metered answer's token cost, paid cited or not and kept by the platform
    (:func:`payouts.split.price_answer`); an answer that held its worst case is never charged
    more than it held (usage beyond the hold is waived: the hold is the asker's quote).
    Raises :class:`InsufficientBalance` (nothing written) when the balance is short. Recording
    the same ``answer_id`` again changes nothing and returns the first result.
    """
    _int(usage, "usage")
    weights: dict[str, int] = {}
    for address, w in weights_by_contributor.items():
        if _int(w, f"weight of {address}") < 0:
            raise ValueError(f"negative weight for {address}")
        if w:
            key = checksum(address)
            weights[key] = weights.get(key, 0) + w
    # Core statements on the connection, not ORM-enabled ones: this runs inside every answer's
    # write transaction, which on SQLite is serialised, so its Python cost is the API's ceiling
    # (ORM bulk inserts were ~1/4 of the API's GIL time under load).
    conn = _core(session)
    if conn.dialect.name == "sqlite":
        # SQLite: make the transaction's first statement a write so it holds the write lock
        # before reading (a deferred read-then-write can fail if another writer commits between).
        ensure_account(session, account)
    existing = conn.execute(_SELECT_PAYMENT, {"answer_id": answer_id}).first()
    if existing is not None:
        credits = dict(conn.execute(_SELECT_CREDITS, {"answer_id": answer_id}).all())
        hold = conn.execute(_SELECT_HOLD, {"answer_id": answer_id}).first()
        return AnswerPaymentResult(
            answer_id, Charge(int(existing.total), int(existing.fee), int(existing.pool)),
            {k: int(v) for k, v in credits.items()}, balance(session, account), True,
            # the fee column holds the fee on the price plus the usage
            usage=int(existing.fee) - int(existing.price) * int(existing.fee_bps) // BPS,
            held=0 if hold is None else int(hold.amount))
    # The price held when the answer started goes back first, in this transaction; the debit
    # below then takes what the answer costs (the fee alone for a refusal, plus any usage).
    held = _close_hold(session, answer_id, "settled")
    if usage and held:
        usage = max(0, min(usage, held - price_answer(price, fee_bps, cited=bool(weights)).total))
    charge = price_answer(price, fee_bps, cited=bool(weights), usage=usage)
    parts = split(charge.pool, weights)
    # Debit first: one conditional UPDATE, so two concurrent answers can't both spend the same
    # funds (and on SQLite this write takes the database's write lock).
    new_balance = conn.execute(_DEBIT, {"account": account, "total": charge.total}).scalar_one_or_none()
    if new_balance is None:
        raise InsufficientBalance(account, balance(session, account), charge.total)
    now = utcnow()
    conn.execute(_INSERT_PAYMENT, {
        "answer_id": answer_id, "account_id": account, "price": price, "fee_bps": fee_bps,
        "total": charge.total, "fee": charge.fee, "pool": charge.pool, "created_at": now})
    journal = [{"holder": f"account:{account}", "kind": "answer_debit", "delta": -charge.total,
                "balance_after": int(new_balance), "answer_id": answer_id}]
    if charge.fee - usage:
        journal.append({"holder": PLATFORM, "kind": "fee", "delta": charge.fee - usage, "answer_id": answer_id})
    if usage:  # the platform keeps it: it pays the model's provider
        journal.append({"holder": PLATFORM, "kind": "model_usage", "delta": usage, "answer_id": answer_id})
    if parts:
        ordered = sorted(parts.items())
        ensure_contributors(session, [a for a, _ in ordered])
        conn.execute(_INSERT_CREDITS, [
            {"answer_id": answer_id, "contributor": a, "amount": amt, "weight": weights[a],
             "created_at": now} for a, amt in ordered])
        # Queue them for batching in the same transaction: a credit is never outside both the
        # queue and a batch.
        conn.execute(_QUEUE_CREDITS, {"answer_id": answer_id})
        conn.execute(_ADD_EARNED, [{"a": a, "amt": amt} for a, amt in ordered])
        journal += [{"holder": f"contributor:{a}", "kind": "earned", "delta": amt, "answer_id": answer_id}
                    for a, amt in ordered]
    _journal(session, journal)
    return AnswerPaymentResult(answer_id, charge, parts, int(new_balance), usage=usage, held=held)


# --------------------------------------------------------------------- holds


def hold_answer(session: Session, account: str, answer_id: str, amount: int) -> int:
    """Hold ``amount`` of the account's balance for an answer about to be delivered; returns
    the balance after. Raises :class:`InsufficientBalance` (nothing written) when it is short:
    N answers started at once against a balance for k hold k, the others are refused before a
    byte is sent. Holding the same answer again holds the larger amount once: an open hold is
    raised by the difference (an LLM answer's worst case, known once its prompt is built), a
    closed one is left alone."""
    amount = _int(amount, "amount")
    conn = _core(session)
    ensure_account(session, account)  # SQLite: the first statement writes, so the lock is held
    existing = conn.execute(_SELECT_HOLD, {"answer_id": answer_id}).first()
    if existing is not None:
        return _raise_hold(session, account, answer_id, int(existing.amount), existing.status, amount)
    new_balance = conn.execute(_DEBIT, {"account": account, "total": amount}).scalar_one_or_none()
    if new_balance is None:
        raise InsufficientBalance(account, balance(session, account), amount)
    conn.execute(_INSERT_HOLD, {"answer_id": answer_id, "account_id": account, "amount": amount, "status": "open",
                                "created_at": utcnow(), "closed_at": None})
    _journal(session, [{"holder": f"account:{account}", "kind": "hold", "delta": -amount,
                        "balance_after": int(new_balance), "answer_id": answer_id}])
    return int(new_balance)


def _raise_hold(session: Session, account: str, answer_id: str, held: int, status: str, amount: int) -> int:
    if status != "open" or held >= amount:
        return balance(session, account)
    conn = _core(session)
    extra = amount - held
    # The debit first, as for a new hold: refused, it has written nothing.
    new_balance = conn.execute(_DEBIT, {"account": account, "total": extra}).scalar_one_or_none()
    if new_balance is None:
        raise InsufficientBalance(account, balance(session, account), extra)
    # Conditional on the amount read: of a raise and a close (the answer's record, a release)
    # only the first changes the row; for a hold closed meanwhile the debit goes back.
    if conn.execute(_RAISE_HOLD, {"hold_answer": answer_id, "held": held, "new_amount": amount}).rowcount != 1:
        return int(conn.execute(_CREDIT_BACK, {"account": account, "total": extra}).scalar_one())
    _journal(session, [{"holder": f"account:{account}", "kind": "hold", "delta": -extra,
                        "balance_after": int(new_balance), "answer_id": answer_id}])
    return int(new_balance)


def _close_hold(session: Session, answer_id: str, status: str) -> int:
    """Give an open hold's amount back to its account and mark it ``status``; returns the
    amount (0 when there was no open hold)."""
    conn = _core(session)
    row = conn.execute(_CLOSE_HOLD, {"hold_answer": answer_id, "new_status": status, "now": utcnow()}).first()
    if row is None:
        return 0
    account, amount = row.account_id, int(row.amount)
    after = conn.execute(_CREDIT_BACK, {"account": account, "total": amount}).scalar_one()
    _journal(session, [{"holder": f"account:{account}", "kind": "release", "delta": amount,
                        "balance_after": int(after), "answer_id": answer_id}])
    return amount


def release_hold(session: Session, answer_id: str) -> bool:
    """Give a held price back: the answer was not given (a failed model call, a stream that
    ended before any text). Idempotent; False when nothing was held open."""
    return _close_hold(session, answer_id, "released") > 0


def release_stale_holds(session: Session, older_than: datetime) -> int:
    """Release the holds still open that were taken before ``older_than`` (their process died
    mid-answer); returns how many."""
    stale = session.execute(select(_H.c.answer_id).where(_H.c.status == "open", _H.c.created_at < older_than)).scalars().all()
    return sum(release_hold(session, answer_id) for answer_id in stale)


def open_holds(session: Session) -> tuple[int, int]:
    """How many holds are open and the amount they hold."""
    row = session.execute(select(func.count(), func.coalesce(func.sum(_H.c.amount), 0)).where(_H.c.status == "open")).one()
    return int(row[0]), int(row[1])


# --------------------------------------------------------------------- batching


@dataclass(frozen=True)
class BatchResult:
    batch_id: int
    credit_count: int
    total: int
    per_contributor: dict[str, int] = field(default_factory=dict)  # amount batched now
    cumulative: dict[str, int] = field(default_factory=dict)  # owed after this batch
    replayed: bool = False  # the idempotency key had already produced this batch


def aggregate(
    session: Session, *, idempotency_key: str | None = None, max_credits: int = 200_000
) -> BatchResult | None:
    """Batch unbatched credits per contributor, in the caller's transaction.

    Returns None when nothing was unbatched. Safe to run concurrently: on PostgreSQL each run
    locks the queue rows it takes (``SKIP LOCKED``: concurrent runs take disjoint sets); on SQLite
    the first statement is a write, so runs are serialised by the write lock. Only the queue rows
    this run deleted are batched and summed, and ``batch_credits``' primary key refuses a credit
    in two batches. With ``idempotency_key`` (e.g. the task id), a replay of a run that committed
    returns that batch and batches nothing more.
    """
    batch = _open_batch(session, idempotency_key)
    if isinstance(batch, BatchResult):
        return batch
    take = _take_postgresql if session.get_bind().dialect.name == "postgresql" else _take_sqlite
    return _close_batch(session, batch, take(session, batch.id, max_credits))


def _open_batch(session: Session, key: str | None) -> PayoutBatch | BatchResult:
    """The batch row of this run (its INSERT is the transaction's first write), or the result of
    the run that already committed under ``key``."""
    now = utcnow()
    if key is not None:
        _insert_ignore(session, PayoutBatch.__table__, [
            {"idempotency_key": key, "credit_count": 0, "total": 0, "created_at": now}])
        batch = session.scalar(select(PayoutBatch).where(PayoutBatch.idempotency_key == key))
        assert batch is not None
        if batch.credit_count:  # committed earlier by this key: a redelivered task
            return _batch_result(session, batch, replayed=True)
        return batch
    batch = PayoutBatch(idempotency_key=None, credit_count=0, total=0, created_at=now)
    session.add(batch)
    session.flush()  # the INSERT: first statement is a write
    return batch


def _close_batch(session: Session, batch: PayoutBatch, taken: list[tuple[str, int, int]]) -> BatchResult | None:
    """Raise each contributor's batched amount by what ``taken`` (contributor, Σ amount, count)
    holds, with items and journal rows; drops the empty batch and returns None when nothing was taken."""
    batch_id = batch.id
    per: dict[str, int] = {}
    counts: dict[str, int] = {}
    for contributor, amount, n in taken:
        per[contributor] = int(amount)
        counts[contributor] = int(n)
    if not per:
        session.delete(batch)
        session.flush()
        return None
    ordered = sorted(per)
    session.execute(
        update(_C).where(_C.c.address == bindparam("a")).values(batched=_C.c.batched + bindparam("amt")),
        [{"a": a, "amt": per[a]} for a in ordered],
    )
    cumulative: dict[str, int] = {}
    for i in range(0, len(ordered), _CHUNK):
        cumulative.update((a, int(b)) for a, b in session.execute(
            select(Contributor.address, Contributor.batched).where(Contributor.address.in_(ordered[i:i + _CHUNK]))))
    session.execute(insert(PayoutBatchItem), [
        {"batch_id": batch_id, "contributor": a, "amount": per[a], "credit_count": counts[a],
         "cumulative": cumulative[a]} for a in ordered])
    _journal(session, [{"holder": f"contributor:{a}", "kind": "batched", "delta": per[a],
                        "balance_after": cumulative[a], "ref": f"batch:{batch_id}"} for a in ordered])
    total = sum(per.values())
    count = sum(counts.values())
    session.execute(update(PayoutBatch).where(PayoutBatch.id == batch_id)
                    .values(credit_count=count, total=total)
                    .execution_options(synchronize_session=False))
    return BatchResult(batch_id, count, total, per, cumulative)


def _take_postgresql(session: Session, batch_id: int, max_credits: int) -> list[tuple[str, int, int]]:
    """Move the oldest ``max_credits`` queued credits into the batch; (contributor, Σ amount,
    count) per contributor. One statement: the DELETE takes the queue rows (row-locked, skipping
    those a concurrent run holds; RETURNING yields only rows this statement deleted), the INSERT
    records their membership, and only one row per contributor comes back to Python."""
    picked = (select(_Q.c.credit_id).order_by(_Q.c.credit_id).limit(max_credits)
              .with_for_update(skip_locked=True).scalar_subquery())
    taken = delete(_Q).where(_Q.c.credit_id.in_(picked)).returning(_Q.c.credit_id).cte("taken")
    member = insert(BatchCredit).from_select(
        ["credit_id", "batch_id"], select(taken.c.credit_id, literal(batch_id, BatchCredit.batch_id.type))
    ).cte("member")
    stmt = (select(Credit.contributor, func.sum(Credit.amount), func.count())
            .join(taken, taken.c.credit_id == Credit.id).group_by(Credit.contributor).add_cte(member))
    return [tuple(r) for r in session.execute(stmt).all()]  # type: ignore[misc]


def _take_sqlite(session: Session, batch_id: int, max_credits: int) -> list[tuple[str, int, int]]:
    """The same as :func:`_take_postgresql` in three statements (SQLite has no data-modifying
    CTEs). The transaction holds the database's write lock since its first statement, so the
    queue cannot change between them."""
    session.execute(insert(BatchCredit).from_select(
        ["credit_id", "batch_id"],
        select(_Q.c.credit_id, literal(batch_id, BatchCredit.batch_id.type)).order_by(_Q.c.credit_id).limit(max_credits)))
    in_batch = select(BatchCredit.credit_id).where(BatchCredit.batch_id == batch_id)
    session.execute(delete(_Q).where(_Q.c.credit_id.in_(in_batch)))
    return [tuple(r) for r in session.execute(  # type: ignore[misc]
        select(Credit.contributor, func.sum(Credit.amount), func.count())
        .join(BatchCredit, BatchCredit.credit_id == Credit.id).where(BatchCredit.batch_id == batch_id)
        .group_by(Credit.contributor)).all()]


def _batch_result(session: Session, batch: PayoutBatch, *, replayed: bool) -> BatchResult:
    items = session.execute(select(PayoutBatchItem.contributor, PayoutBatchItem.amount, PayoutBatchItem.cumulative)
                            .where(PayoutBatchItem.batch_id == batch.id)).all()
    return BatchResult(batch.id, batch.credit_count, int(batch.total),
                       {a: int(x) for a, x, _ in items}, {a: int(c) for a, _, c in items}, replayed)


# --------------------------------------------------------------------- vouchers


@dataclass(frozen=True)
class Owed:
    address: str
    batched: int
    vouchered: int
    settled: int
    earned: int = 0


def owed_vouchers(session: Session, limit: int = 1_000, *, include_quarantined: bool = False,
                  addresses: list[str] | None = None) -> list[Owed]:
    """Contributors whose batched amount is above their latest voucher (leaving out payees in
    quarantine whose retry is not due; only ``addresses`` when given)."""
    stmt = (select(Contributor.address, Contributor.batched, Contributor.vouchered, Contributor.settled,
                   Contributor.earned)
            .where(Contributor.batched > Contributor.vouchered))
    if not include_quarantined:
        stmt = stmt.where(~quarantine.held_out())
    if addresses is not None:
        stmt = stmt.where(Contributor.address.in_(addresses))
    rows = session.execute(stmt.order_by(Contributor.address).limit(limit)).all()
    return [Owed(a, int(b), int(v), int(s), int(e)) for a, b, v, s, e in rows]


def store_voucher(
    session: Session, address: str, *, deployment_id: int, chain_id: int, contract: str, payer: str,
    channel_id: bytes, cumulative_amount: int, signature: bytes,
) -> bool:
    """Store a signed voucher for the payee's channel on a deployment (bound first with
    ``deployments.bind_channel``). ``cumulative_amount`` is the CHANNEL's: the contributor's
    vouchered amount rises by what it adds to the channel's previous voucher, never above what was
    batched; the same (deployment, channel, amount) again is a no-op. True when it rose."""
    address = checksum(address)
    _int(cumulative_amount, "cumulative_amount")
    cid = "0x" + bytes(channel_id).hex()
    row = {
        "contributor": address, "deployment_id": deployment_id, "chain_id": chain_id, "contract": checksum(contract),
        "payer": checksum(payer), "channel_id": cid, "cumulative_amount": cumulative_amount,
        "signature": "0x" + bytes(signature).hex(), "created_at": utcnow()}
    ch = session.execute(select(PayeeChannel.id, PayeeChannel.contributor, PayeeChannel.vouchered)
                         .where(PayeeChannel.deployment_id == deployment_id, PayeeChannel.channel_id == cid)).one_or_none()
    if ch is None or ch[1] != address:
        raise LedgerError(f"no channel {cid} of {address} on deployment #{deployment_id}: bind it first")
    rise = cumulative_amount - int(ch[2])
    if rise <= 0:
        if rise == 0:
            _insert_ignore(session, Voucher.__table__, [row])  # same voucher again: idempotent
        return False
    before = session.scalar(select(Contributor.vouchered).where(Contributor.address == address))
    raised = None
    if before is not None:  # compare-and-set from the values read: the journal's delta is exact
        raised = session.execute(
            update(Contributor)
            .where(Contributor.address == address, Contributor.vouchered == before,
                   Contributor.batched >= before + rise)
            .values(vouchered=before + rise).returning(Contributor.vouchered)
            .execution_options(synchronize_session=False)
        ).scalar_one_or_none()
    if raised is None:
        batched = session.scalar(select(Contributor.batched).where(Contributor.address == address))
        if batched is None or before is None or before + rise > batched:
            raise LedgerError(f"voucher of {cumulative_amount} for {address} exceeds what was batched")
        return False  # another run raised it meanwhile
    moved = session.execute(
        update(PayeeChannel).where(PayeeChannel.id == ch[0], PayeeChannel.vouchered == ch[2])
        .values(vouchered=cumulative_amount).returning(PayeeChannel.id)
        .execution_options(synchronize_session=False)).scalar_one_or_none()
    if moved is None:  # the channel moved under us: undo by failing the caller's transaction
        raise LedgerError(f"channel {cid} of {address} changed while its voucher was stored")
    _insert_ignore(session, Voucher.__table__, [row])
    _journal(session, [{"holder": f"contributor:{address}", "kind": "vouchered",
                        "delta": rise, "balance_after": int(before) + rise, "ref": cid}])
    return True


def latest_voucher(session: Session, address: str) -> Voucher | None:
    """The payee's newest voucher (on the deployment vouchered last)."""
    return session.scalar(
        select(Voucher).where(Voucher.contributor == checksum(address))
        .order_by(Voucher.id.desc()).limit(1))


# ------------------------------------------------------------------- settlement


@dataclass(frozen=True)
class ChannelOwed:
    """A channel whose vouchers are not all paid, in the channel's cumulative amounts."""

    address: str
    deployment_id: int
    channel_id: str
    vouchered: int  # the latest voucher (less any part returned to owed)
    settled: int  # its ``paid`` as the ledger last recorded it

    @property
    def channel_bytes(self) -> bytes:
        return bytes.fromhex(self.channel_id.removeprefix("0x"))


def settle_candidates(
    session: Session, *, threshold: int, max_age_seconds: float | None = None,
    now: datetime | None = None, limit: int = 100, include_quarantined: bool = False,
    deployment_ids: Collection[int] | None = None,
) -> list[ChannelOwed]:
    """Channels (of ``deployment_ids``, default all) whose vouchered-but-unsettled amount reaches
    ``threshold`` (or whose oldest unsettled voucher is older than ``max_age_seconds``), leaving
    out payees in quarantine whose retry is not due unless ``include_quarantined``."""
    C = PayeeChannel
    now = now or utcnow()
    stmt = (select(C.contributor, C.deployment_id, C.channel_id, C.vouchered - C.retired, C.settled)
            .join(Contributor, Contributor.address == C.contributor)
            .where(C.vouchered - C.retired > C.settled))
    if deployment_ids is not None:
        stmt = stmt.where(C.deployment_id.in_(list(deployment_ids)))
    if not include_quarantined:
        stmt = stmt.where(~quarantine.held_out(now))
    rows = session.execute(stmt.order_by(C.deployment_id, C.contributor)).all()
    out = []
    for a, did, cid, v, s in rows:
        due = v - s >= threshold
        if not due and max_age_seconds is not None:
            oldest = session.scalar(select(func.min(Voucher.created_at)).where(
                Voucher.deployment_id == did, Voucher.channel_id == cid, Voucher.cumulative_amount > s))
            if oldest is not None:
                if oldest.tzinfo is None:
                    oldest = oldest.replace(tzinfo=now.tzinfo)
                due = (now - oldest).total_seconds() >= max_age_seconds
        if due:
            out.append(ChannelOwed(a, int(did), cid, int(v), int(s)))
        if len(out) >= limit:
            break
    return out


def begin_settlement(session: Session, entries: list[tuple[str, int, int]], *, deployment_id: int,
                     chain_id: int, contract: str) -> int:
    """Record the intent to push (contributor, channel cumulative, new amount) entries on a
    deployment; returns its id. Committed BEFORE the transaction is sent, so a crash leaves a
    trace to reconcile."""
    s = Settlement(status="pending", total=sum(e[2] for e in entries), deployment_id=deployment_id,
                   chain_id=chain_id, contract=checksum(contract))
    session.add(s)
    session.flush()
    session.execute(insert(SettlementItem), [
        {"settlement_id": s.id, "contributor": a, "cumulative_amount": c, "amount": n}
        for a, c, n in entries])
    return s.id


def finish_settlement(
    session: Session, settlement_id: int, *, status: str, tx_hash: str | None = None,
    block_number: int | None = None, gas_used: int | None = None, error: str | None = None,
) -> None:
    session.execute(update(Settlement).where(Settlement.id == settlement_id).values(
        status=status, tx_hash=tx_hash, block_number=block_number, gas_used=gas_used,
        error=error, finished_at=utcnow()).execution_options(synchronize_session=False))


def record_settled(session: Session, deployment_id: int, channel_id: bytes | str, paid: int, *,
                   ref: str | None = None) -> bool:
    """Raise a channel's settled amount to what it has paid on chain (capped at its voucher less
    any part returned to owed; never lowered) and the contributor's by the same rise. Returns
    True when it rose."""
    C = PayeeChannel
    cid = channel_id if isinstance(channel_id, str) else "0x" + bytes(channel_id).hex()
    row = session.execute(select(C.id, C.contributor, C.settled, C.vouchered - C.retired)
                          .where(C.deployment_id == deployment_id, C.channel_id == cid)).one_or_none()
    if row is None:
        return False
    chan_id, address, settled, cap = row
    target = min(int(paid), int(cap))
    if target <= settled:
        return False
    res = session.execute(
        update(C).where(C.id == chan_id, C.settled == settled).values(settled=target).returning(C.id)
        .execution_options(synchronize_session=False)).scalar_one_or_none()
    if res is None:
        return False
    delta = target - int(settled)
    after = session.execute(
        update(Contributor).where(Contributor.address == address).values(settled=Contributor.settled + delta)
        .returning(Contributor.settled).execution_options(synchronize_session=False)).scalar_one()
    _journal(session, [{"holder": f"contributor:{address}", "kind": "settled",
                        "delta": delta, "balance_after": int(after), "ref": ref}])
    return True


def pending_settlements(session: Session) -> list[tuple[int, int | None, list[tuple[str, int]]]]:
    """(settlement id, deployment id, [(contributor, channel cumulative)]) of pending settlements."""
    found = session.execute(select(Settlement.id, Settlement.deployment_id)
                            .where(Settlement.status == "pending").order_by(Settlement.id)).all()
    out = []
    for sid, did in found:
        items = session.execute(select(SettlementItem.contributor, SettlementItem.cumulative_amount)
                                .where(SettlementItem.settlement_id == sid)).all()
        out.append((sid, did, [(a, int(c)) for a, c in items]))
    return out


# --------------------------------------------------------------------- checking


def check_invariants(session: Session) -> list[str]:
    """Every money rule the ledger alone can check; returns the violations (empty: all hold)."""
    problems: list[str] = []
    q = session.execute
    # Σ credits of each answer = its pool
    bad = q(select(AnswerPayment.answer_id, AnswerPayment.pool, func.coalesce(func.sum(Credit.amount), 0))
            .outerjoin(Credit, Credit.answer_id == AnswerPayment.answer_id)
            .group_by(AnswerPayment.answer_id, AnswerPayment.pool)
            .having(func.coalesce(func.sum(Credit.amount), 0) != AnswerPayment.pool)).all()
    problems += [f"answer {a}: credits {c} != pool {p}" for a, p, c in bad]
    debits = int(q(select(func.coalesce(func.sum(AnswerPayment.total), 0))).scalar_one())
    fees = int(q(select(func.coalesce(func.sum(AnswerPayment.fee), 0))).scalar_one())
    credits = int(q(select(func.coalesce(func.sum(Credit.amount), 0))).scalar_one())
    if debits != credits + fees:
        problems.append(f"Σ debits {debits} != Σ credits {credits} + Σ fees {fees}")
    # journal agrees with balances
    jdebits = -int(q(select(func.coalesce(func.sum(JournalEntry.delta), 0)).where(JournalEntry.kind == "answer_debit")).scalar_one())
    if jdebits != debits:
        problems.append(f"journal debits {jdebits} != Σ answer payments {debits}")
    for acc, bal in q(select(Account.id, Account.balance)).all():
        j = int(q(select(func.coalesce(func.sum(JournalEntry.delta), 0)).where(JournalEntry.holder == f"account:{acc}")).scalar_one())
        if j != bal:
            problems.append(f"account {acc}: balance {bal} != journal {j}")
    # holds: what the journal holds and gave back = what the open holds hold, per account
    held = dict(q(select(JournalEntry.holder, func.sum(JournalEntry.delta))
                  .where(JournalEntry.kind.in_(("hold", "release"))).group_by(JournalEntry.holder)).all())
    open_by = dict(q(select(AnswerHold.account_id, func.sum(AnswerHold.amount)).where(AnswerHold.status == "open")
                     .group_by(AnswerHold.account_id)).all())
    for holder, delta in held.items():
        acc = holder.removeprefix("account:")
        if -int(delta) != int(open_by.get(acc, 0)):
            problems.append(f"account {acc}: journal holds {-int(delta)} != open holds {int(open_by.get(acc, 0))}")
    # every credit is queued or in a batch, never both, never neither (a lost credit)
    queued = select(UnbatchedCredit.credit_id).where(UnbatchedCredit.credit_id == Credit.id).exists()
    in_batch = select(BatchCredit.credit_id).where(BatchCredit.credit_id == Credit.id).exists()
    lost = int(q(select(func.count()).select_from(Credit).where(~queued, ~in_batch)).scalar_one())
    if lost:
        problems.append(f"{lost} credits neither queued for batching nor in a batch (lost)")
    both = int(q(select(func.count()).select_from(Credit).where(queued, in_batch)).scalar_one())
    if both:
        problems.append(f"{both} credits both queued for batching and in a batch")
    # per contributor: earned = Σ credits, batched = Σ batched credits = Σ batch items
    earned = dict(q(select(Credit.contributor, func.sum(Credit.amount)).group_by(Credit.contributor)).all())
    batched = dict(q(select(Credit.contributor, func.sum(Credit.amount))
                     .join(BatchCredit, BatchCredit.credit_id == Credit.id).group_by(Credit.contributor)).all())
    items = dict(q(select(PayoutBatchItem.contributor, func.sum(PayoutBatchItem.amount)).group_by(PayoutBatchItem.contributor)).all())
    # vouchered and settled are the sums over the payee's channels, each on one deployment
    cv, cs = func.sum(PayeeChannel.vouchered - PayeeChannel.opening_paid - PayeeChannel.retired), \
        func.sum(PayeeChannel.settled - PayeeChannel.opening_paid)
    by_channels = {a: (int(v), int(s)) for a, v, s in q(
        select(PayeeChannel.contributor, cv, cs).group_by(PayeeChannel.contributor)).all()}
    for a, e, b, v, s in q(select(Contributor.address, Contributor.earned, Contributor.batched,
                                  Contributor.vouchered, Contributor.settled)).all():
        if int(earned.get(a, 0)) != e:
            problems.append(f"{a}: earned {e} != Σ credits {earned.get(a, 0)}")
        if int(batched.get(a, 0)) != b or int(items.get(a, 0)) != b:
            problems.append(f"{a}: batched {b} != Σ batched credits {batched.get(a, 0)} / items {items.get(a, 0)}")
        chan_v, chan_s = by_channels.get(a, (0, 0))
        if chan_v != v:
            problems.append(f"{a}: vouchered {v} != Σ over its channels {chan_v}")
        if chan_s != s:
            problems.append(f"{a}: settled {s} != Σ over its channels {chan_s}")
        if not (e >= b >= v >= s >= 0):
            problems.append(f"{a}: amounts out of order earned {e} batched {b} vouchered {v} settled {s}")
    # each channel's vouchered amount is its latest voucher (or its opening, before any)
    top = {(d, c): int(m) for d, c, m in q(select(Voucher.deployment_id, Voucher.channel_id,
                                                  func.max(Voucher.cumulative_amount))
                                           .group_by(Voucher.deployment_id, Voucher.channel_id)).all()}
    for did, cid, a, o, v in q(select(PayeeChannel.deployment_id, PayeeChannel.channel_id, PayeeChannel.contributor,
                                      PayeeChannel.opening_paid, PayeeChannel.vouchered)).all():
        if top.get((did, cid), int(o)) != int(v):
            problems.append(f"{a}: channel {cid} of deployment #{did} vouchered {v} != latest voucher "
                            f"{top.get((did, cid), 0)}")
    known = {(d, c) for d, c in q(select(PayeeChannel.deployment_id, PayeeChannel.channel_id)).all()}
    for did, cid in sorted(set(top) - known):
        problems.append(f"vouchers of channel {cid} on deployment #{did} belong to no channel of the ledger")
    # a voucher is recorded under the chain and contract of its deployment (its EIP-712 domain)
    for vid, a, vc, vk, dc, dk in q(
            select(Voucher.id, Voucher.contributor, Voucher.chain_id, Voucher.contract, PayoutDeployment.chain_id,
                   PayoutDeployment.contract).join(PayoutDeployment, PayoutDeployment.id == Voucher.deployment_id)
            .where((Voucher.chain_id != PayoutDeployment.chain_id) | (Voucher.contract != PayoutDeployment.contract))).all():
        problems.append(f"{a}: voucher #{vid} was signed for chain {vc}, contract {vk}, but is recorded under a "
                        f"deployment on chain {dc}, contract {dk}")
    # every batch's totals = its credits
    for bid, cnt, tot, n, t in q(
        select(PayoutBatch.id, PayoutBatch.credit_count, PayoutBatch.total,
               func.count(Credit.id), func.coalesce(func.sum(Credit.amount), 0))
        .outerjoin(BatchCredit, BatchCredit.batch_id == PayoutBatch.id)
        .outerjoin(Credit, Credit.id == BatchCredit.credit_id)
        .group_by(PayoutBatch.id, PayoutBatch.credit_count, PayoutBatch.total)).all():
        if cnt != n or tot != t:
            problems.append(f"batch {bid}: recorded {cnt}/{tot}, credits {n}/{t}")
    return problems


@dataclass(frozen=True)
class Totals:
    debits: int
    fees: int
    credits: int
    unbatched: int
    batched: int
    vouchered: int
    settled: int
    answers: int
    batches: int
    vouchers: int
    settlements_pending: int
    holds_open: int = 0  # answers being delivered whose price is held
    held: int = 0  # the base units those holds take from balances
    payees_quarantined: int = 0  # payees whose payment failed, left out of the payout runs
    quarantined_owed: int = 0  # what they are still owed (earned − settled), kept in the ledger


def totals(session: Session) -> Totals:
    q = session.execute
    one = lambda stmt: int(q(stmt).scalar_one() or 0)
    holds_open, held = open_holds(session)
    payees_quarantined, quarantined_owed = quarantine.summary(session)
    return Totals(
        debits=one(select(func.coalesce(func.sum(AnswerPayment.total), 0))),
        fees=one(select(func.coalesce(func.sum(AnswerPayment.fee), 0))),
        credits=one(select(func.coalesce(func.sum(Credit.amount), 0))),
        unbatched=one(select(func.coalesce(func.sum(Credit.amount), 0))
                      .join(UnbatchedCredit, UnbatchedCredit.credit_id == Credit.id)),
        batched=one(select(func.coalesce(func.sum(Contributor.batched), 0))),
        vouchered=one(select(func.coalesce(func.sum(Contributor.vouchered), 0))),
        settled=one(select(func.coalesce(func.sum(Contributor.settled), 0))),
        answers=one(select(func.count()).select_from(AnswerPayment)),
        batches=one(select(func.count()).select_from(PayoutBatch)),
        vouchers=one(select(func.count()).select_from(Voucher)),
        settlements_pending=one(select(func.count()).select_from(Settlement).where(Settlement.status == "pending")),
        holds_open=holds_open,
        held=held,
        payees_quarantined=payees_quarantined,
        quarantined_owed=quarantined_owed,
    )
