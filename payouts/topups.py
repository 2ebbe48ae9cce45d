"""On-chain top-ups: askers' ``TopUps.deposit`` logs credited to their balances, exactly once.

The follower (:func:`follow`, run by the ``payouts.follow_deposits`` task every
``deposit_interval`` seconds) reads the TopUps contract's ``Deposited`` logs and keeps one
``chain_deposits`` row per log, keyed by (chain id, tx hash, log index):

1. **See**: logs from the cursor to the head are recorded ``pending`` with their block number
   and hash (a row already pending or dropped takes the block the node reports now).
   The cursor only moves past blocks that were final when read, so the blocks that can still
   change are read again on every run (a reorg below the depth brings in its new logs).
2. **Finalise**: a pending row whose block has ``deposit_confirmations`` confirmations is
   checked against the node: when the node's block at that height is still the recorded one,
   ONE transaction turns it ``credited`` (a conditional UPDATE from ``pending``) and raises
   the account's balance (journal ref ``deposit:<chain>:<tx>:<log>``), or ``unassigned`` when
   the reference names no account. When the block was replaced, the transaction's receipt
   says where it is now: still mined → the row takes the new block and waits; gone → ``dropped``.

Every step is its own database transaction and idempotent, so a worker killed anywhere loses or
doubles nothing: the next run sees the same logs again, and only a pending row can be credited.
A reorg deeper than the confirmation depth can't be undone here: ``reconcile`` reports a
credited deposit whose log the chain no longer has.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from eth_utils import keccak
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from payouts import ledger
from payouts.chain import DepositLog
from payouts.models import (
    Account,
    AccountDepositRef,
    ChainDeposit,
    DepositCursor,
    JournalEntry,
    utcnow,
)

log = logging.getLogger(__name__)

INT64_MAX = 2**63 - 1
STATUSES = ("pending", "credited", "unassigned", "dropped")


# ------------------------------------------------------------------ references


def deposit_ref(session: Session, account: str) -> str:
    """The account's deposit reference (0x + 64 hex), drawn the first time it is asked for."""
    found = session.scalar(select(AccountDepositRef.ref).where(AccountDepositRef.account_id == account))
    if found:
        return found
    ledger.ensure_account(session, account)
    # keccak of fresh randomness: unrelated to the account id and its keys, unguessable.
    ref = "0x" + keccak(secrets.token_bytes(32)).hex()
    ledger._insert_ignore(session, AccountDepositRef.__table__,
                          [{"account_id": account, "ref": ref, "created_at": utcnow()}])
    # two first requests at once: both insert-ignore, both read the one that won
    return str(session.scalar(select(AccountDepositRef.ref).where(AccountDepositRef.account_id == account)))


def account_of_ref(session: Session, ref: str) -> str | None:
    return session.scalar(select(AccountDepositRef.account_id).where(AccountDepositRef.ref == ref.lower()))


# ---------------------------------------------------------------- the ledger side


def journal_ref(chain_id: int, tx_hash: str, log_index: int) -> str:
    return f"deposit:{chain_id}:{tx_hash.lower()}:{log_index}"


def record_seen(session: Session, logs: list[DepositLog]) -> int:
    """Record logs as ``pending`` (new) or move a pending/dropped row to the block the node
    reports now. Credited and unassigned rows are final and never touched. Returns how many
    rows were inserted."""
    new = 0
    for lg in logs:
        row = session.scalar(select(ChainDeposit).where(
            ChainDeposit.chain_id == lg.chain_id, ChainDeposit.tx_hash == lg.tx_hash.lower(),
            ChainDeposit.log_index == lg.log_index))
        if row is None:
            ledger._insert_ignore(session, ChainDeposit.__table__, [{
                "chain_id": lg.chain_id, "tx_hash": lg.tx_hash.lower(), "log_index": lg.log_index,
                "contract": lg.contract, "block_number": lg.block_number, "block_hash": lg.block_hash.lower(),
                "account_ref": lg.account_ref.lower(), "sender": lg.sender, "amount_raw": str(lg.amount),
                "amount": lg.amount if 0 < lg.amount <= INT64_MAX else None, "status": "pending",
                "seen_at": utcnow()}])
            new += 1
        elif row.status in ("pending", "dropped") and (row.status == "dropped"
                                                       or row.block_hash != lg.block_hash.lower()):
            session.execute(update(ChainDeposit).where(ChainDeposit.id == row.id,
                                                       ChainDeposit.status.in_(("pending", "dropped")))
                            .values(status="pending", block_number=lg.block_number,
                                    block_hash=lg.block_hash.lower(), note=None)
                            .execution_options(synchronize_session=False))
    return new


