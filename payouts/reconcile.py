"""Reconciliation: the ledger against itself and, deployment by deployment, against the chain.

:func:`reconcile` returns every difference it finds (an empty list means the books balance):
the ledger's own money rules (:func:`payouts.ledger.check_invariants`) and, for each deployment
the ledger paid on (``payouts.deployments``), its channels against THAT deployment's contract:
paid on chain = settled in the ledger, paid ≤ deposited, deposit ≥ the latest voucher (so every
voucher can be cashed), and each channel closing the reclaim run recorded against the chain's
events (``payouts.closing_audit``: deposit and paid at the close, reclaimed = the settle's refund =
deposit − paid, the refund's transfer to the hub). A deployment the configured node does not have (another chain, a reset
chain, a contract gone) cannot be checked: that is a difference as long as vouchers signed there
are neither settled nor returned to owed (``openchat payouts retire``), because nothing then
accounts for them. The configured deployment being another chain state than its file recorded
is a difference too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from payouts import closing_audit, deployments, ledger, topups
from payouts.chain import ChainClient, ChainError
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
    # On-chain top-ups: credited deposits (base units), and how many were checked against the
    # chain's logs (those on the configured node's chain).
    topups_credited: int = 0
    topups_checked_on_chain: int = 0
    # Channel closings the reclaim run recorded, checked against the chain's events
    # (payouts.closing_audit): how many, what the ledger says was reclaimed, what the settles refunded.
    closings_checked: int = 0
    closings_reclaimed: int = 0
    chain_refunded: int = 0
    # one entry per deployment: its figures, and how it was checked
    # ("configured", "live on the configured node", "not on the configured node", "ledger only")
    deployments: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def reconcile(session: Session, client: ChainClient | None) -> Report:
    """Every difference between the ledger's own figures, and between the ledger and each chain."""
    if not session.in_transaction():  # a caller's open transaction keeps its own isolation
        begin_snapshot(session)
    report = Report(problems=list(ledger.check_invariants(session)))
    report.pending_settlements = int(session.scalar(
        select(func.count()).select_from(Settlement).where(Settlement.status == "pending")) or 0)
    for vouchered, settled in session.execute(select(Contributor.vouchered, Contributor.settled)).all():
        report.contributors += 1
        report.ledger_vouchered += int(vouchered)
        report.ledger_settled += int(settled)
    current: deployments.DeploymentRow | None = None
    if client is not None:
        try:
            current = deployments.find(session, client.deployment_key())
        except ChainError as exc:
            report.problems.append(f"configured deployment: {exc}")
            client = None
    by_deployment: dict[int, list[deployments.ChannelRow]] = {}
    for ch in deployments.channels(session):
        by_deployment.setdefault(ch.deployment_id, []).append(ch)
    rows = {d.id: d for d in deployments.all_deployments(session)}
    for fig in deployments.figures(session):
        d = rows[fig["id"]]
        chans = by_deployment.get(d.id, [])
        if client is None:
            fig["checked"] = "ledger only"
        elif current is not None and d.id == current.id:
            fig["checked"] = "configured"
            _check_channels(report, client, chans, prefix="")
            _check_closings(report, session, client, d, prefix="")
        elif client.is_live(d.chain_id, d.contract, d.deploy_block, d.deploy_block_hash):
            fig["checked"] = "live on the configured node"
            _check_channels(report, client.for_channels(d.contract), chans, prefix=f"{d.label()}: ")
            _check_closings(report, session, client.for_channels(d.contract), d, prefix=f"{d.label()}: ")
        else:
            fig["checked"] = "not on the configured node"
            if fig["outstanding"] > 0:
                owed_to = sum(1 for c in chans if c.outstanding > 0)
                report.problems.append(
                    f"{d.label()} is not the configured deployment and the configured node does not have it: "
                    f"{fig['outstanding']} base units vouchered there to {owed_to} payee(s) are neither settled "
                    f"nor returned to owed. Point the chain settings at it to pay or check them, or, once its "
                    f"vouchers can no longer be claimed, `openchat payouts retire {d.id}`")
        if client is not None and d.retired and fig["checked"] != "not on the configured node":
            report.problems.append(f"{d.label()} was retired (its unsettled vouchers returned to owed) but its "
                                   "contract is on the configured node, where they can still be claimed")
        report.deployments.append(fig)
    _check_deposits(report, session, client)
    pending_elsewhere = session.execute(
        select(Settlement.id).where(Settlement.status == "pending", Settlement.deployment_id.is_(None))).scalars().all()
    for sid in pending_elsewhere:
        report.problems.append(f"settlement {sid} is pending and bound to no deployment")
    return report


def _check_deposits(report: Report, session: Session, client: ChainClient | None) -> None:
    """Each credited top-up has its one journal deposit and, on the configured chain, its
    ``Deposited`` log is still in the block it was credited from, with the same reference and
    amount (a reorg deeper than the confirmation depth shows up here)."""
    report.problems += topups.check_invariants(session)
    for d in topups.credited(session):
        report.topups_credited += d["amount"]
        if client is None or d["chain_id"] != client.chain_id:
            continue
        found = client.deposit_log_in_receipt(d["tx_hash"], d["log_index"], d["contract"])
        report.topups_checked_on_chain += 1
        where = f"deposit {d['tx_hash']}:{d['log_index']} credited {d['amount']} to {d['account_id']}"
        if found is None:
            report.problems.append(f"{where}: the chain has no such log any more (a reorg deeper than the "
                                   "confirmation depth, or another chain)")
        elif (found.block_hash.lower(), found.account_ref.lower(), found.amount) != (
                d["block_hash"].lower(), d["account_ref"].lower(), d["amount"]):
            report.problems.append(f"{where}: on chain it is in block {found.block_hash} for {found.account_ref}, "
                                   f"amount {found.amount}; the ledger credited block {d['block_hash']}")


def _check_closings(report: Report, session: Session, client: ChainClient, d: deployments.DeploymentRow, *,
                    prefix: str) -> None:
    audit = closing_audit.check(session, client, d.id, d.deploy_block or 0, prefix=prefix)
    report.closings_checked += audit.checked
    report.closings_reclaimed += audit.ledger_reclaimed
    report.chain_refunded += audit.chain_refunded
    report.problems += audit.problems


def _check_channels(report: Report, client: ChainClient, chans: list[deployments.ChannelRow], *, prefix: str) -> None:
    for c in chans:
        if c.vouchered == c.opening_paid:
            continue  # bound, never vouchered
        ch = client.get_channel(bytes.fromhex(c.channel_id.removeprefix("0x")))
        report.channels += int(ch.exists)
        report.chain_paid += ch.paid
        report.chain_deposited += ch.deposited
        who = f"{prefix}{c.contributor}"
        if ch.paid != c.settled:
            report.problems.append(f"{who}: paid on chain {ch.paid} != settled in ledger {c.settled}")
        if ch.paid > ch.deposited:
            report.problems.append(f"{who}: paid {ch.paid} > deposited {ch.deposited}")
        if ch.deposited < c.vouchered - c.retired:
            report.problems.append(f"{who}: deposit {ch.deposited} < latest voucher {c.vouchered - c.retired}")
