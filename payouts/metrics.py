"""Operational figures of the payout pipeline, read from the ledger and the broker on demand.

The workers write everything they do to the ledger, so the API can report worker-side figures
(credits, batches, settlement gas) at scrape time with a few aggregate queries: nothing to share
between processes, and the numbers are the same whichever API replica is scraped.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from celery import Celery
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from payouts import quarantine, reclaim, small_payees
from payouts.models import AnswerPayment, Credit, PayoutBatch, Settlement, Voucher


@dataclass(frozen=True)
class LedgerFigures:
    """Cumulative totals of the ledger (all integer base units or counts)."""

    answers_paid: int
    debited: int
    fees: int
    credits: int
    credited: int
    batches: int
    batched: int
    vouchers: int
    settlements: dict[str, int] = field(default_factory=dict)
    settlement_gas: int = 0
    settled: int = 0
    payees_quarantined: int = 0
    quarantined_owed: int = 0
    # (address, stage, code) of the first QUARANTINE_SERIES payees in quarantine: one series each
    quarantined: list[tuple[str, str, str]] = field(default_factory=list)
    # the hub's funds in channels (payouts.reclaim.figures): deposits_committed,
    # deposits_reclaimable, deposits_closing, deposits_reclaimed, channels_open/closing/reclaimed,
    # payees_below_minimum, below_minimum_owed
    channels: dict[str, int] = field(default_factory=dict)
    # the cap on small payees' committed funds (payouts.small_payees.figures): committed,
    # last_cap, waiting, waiting_owed, waiting_needed and the settings
    small_payees: dict[str, int] = field(default_factory=dict)


# Per-payee series are bounded, so a flood of failing payees cannot blow up the scrape; the
# totals above count them all, and `openchat payouts status` lists every one with its reason.
QUARANTINE_SERIES = 100


def ledger_figures(session: Session, *, min_owed: int = 0,
                   small_cap: small_payees.SmallPayeeCap | None = None) -> LedgerFigures:
    """The ledger's totals in a dozen aggregate queries (``min_owed``: the payout minimum, for
    the payees below it; ``small_cap``: the cap on small payees' funds, None: off)."""
    answers, debited, fees = session.execute(
        select(func.count(), func.coalesce(func.sum(AnswerPayment.total), 0),
               func.coalesce(func.sum(AnswerPayment.fee), 0))
    ).one()
    credits, credited = session.execute(
        select(func.count(), func.coalesce(func.sum(Credit.amount), 0))
    ).one()
    batches, batched = session.execute(
        select(func.count(), func.coalesce(func.sum(PayoutBatch.total), 0))
    ).one()
    vouchers = session.execute(select(func.count()).select_from(Voucher)).scalar_one()
    by_status: dict[str, int] = {}
    gas = settled = 0
    rows = session.execute(
        select(Settlement.status, func.count(), func.coalesce(func.sum(Settlement.gas_used), 0),
               func.coalesce(func.sum(Settlement.total), 0)).group_by(Settlement.status)
    ).all()
    for status, count, gas_used, total in rows:
        by_status[status] = int(count)
        gas += int(gas_used)
        if status in ("confirmed", "reconciled"):
            settled += int(total)
    held_out, owed = quarantine.summary(session)
    listed = [(q["address"], q["stage"], q["code"]) for q in quarantine.quarantined(session, limit=QUARANTINE_SERIES)]
    return LedgerFigures(
        answers_paid=int(answers), debited=int(debited), fees=int(fees), credits=int(credits),
        credited=int(credited), batches=int(batches), batched=int(batched), vouchers=int(vouchers),
        settlements=by_status, settlement_gas=gas, settled=settled,
        payees_quarantined=held_out, quarantined_owed=owed, quarantined=listed,
        channels=reclaim.figures(session, min_owed),
        small_payees=small_payees.figures(session, small_cap or small_payees.SmallPayeeCap(0, 0, 0)),
    )


def queue_depths(app: Celery, queues: Iterable[str], timeout: float = 2.0) -> dict[str, int]:
    """Messages waiting in each queue, asked of the broker (Redis or the embedded SQLite one);
    a queue the broker has never seen counts 0. Raises when the broker
    cannot be reached within ``timeout``."""
    from kombu.exceptions import ChannelError

    out: dict[str, int] = {}
    with app.connection_for_read() as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=timeout)
        channel = conn.default_channel
        for queue in queues:
            size = getattr(channel, "_size", None)
            if size is not None:
                # kombu's virtual transports (Redis, SQLAlchemy) count with _size(), part of
                # their transport interface. The portable passive declare is wrong on Redis
                # with global_keyprefix: its existence check ignores the prefix and says 404.
                count = size(queue)
            else:
                try:
                    _, count, _ = channel.queue_declare(queue=queue, passive=True)
                except ChannelError:  # never declared: nothing waiting
                    count = 0
            out[queue] = int(count)
    return out