@dataclass(frozen=True)
class PendingRow:
    id: int
    chain_id: int
    tx_hash: str
    log_index: int
    block_number: int
    block_hash: str
    account_ref: str
    amount: int | None


def pending(session: Session, chain_id: int, contract: str, *, up_to_block: int, limit: int = 1_000) -> list[PendingRow]:
    """Pending rows of a contract whose block is at or below ``up_to_block`` (final)."""
    rows = session.execute(select(ChainDeposit.id, ChainDeposit.chain_id, ChainDeposit.tx_hash, ChainDeposit.log_index,
                                  ChainDeposit.block_number, ChainDeposit.block_hash, ChainDeposit.account_ref,
                                  ChainDeposit.amount)
                           .where(ChainDeposit.chain_id == chain_id, ChainDeposit.contract == contract,
                                  ChainDeposit.status == "pending", ChainDeposit.block_number <= up_to_block)
                           .order_by(ChainDeposit.block_number, ChainDeposit.log_index).limit(limit)).all()
    return [PendingRow(int(i), int(c), t, int(li), int(b), h, r, None if a is None else int(a))
            for i, c, t, li, b, h, r, a in rows]


def finalise(session: Session, row: PendingRow) -> str | None:
    """Credit a pending deposit whose recorded block the caller found final and canonical, or
    mark it unassigned. One conditional UPDATE from ``pending`` (with the recorded block hash):
    of two runs at once only one moves it. Returns the new status, or None (not pending any more)."""
    account = account_of_ref(session, row.account_ref)
    if account is not None and row.amount is not None:
        status, note = "credited", None
    else:
        status = "unassigned"
        note = "no account has this deposit reference" if account is None else "amount does not fit a balance"
    moved = session.execute(
        update(ChainDeposit).where(ChainDeposit.id == row.id, ChainDeposit.status == "pending",
                                   ChainDeposit.block_hash == row.block_hash)
        .values(status=status, account_id=account, note=note, final_at=utcnow())
        .returning(ChainDeposit.id).execution_options(synchronize_session=False)).scalar_one_or_none()
    if moved is None:
        return None
    if status == "credited":
        assert account is not None and row.amount is not None
        ledger.deposit(session, account, row.amount, ref=journal_ref(row.chain_id, row.tx_hash, row.log_index))
    return status


def move_or_drop(session: Session, row: PendingRow, now: DepositLog | None) -> str:
    """A pending row whose recorded block is no longer the node's: take the block the tx is in
    now (still pending), or ``dropped`` when the node has no such log any more."""
    if now is not None:
        session.execute(update(ChainDeposit).where(ChainDeposit.id == row.id, ChainDeposit.status == "pending")
                        .values(block_number=now.block_number, block_hash=now.block_hash.lower())
                        .execution_options(synchronize_session=False))
        return "moved"
    session.execute(update(ChainDeposit).where(ChainDeposit.id == row.id, ChainDeposit.status == "pending")
                    .values(status="dropped", note="its block was replaced (reorg) and the tx is not mined")
                    .execution_options(synchronize_session=False))
    return "dropped"


def cursor(session: Session, chain_id: int, contract: str, start_block: int, start_block_hash: str) -> int:
    """The next block to read for good (created at the contract's deployment block)."""
    key = (DepositCursor.chain_id == chain_id, DepositCursor.contract == contract,
           DepositCursor.start_block_hash == start_block_hash.lower())
    found = session.scalar(select(DepositCursor.next_block).where(*key))
    if found is None:
        ledger._insert_ignore(session, DepositCursor.__table__, [{
            "chain_id": chain_id, "contract": contract, "start_block_hash": start_block_hash.lower(),
            "next_block": start_block, "updated_at": utcnow()}])
        found = session.scalar(select(DepositCursor.next_block).where(*key))
    return int(found)


