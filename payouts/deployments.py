"""The deployments the ledger pays on, and each payee's channel on each of them.

A voucher's cumulative amount means something only on its channel, and a channel belongs to one
PaymentChannels contract on one chain state. So the ledger binds every voucher, settlement and
channel amount to a ``payout_deployments`` row (chain id, contract, hash of the deployment block;
a reset anvil redeploys at the same addresses) and keeps each payee's amounts per channel
(``payee_channels``). A new deployment never re-pays what an older one paid: a payee's new channel
is vouchered from what that channel has received (``opening_paid``, normally 0) plus only what is
still owed (batched − vouchered over all deployments).

Vouchers signed on an older deployment and never settled stay what they are: claimable there, and
paid there by the settlement run while that contract is on the configured node. They are NOT
vouchered again on the new deployment. When that deployment is gone for good (a reset chain, a
chain left behind), the operator retires it (``openchat payouts retire``): their unsettled amount
returns to owed, exactly once, and is vouchered on the configured deployment by the next run.
Retiring refuses a deployment whose contract the configured node still has, so a payee is never
both able to claim an old voucher and paid the same amount again.

Pure ledger: the chain's facts (block hash, a channel's ``paid``) are passed in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from payouts.ledger import LedgerError, _insert_ignore, _journal, checksum
from payouts.models import Contributor, PayeeChannel, PayoutDeployment, Voucher, utcnow

if TYPE_CHECKING:
    from payouts.chain import DeploymentKey


class DeploymentRetired(LedgerError):
    """The configured deployment was retired: nothing more is paid on it."""


@dataclass(frozen=True)
class DeploymentRow:
    id: int
    chain_id: int
    contract: str
    deploy_block: int | None
    deploy_block_hash: str | None
    retired: bool

    def label(self) -> str:
        where = f"block {self.deploy_block} {self.deploy_block_hash[:10]}…" if self.deploy_block_hash else "block unknown"
        return f"deployment #{self.id} (chain {self.chain_id}, PaymentChannels {self.contract}, {where})"


@dataclass(frozen=True)
class ChannelRow:
    """A payee's channel on one deployment, in the channel's cumulative amounts."""

    id: int
    deployment_id: int
    contributor: str
    channel_id: str
    opening_paid: int
    vouchered: int
    settled: int
    retired: int

    @property
    def outstanding(self) -> int:
        """Vouchered on this channel, not paid, not returned to owed."""
        return self.vouchered - self.settled - self.retired


def _row(d: PayoutDeployment) -> DeploymentRow:
    return DeploymentRow(d.id, int(d.chain_id), d.contract, None if d.deploy_block is None else int(d.deploy_block),
                         d.deploy_block_hash, d.retired_at is not None)


def all_deployments(session: Session) -> list[DeploymentRow]:
    return [_row(d) for d in session.scalars(select(PayoutDeployment).order_by(PayoutDeployment.id))]


def find(session: Session, key: DeploymentKey) -> DeploymentRow | None:
    """The ledger's row of ``key``, or None (never paid on)."""
    d = session.scalar(select(PayoutDeployment).where(
        PayoutDeployment.chain_id == key.chain_id, PayoutDeployment.contract == checksum(key.contract),
        PayoutDeployment.deploy_block_hash == key.deploy_block_hash.lower()))
    return None if d is None else _row(d)


def legacy_candidate(session: Session, key: DeploymentKey) -> tuple[int, list[tuple[str, int]]] | None:
    """A row of migration 0011 (block hash unknown) with ``key``'s chain and contract, and its
    channels' (channel id, settled): the caller adopts it only if the chain has paid each of them
    at least that much, i.e. the chain is the one those vouchers were paid on."""
    d = session.scalar(select(PayoutDeployment).where(
        PayoutDeployment.chain_id == key.chain_id, PayoutDeployment.contract == checksum(key.contract),
        PayoutDeployment.deploy_block_hash.is_(None)).order_by(PayoutDeployment.id).limit(1))
    if d is None:
        return None
    rows = session.execute(select(PayeeChannel.channel_id, PayeeChannel.settled)
                           .where(PayeeChannel.deployment_id == d.id)).all()
    return d.id, [(c, int(s)) for c, s in rows]


def register(session: Session, key: DeploymentKey, *, adopt: int | None = None) -> int:
    """The id of deployment ``key``, recorded the first time it is paid on (``adopt``: give that
    legacy row, see :func:`legacy_candidate`, this key instead). Raises
    :class:`DeploymentRetired` for a retired deployment."""
    found = find(session, key)
    if found is None and adopt is not None:
        session.execute(update(PayoutDeployment).where(
            PayoutDeployment.id == adopt, PayoutDeployment.deploy_block_hash.is_(None)).values(
            deploy_block=key.deploy_block, deploy_block_hash=key.deploy_block_hash.lower())
            .execution_options(synchronize_session=False))
        found = find(session, key)
    if found is None:
        _insert_ignore(session, PayoutDeployment.__table__, [{
            "chain_id": key.chain_id, "contract": checksum(key.contract), "deploy_block": key.deploy_block,
            "deploy_block_hash": key.deploy_block_hash.lower(), "created_at": utcnow()}])
        found = find(session, key)
    assert found is not None
    if found.retired:
        raise DeploymentRetired(f"{found.label()} was retired: nothing is paid on it; redeploy "
                                "(python -m payouts.deploy) or point OPENCHAT_CHAIN_RPC_URL at the live chain")
    return found.id


