"""Reconciliation: the ledger against itself and against the chain.

:func:`reconcile` returns every difference it finds (an empty list means the books balance):
the ledger's own money rules (:func:`payouts.ledger.check_invariants`) and, per contributor,
the channel on chain: paid on chain = settled in the ledger, paid ≤ deposited, deposit ≥ the
latest voucher (so every voucher can be cashed), settlements still pending.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from payouts import ledger
from payouts.chain import ChainClient
from payouts.db import begin_snapshot
from payouts.models import Contributor, Settlement


@dataclass
class Report:
    contributors: int = 0
    channels: int = 0
    chain_paid: int = 0
    chain_deposited: int = 0
    ledger_settled: int = 0
    ledger_vouchered: int = 0
    # Settlement txs sent and not yet recorded: in flight, not a difference. Once mined and
    # unrecorded they show up below as chain paid != ledger settled; the settle task records them.
    pending_settlements: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def reconcile(session: Session, client: ChainClient | None) -> Report:
    """Every difference between the ledger's own figures, and between the ledger and the chain."""
    if not session.in_transaction():  # a caller's open transaction keeps its own isolation
        begin_snapshot(session)
    report = Report(problems=list(ledger.check_invariants(session)))
    report.pending_settlements = int(session.scalar(
        select(func.count()).select_from(Settlement).where(Settlement.status == "pending")) or 0)
    rows = session.execute(select(Contributor.address, Contributor.vouchered, Contributor.settled)
                           .order_by(Contributor.address)).all()
    report.contributors = len(rows)
    for address, vouchered, settled in rows:
        report.ledger_settled += int(settled)
        report.ledger_vouchered += int(vouchered)
        if client is None or not vouchered:
            continue
        ch = client.get_channel(client.channel_id(address))
        report.channels += int(ch.exists)
        report.chain_paid += ch.paid
        report.chain_deposited += ch.deposited
        if ch.paid != settled:
            report.problems.append(f"{address}: paid on chain {ch.paid} != settled in ledger {settled}")
        if ch.paid > ch.deposited:
            report.problems.append(f"{address}: paid {ch.paid} > deposited {ch.deposited}")
        if ch.deposited < vouchered:
            report.problems.append(f"{address}: deposit {ch.deposited} < latest voucher {vouchered}")
    return report