def advance(session: Session, chain_id: int, contract: str, start_block_hash: str, next_block: int) -> None:
    """Move the cursor forward (never back: a slower run at once cannot undo a faster one)."""
    session.execute(update(DepositCursor).where(
        DepositCursor.chain_id == chain_id, DepositCursor.contract == contract,
        DepositCursor.start_block_hash == start_block_hash.lower(), DepositCursor.next_block < next_block)
        .values(next_block=next_block, updated_at=utcnow()).execution_options(synchronize_session=False))


# --------------------------------------------------------------------- reading


def account_view(session: Session, account: str, *, deposits: int = 50, days: int = 30,
                 today: date | None = None) -> dict[str, Any]:
    """What ``GET /v1/account`` shows: balance, deposit reference, newest on-chain deposits and
    spending per day (UTC) over the last ``days`` days, zeros included."""
    ref = deposit_ref(session, account)
    row = session.get(Account, account)
    rows = session.execute(
        select(ChainDeposit.chain_id, ChainDeposit.tx_hash, ChainDeposit.log_index, ChainDeposit.block_number,
               ChainDeposit.sender, ChainDeposit.amount_raw, ChainDeposit.status, ChainDeposit.seen_at,
               ChainDeposit.final_at)
        .where(ChainDeposit.account_ref == ref).order_by(ChainDeposit.id.desc()).limit(deposits)).all()
    today = today or datetime.now(UTC).date()
    first = today - timedelta(days=days - 1)
    spent = dict(_spending(session, account, first))
    per_day = [{"day": (first + timedelta(days=i)).isoformat(), "spent": int(spent.get(first + timedelta(days=i), 0))}
               for i in range(days)]
    return {
        "account": account, "balance": int(row.balance) if row else 0, "deposit_ref": ref,
        "deposits": [{"chain_id": int(c), "tx_hash": t, "log_index": int(li), "block_number": int(b), "from": s,
                      "amount": int(a), "status": st, "seen_at": seen.isoformat(),
                      "final_at": fin.isoformat() if fin else None}
                     for c, t, li, b, s, a, st, seen, fin in rows],
        "spending": per_day,
    }


