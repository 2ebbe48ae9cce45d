"""Closed channels against the chain's events: what ``openchat payouts reconcile`` checks of the
reclaim run's books (``channel_closures``, ``payouts.reclaim``).

The chain keeps only a channel's current deposit and ``paid``; what they were at a close, and
what a settle refunded, are in its events. :func:`closings_on_chain` replays a channel's events
(``ChannelOpened``/``ChannelToppedUp`` carry the cumulative deposit, ``ChannelClaimed``/
``ChannelPushed`` the cumulative paid, ``ChannelClosing``, ``ChannelSettled`` the refund) into
its closings; :func:`check` compares each closing the ledger recorded with its match on chain:
the deposit and the amount paid to the payee at the close (the ledger's settled amount when it
closed), the refund the ledger recorded as reclaimed (= deposit − paid by the settle), the
settle's token transfer to the hub, and the ledger's settled amount for the channel since.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from payouts.chain import ChainClient
from payouts.models import ChannelClosure, PayeeChannel


@dataclass(frozen=True)
class ChainClosing:
    """One close of a channel as its events tell it (settle fields None while it is closing)."""

    close_tx: str
    close_block: int
    closes_at: int
    deposited: int  # the channel's cumulative deposit when it was closed
    paid: int  # its cumulative paid when it was closed
    settle_tx: str | None = None
    settle_block: int | None = None
    refund: int | None = None
    paid_at_settle: int | None = None  # claims may still come during the challenge period


def closings_on_chain(events: Iterable[dict[str, Any]]) -> list[ChainClosing]:
    """A channel's closings, oldest first, from its events in chain order."""
    deposited = paid = 0
    current: ChainClosing | None = None
    out: list[ChainClosing] = []
    for e in events:
        name = e["event"]
        if name in ("ChannelOpened", "ChannelToppedUp"):
            deposited = int(e["deposited"])
        elif name in ("ChannelClaimed", "ChannelPushed"):
            paid = int(e["paid"])
        elif name == "ChannelClosing":
            current = ChainClosing(e["tx_hash"], int(e["block"]), int(e["closesAt"]), deposited, paid)
            out.append(current)
        elif name == "ChannelSettled" and current is not None:
            out[-1] = ChainClosing(current.close_tx, current.close_block, current.closes_at, current.deposited,
                                   current.paid, e["tx_hash"], int(e["block"]), int(e["refund"]), paid)
            deposited, current = paid, None  # the contract leaves deposited = paid after a settle
    return out


@dataclass
class Audit:
    checked: int = 0  # closings the ledger recorded and the chain was asked about
    ledger_reclaimed: int = 0
    chain_refunded: int = 0  # refunds of those closings' settles, on chain
    problems: list[str] = field(default_factory=list)


def check(session: Session, client: ChainClient, deployment_id: int, from_block: int, *, prefix: str = "") -> Audit:
    """Every closing the ledger recorded on this deployment against the chain's events (see the
    module's docstring); a channel the chain has closed while the ledger holds it open is named too."""
    audit = Audit()
    K, C = ChannelClosure, PayeeChannel
    rows = session.scalars(select(K).where(K.deployment_id == deployment_id).order_by(K.id)).all()
    channels = {c.channel_id: c for c in session.scalars(
        select(C).where(C.deployment_id == deployment_id, (C.deposited > 0) | C.channel_id.in_([r.channel_id for r in rows])))}
    if not channels:
        return audit
    history = client.channel_history([bytes.fromhex(cid.removeprefix("0x")) for cid in channels], from_block)
    on_chain = {"0x" + cid.hex(): closings_on_chain(events) for cid, events in history.items()}
    matched: dict[str, set[str]] = {}
    for row in rows:
        audit.checked += 1
        audit.ledger_reclaimed += row.reclaimed or 0
        cycles = on_chain.get(row.channel_id, [])
        who = f"{prefix}{row.contributor}: closing #{row.id} of channel {row.channel_id}"
        # a closing is its close transaction; one recorded from the chain after a crash has none,
        # and then its deposit at close names it (unique per channel: each re-open adds to it)
        m = next((c for c in cycles if c.close_tx == row.close_tx), None) if row.close_tx else \
            next((c for c in cycles if c.deposited == row.deposited), None)
        if m is None:
            audit.problems.append(f"{who} (close tx {row.close_tx or 'not recorded'}, deposit {row.deposited}): the "
                                  "chain has no such close of the channel")
            continue
        matched.setdefault(row.channel_id, set()).add(m.close_tx)
        audit.problems += _compare(client, who, row, m, channels.get(row.channel_id))
        audit.chain_refunded += m.refund or 0
    for cid, ch in channels.items():  # closed on chain behind the ledger's back, and not re-opened since
        cycles = on_chain.get(cid, [])
        last = cycles[-1] if cycles else None
        if last is not None and ch.state == "open" and last.close_tx not in matched.get(cid, set()) \
                and not _reopened_after(history[bytes.fromhex(cid[2:])], last):
            done = f", settled in {last.settle_tx} refunding {last.refund} to the hub" if last.settle_tx else ""
            audit.problems.append(
                f"{prefix}{ch.contributor}: channel {cid} was closed on chain in {last.close_tx} (deposit "
                f"{last.deposited}, paid {last.paid}{done}) but the ledger has no closing and holds it open")
    return audit


