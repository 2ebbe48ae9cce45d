"""The cap on hub funds committed to payees who have earned little, and their waiting queue.

The minimum payout and the deposit headroom bound what ONE payee can make the hub lock; nothing
bounded the total. Many Sybil addresses each owed just over the minimum payout could still make
the hub deposit into a channel per address until its liquid funds ran out (and every later
``open`` reverted, for everyone). So the deposits of "small" payees (lifetime ``earned`` below
``small_payee_earned_below``) share one budget: their committed funds (deposited and not paid
out, on open and closing channels) never go above ``cap`` = min(a fixed budget, a share of the
hub's funds). A small payee whose deposit would not fit waits, queued, with its reason; it is
paid, in queue order, once pushes, claims or reclaimed deposits free funds. Nothing is dropped:
what it is owed stays in the ledger. Everyone else (large payees, small payees whose deposit
already covers their new voucher) is paid in the same run.

Pure parts (:class:`SmallPayeeCap`, :class:`Gate`) and the ledger side (table ``payee_waits``,
migration 0017; committed funds; figures).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, delete, func, select, update
from sqlalchemy.orm import Session

from payouts.ledger import _insert_ignore, checksum
from payouts.models import Contributor, PayeeChannel, PayeeWait, PayoutDeployment, utcnow

BPS = 10_000
MAX_REASON_CHARS = 500


def _amount(value: int, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer of base units, got {value!r}")
    return value


@dataclass(frozen=True)
class SmallPayeeCap:
    """The operator's settings (``PayoutsSettings``: ``small_payee_earned_below``,
    ``small_payees_max_committed``, ``small_payees_max_committed_bps``). ``earned_below`` 0
    turns the cap off (no payee is small)."""

    earned_below: int
    budget: int
    share_bps: int

    def __post_init__(self) -> None:
        for name in ("earned_below", "budget", "share_bps"):
            _amount(getattr(self, name), name)
        if self.share_bps > BPS:
            raise ValueError(f"share_bps must be at most {BPS}, got {self.share_bps}")

    @property
    def enabled(self) -> bool:
        return self.earned_below > 0

    def is_small(self, earned: int) -> bool:
        return self.enabled and _amount(earned, "earned") < self.earned_below

    def cap(self, hub_funds: int) -> int:
        """What small payees' channels may hold in all: the budget, or the share of the hub's
        funds (its token balance plus what its channels hold) when that is less."""
        return min(self.budget, _amount(hub_funds, "hub_funds") * self.share_bps // BPS)


@dataclass
class Gate:
    """One voucher run's admission of small payees' deposits. Asked in queue order (payees that
    waited first, oldest first, then newcomers); a deposit is admitted only while the committed
    total stays within ``cap``. No overtaking: once one payee does not fit, every later one
    queues behind it, so the head of the queue is the next paid and nobody starves. A deposit
    larger than the whole cap can never fit; it waits without holding up the queue."""

    cap: int
    committed: int
    blocked_by: str | None = None

    def admit(self, address: str, need: int) -> str | None:
        """None when the deposit ``need`` is admitted (and counted), else why it waits."""
        _amount(need, "need")
        if need > self.cap:
            return (f"its deposit of {need} is more than the whole cap on small payees' funds ({self.cap}): "
                    "it waits until the operator raises OPENCHAT_SMALL_PAYEES_MAX_COMMITTED(_BPS) or it earns "
                    "past OPENCHAT_SMALL_PAYEE_EARNED_BELOW")
        if self.blocked_by is not None:
            return (f"queued behind {self.blocked_by}, which waits for funds: small payees' channels hold "
                    f"{self.committed} of the cap {self.cap}; this deposit needs {need}")
        if self.committed + need > self.cap:
            self.blocked_by = address
            return (f"cap reached: small payees' channels hold {self.committed} of the cap {self.cap}; this deposit "
                    f"needs {need}; paid once pushes, claims or reclaimed deposits free {self.committed + need - self.cap}")
        self.committed += need
        return None


# ------------------------------------------------------------------------ ledger


def _live_channels() -> Any:
    C = PayeeChannel
    live = select(PayoutDeployment.id).where(PayoutDeployment.retired_at.is_(None))
    return (C.state.in_(("open", "closing")), C.deployment_id.in_(live))


def _held() -> Any:
    """A channel's hub funds not paid out: deposit − paid (never negative on a stale row)."""
    C = PayeeChannel
    return case((C.deposited > C.settled, C.deposited - C.settled), else_=0)