def _spending(session: Session, account: str, since: date) -> list[tuple[date, int]]:
    """Base units debited per UTC day: answer debits and holds less releases (what left the
    balance for answers), from the journal."""
    start = datetime(since.year, since.month, since.day, tzinfo=UTC)
    rows = session.execute(select(JournalEntry.created_at, JournalEntry.delta).where(
        JournalEntry.holder == f"account:{account}", JournalEntry.created_at >= start,
        JournalEntry.kind.in_(("answer_debit", "hold", "release")))).all()
    out: dict[date, int] = {}
    for at, delta in rows:
        day = (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(UTC).date()
        out[day] = out.get(day, 0) - int(delta)
    return sorted(out.items())


def figures(session: Session) -> dict[str, int]:
    """Counts and base units of deposits by status, and the sum of askers' balances."""
    out: dict[str, int] = {}
    for status in STATUSES:
        out[f"deposits_{status}"] = 0
        out[f"deposits_{status}_base_units"] = 0
    for status, n, total in session.execute(
            select(ChainDeposit.status, func.count(), func.coalesce(func.sum(ChainDeposit.amount), 0))
            .group_by(ChainDeposit.status)).all():
        out[f"deposits_{status}"] = int(n)
        out[f"deposits_{status}_base_units"] = int(total)
    out["account_balances_base_units"] = int(session.scalar(select(func.coalesce(func.sum(Account.balance), 0))) or 0)
    return out


def credited(session: Session, chain_id: int | None = None) -> list[dict[str, Any]]:
    """Credited deposits (for reconcile), oldest first."""
    stmt = select(ChainDeposit).where(ChainDeposit.status == "credited").order_by(ChainDeposit.id)
    if chain_id is not None:
        stmt = stmt.where(ChainDeposit.chain_id == chain_id)
    return [{"chain_id": int(d.chain_id), "tx_hash": d.tx_hash, "log_index": int(d.log_index),
             "contract": d.contract, "block_number": int(d.block_number), "block_hash": d.block_hash,
             "account_ref": d.account_ref, "amount": int(d.amount or 0), "account_id": d.account_id}
            for d in session.scalars(stmt)]


def check_invariants(session: Session) -> list[str]:
    """Each credited deposit has exactly one journal deposit of its amount, and no journal
    deposit names a deposit that is not credited."""
    problems = []
    journal = {r: (h, int(d)) for r, h, d in session.execute(
        select(JournalEntry.ref, JournalEntry.holder, JournalEntry.delta)
        .where(JournalEntry.kind == "deposit", JournalEntry.ref.like("deposit:%"))).all()}
    counts = dict(session.execute(select(JournalEntry.ref, func.count()).where(
        JournalEntry.kind == "deposit", JournalEntry.ref.like("deposit:%")).group_by(JournalEntry.ref)).all())
    for ref, n in counts.items():
        if n != 1:
            problems.append(f"journal has {n} deposits with ref {ref}")
    seen = set()
    for d in credited(session):
        ref = journal_ref(d["chain_id"], d["tx_hash"], d["log_index"])
        seen.add(ref)
        if ref not in journal:
            problems.append(f"credited deposit {ref} has no journal entry")
        elif journal[ref] != (f"account:{d['account_id']}", d["amount"]):
            problems.append(f"credited deposit {ref}: journal {journal[ref]} != {d['account_id']}, {d['amount']}")
    for ref in sorted(set(journal) - seen):
        problems.append(f"journal deposit {ref} belongs to no credited deposit")
    return problems


# -------------------------------------------------------------------- following


@dataclass
class FollowResult:
    head: int = 0
    final_block: int = 0
    seen: int = 0
    new: int = 0
    credited: int = 0
    unassigned: int = 0
    moved: int = 0
    dropped: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def follow(chain: Any, transaction: Callable[[str], Any], read: Callable[[], Session], *, confirmations: int,
           scan_blocks: int = 2_000) -> FollowResult:
    """One pass of the follower over ``chain`` (a :class:`payouts.chain.ChainClient` with a TopUps
    contract). ``transaction(label)`` gives a session in its own transaction (the label names the
    step for the fault hook: ``deposits_seen``, ``deposits_credit``), ``read()`` a plain one."""
    d = chain.deployment
    out = FollowResult()
    if not d.topups:
        return out
    chain_id, contract = chain.chain_id, d.topups
    start_hash = chain.block_hash(d.topups_block)
    if start_hash is None:
        raise RuntimeError(f"the node has no block {d.topups_block}, where TopUps was deployed: redeploy")
    head = chain.head()
    # A log in block b has head - b + 1 confirmations; it is final once that reaches the setting.
    final = head - confirmations + 1
    out.head, out.final_block = head, final
    with transaction("deposits_seen") as s:
        start = cursor(s, chain_id, contract, d.topups_block, start_hash)
    block = start
    while block <= head:
        to = min(head, block + scan_blocks - 1)
        logs = chain.deposit_logs(block, to)
        with transaction("deposits_seen") as s:
            out.new += record_seen(s, logs)
            if final >= block:
                advance(s, chain_id, contract, start_hash, min(to, final) + 1)
        out.seen += len(logs)
        block = to + 1
    while True:
        with read() as s:
            due = pending(s, chain_id, contract, up_to_block=final)
        if not due:
            break
        progressed = False
        for row in due:
            live = chain.block_hash(row.block_number)
            if live is not None and live.lower() == row.block_hash.lower():
                with transaction("deposits_credit") as s:
                    status = finalise(s, row)
                if status == "credited":
                    out.credited += 1
                elif status == "unassigned":
                    out.unassigned += 1
                progressed = True
                continue
            now = chain.deposit_log_in_receipt(row.tx_hash, row.log_index)
            with transaction("deposits_credit") as s:
                what = move_or_drop(s, row, now)
            if what == "dropped":
                out.dropped += 1
                progressed = True
            else:
                out.moved += 1
                progressed |= now is not None and now.block_number > final  # it left the final range
        if not progressed or len(due) < 1_000:
            # a moved row still at a final height is checked again on the next run (its new block
            # may still be settling); never spin here
            break
    return out