def _channel(c: PayeeChannel) -> ChannelRow:
    return ChannelRow(c.id, c.deployment_id, c.contributor, c.channel_id, int(c.opening_paid), int(c.vouchered),
                      int(c.settled), int(c.retired))


def channel(session: Session, deployment_id: int, channel_id: bytes | str) -> ChannelRow | None:
    cid = channel_id if isinstance(channel_id, str) else "0x" + bytes(channel_id).hex()
    c = session.scalar(select(PayeeChannel).where(PayeeChannel.deployment_id == deployment_id,
                                                  PayeeChannel.channel_id == cid))
    return None if c is None else _channel(c)


def bind_channel(session: Session, deployment_id: int, address: str, *, payer: str, channel_id: bytes,
                 opening_paid: int) -> ChannelRow:
    """The payee's channel on the deployment, recorded the first time it is vouchered: its amounts
    start at ``opening_paid``, what the channel had paid then (on chain; normally 0), so its
    vouchers never carry an amount another deployment already paid."""
    cid = "0x" + bytes(channel_id).hex()
    if opening_paid < 0:
        raise LedgerError(f"opening paid of {cid} is negative: {opening_paid}")
    found = channel(session, deployment_id, cid)
    if found is None:
        _insert_ignore(session, PayeeChannel.__table__, [{
            "deployment_id": deployment_id, "contributor": checksum(address), "payer": checksum(payer),
            "channel_id": cid, "opening_paid": opening_paid, "vouchered": opening_paid, "settled": opening_paid,
            "retired": 0, "created_at": utcnow()}])
        found = channel(session, deployment_id, cid)
    assert found is not None
    if found.contributor != checksum(address):
        raise LedgerError(f"channel {cid} of deployment #{deployment_id} belongs to {found.contributor}, not {address}")
    return found


def channels(session: Session, deployment_id: int | None = None) -> list[ChannelRow]:
    stmt = select(PayeeChannel).order_by(PayeeChannel.contributor, PayeeChannel.id)
    if deployment_id is not None:
        stmt = stmt.where(PayeeChannel.deployment_id == deployment_id)
    return [_channel(c) for c in session.scalars(stmt)]


def retire(session: Session, deployment_id: int, *, by: str = "operator") -> dict[str, int] | None:
    """Return every unsettled voucher amount of a deployment that can no longer be paid to owed,
    exactly once (a conditional UPDATE marks it retired; a second call returns None). Returns
    payee -> amount returned. The caller checks the chain first: never retire a live deployment."""
    marked = session.execute(
        update(PayoutDeployment).where(PayoutDeployment.id == deployment_id, PayoutDeployment.retired_at.is_(None))
        .values(retired_at=utcnow(), retired_by=by[:200]).returning(PayoutDeployment.id)
        .execution_options(synchronize_session=False)).scalar_one_or_none()
    if marked is None:
        return None
    returned: dict[str, int] = {}
    for ch in channels(session, deployment_id):
        amount = ch.outstanding
        if amount <= 0:
            continue
        session.execute(update(PayeeChannel).where(PayeeChannel.id == ch.id, PayeeChannel.retired == ch.retired)
                        .values(retired=ch.retired + amount).execution_options(synchronize_session=False))
        after = session.execute(update(Contributor).where(Contributor.address == ch.contributor)
                                .values(vouchered=Contributor.vouchered - amount).returning(Contributor.vouchered)
                                .execution_options(synchronize_session=False)).scalar_one()
        _journal(session, [{"holder": f"contributor:{ch.contributor}", "kind": "vouchered", "delta": -amount,
                            "balance_after": int(after), "ref": f"retired:deployment:{deployment_id}"}])
        returned[ch.contributor] = returned.get(ch.contributor, 0) + amount
    return returned


def figures(session: Session) -> list[dict[str, Any]]:
    """Per deployment: its identity and the sums of its channels (channel amounts less what each
    channel had paid before the ledger used it), for ``openchat payouts status``."""
    c = PayeeChannel
    sums = {did: (n, int(v), int(s), int(r)) for did, n, v, s, r in session.execute(
        select(c.deployment_id, func.count(), func.coalesce(func.sum(c.vouchered - c.opening_paid), 0),
               func.coalesce(func.sum(c.settled - c.opening_paid), 0), func.coalesce(func.sum(c.retired), 0))
        .group_by(c.deployment_id)).all()}
    vouchers = dict(session.execute(select(Voucher.deployment_id, func.count()).group_by(Voucher.deployment_id)).all())
    out = []
    for d in all_deployments(session):
        n, v, s, r = sums.get(d.id, (0, 0, 0, 0))
        out.append({"id": d.id, "chain_id": d.chain_id, "contract": d.contract, "deploy_block": d.deploy_block,
                    "deploy_block_hash": d.deploy_block_hash, "retired": d.retired, "channels": int(n),
                    "vouchers": int(vouchers.get(d.id, 0)), "vouchered": v, "settled": s, "returned_to_owed": r,
                    "outstanding": v - s - r})
    return out