def committed(session: Session, earned_below: int) -> tuple[int, int]:
    """(all channels, small payees' channels): hub funds deposited and not paid out, on open and
    closing channels of live deployments, from the ledger (its ``settled`` may lag a claim: the
    figure errs high, on the safe side)."""
    C = PayeeChannel
    held = _held()
    small = case((Contributor.earned < earned_below, held), else_=0)
    total, of_small = session.execute(
        select(func.coalesce(func.sum(held), 0), func.coalesce(func.sum(small), 0))
        .select_from(C).join(Contributor, Contributor.address == C.contributor).where(*_live_channels())).one()
    return int(total), int(of_small)


def queue(session: Session) -> list[str]:
    """The waiting payees' addresses, in queue order (first wait, then address)."""
    W = PayeeWait
    return list(session.scalars(select(W.address).order_by(W.since, W.address)))


def wait(session: Session, address: str, *, needed: int, owed: int, cap: int, committed: int, reason: str,
         now: datetime | None = None) -> None:
    """Record that ``address`` waits for funds (keeping its place if it waited already)."""
    now = now or utcnow()
    values = {"needed": _amount(needed, "needed"), "owed": _amount(owed, "owed"), "cap": _amount(cap, "cap"),
              "committed": _amount(committed, "committed"), "reason": reason[:MAX_REASON_CHARS], "checked_at": now}
    address = checksum(address)
    _insert_ignore(session, PayeeWait.__table__, [{"address": address, "since": now, **values}])
    session.execute(update(PayeeWait).where(PayeeWait.address == address).values(**values)
                    .execution_options(synchronize_session=False))


def leave(session: Session, address: str) -> None:
    """The payee was paid (or needs no new deposit): it leaves the queue."""
    session.execute(delete(PayeeWait).where(PayeeWait.address == checksum(address))
                    .execution_options(synchronize_session=False))


def prune(session: Session, checked_before: datetime, *, keep: Collection[str] = ()) -> int:
    """Drop the queue entries a complete voucher run did not confirm (no longer owed, quarantined,
    grown past the small-payee line): their money stays owed in the ledger; a payee that needs a
    deposit again later queues again. Returns how many were dropped from the queue."""
    W = PayeeWait
    stmt = delete(W).where(W.checked_at < checked_before)
    if keep:
        stmt = stmt.where(W.address.not_in(list(keep)))
    return int(session.execute(stmt.execution_options(synchronize_session=False)).rowcount or 0)


def waiting(session: Session, *, limit: int | None = None) -> tuple[int, int, int, list[dict[str, Any]]]:
    """(count, Σ owed, Σ needed deposits, the first ``limit`` in queue order with position and reason)."""
    W = PayeeWait
    count, owed, needed = session.execute(
        select(func.count(), func.coalesce(func.sum(W.owed), 0), func.coalesce(func.sum(W.needed), 0))).one()
    stmt = select(W).order_by(W.since, W.address)
    if limit is not None:
        stmt = stmt.limit(limit)
    listed = [{"position": i + 1, "address": w.address, "since": w.since.isoformat(), "owed": int(w.owed),
               "needed": int(w.needed), "cap": int(w.cap), "committed": int(w.committed), "reason": w.reason}
              for i, w in enumerate(session.scalars(stmt))]
    return int(count), int(owed), int(needed), listed


def figures(session: Session, policy: SmallPayeeCap) -> dict[str, int]:
    """For status and /metrics, from the ledger: the settings, small payees' committed funds, the
    cap the last voucher run applied (0 before any wait was recorded), the queue's size and sums."""
    _, of_small = committed(session, policy.earned_below) if policy.enabled else (0, 0)
    count, owed, needed, _ = waiting(session, limit=0)
    last_cap = session.scalar(select(PayeeWait.cap).order_by(PayeeWait.checked_at.desc()).limit(1))
    return {"earned_below": policy.earned_below, "budget": policy.budget, "share_bps": policy.share_bps,
            "committed": of_small, "last_cap": int(last_cap or 0), "waiting": count, "waiting_owed": owed,
            "waiting_needed": needed}