def _reopened_after(events: list[dict[str, Any]], closing: ChainClosing) -> bool:
    return any(e["event"] == "ChannelOpened" and e["block"] > closing.close_block for e in events)


def _compare(client: ChainClient, who: str, row: ChannelClosure, m: ChainClosing, ch: PayeeChannel | None) -> list[str]:
    out = []
    if row.deposited != m.deposited:
        out.append(f"{who}: deposit at close {row.deposited} in the ledger, {m.deposited} on chain")
    if row.paid != m.paid:
        out.append(f"{who}: paid to the payee at close {row.paid} in the ledger (its settled amount then), "
                   f"{m.paid} on chain (the channel's pushes and claims up to {m.close_tx})")
    if row.closes_at and row.closes_at != m.closes_at:
        out.append(f"{who}: challenge period ends at {row.closes_at} in the ledger, {m.closes_at} on chain")
    if ch is not None and ch.settled < (m.paid_at_settle if m.paid_at_settle is not None else m.paid):
        out.append(f"{who}: the ledger's settled amount for the channel ({ch.settled}) is below what the chain "
                   f"paid the payee by this closing ({m.paid_at_settle if m.paid_at_settle is not None else m.paid})")
    if m.settle_tx is None:
        if row.status == "settled":
            out.append(f"{who}: the ledger records it settled (reclaimed {row.reclaimed}, tx {row.settle_tx}); "
                       "the chain has not settled it")
        return out
    if row.status != "settled":
        out.append(f"{who}: settled on chain in {m.settle_tx} (refund {m.refund}) but the ledger still has it "
                   "closing (the next reclaim run records it)")
        return out
    refund, paid_end = m.refund or 0, m.paid if m.paid_at_settle is None else m.paid_at_settle
    if row.reclaimed != refund:
        out.append(f"{who}: reclaimed {row.reclaimed} in the ledger, the settle {m.settle_tx} refunded {refund}")
    if (row.reclaimed or 0) != row.deposited - paid_end:
        out.append(f"{who}: reclaimed {row.reclaimed} != deposit at close {row.deposited} - paid "
                   f"{paid_end} by the settle = {row.deposited - paid_end}")
    if row.settle_tx and row.settle_tx.lower() != m.settle_tx.lower():
        out.append(f"{who}: settle tx {row.settle_tx} in the ledger, {m.settle_tx} on chain")
    if refund:
        payer = ch.payer if ch is not None else client.hub.address
        sent = sum(a for src, dst, a in client.token_transfers(m.settle_tx)
                   if src == client.deployment.channels and dst == payer)
        if sent != refund:
            out.append(f"{who}: the settle {m.settle_tx} moved {sent} of the token to the hub {payer}, "
                       f"not its refund {refund}")
    return out
