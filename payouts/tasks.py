"""Payout tasks: aggregate credits into batches, issue vouchers, settle on chain.

The work is in plain functions over :class:`Resources` (settings, a DB engine, a chain client),
so tests and the CLI can run them in-process; :func:`register` wraps them as Celery tasks with
``acks_late``, retries with exponential backoff on RPC/DB errors, and idempotency keys.

Idempotency, task by task:
- ``aggregate``: the batch's idempotency key is the task id (+ the loop round): a redelivered
  task whose transaction committed finds its batch and batches nothing more; one that did not
  commit was rolled back. A credit is taken off the ``unbatched_credits`` queue by the run
  that batches it, and ``batch_credits``' primary key (the credit) refuses it a second batch.
- ``issue_vouchers``: the channel's deposit is read from the chain before any open/top-up, so a
  retry after a mined deposit does not deposit again; the voucher for a cumulative amount is
  unique in the ledger, and vouchered amounts only rise.
- ``settle``: the intent (a ``pending`` settlement) is committed before the transaction is sent;
  entries are cumulative and the contract skips any at or below what a channel already paid,
  so a retried or replayed push never pays twice; pending settlements left by a crash are
  reconciled against the channels' ``paid`` on chain at the start of the next run.

One payee never stalls the others: in ``issue_vouchers`` and ``settle`` a payee whose address can
never be paid, whose transaction reverts or whose data fails is quarantined (``payouts.quarantine``,
with the reason) and the run goes on; a batched push that reverts is sent again without the payee
the revert names. Only errors of the run itself (RPC, database; ``RETRY_ON`` but not a revert)
abort it for Celery's retry. A quarantined payee's credits stay owed, untouched.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from payouts import deployments, ledger, quarantine, reclaim, small_payees, topups
from payouts.chain import ChainClient, ChainError, ContractRevert, Deployment
from payouts.ledger import LedgerError
from payouts.models import utcnow
from payouts.payees import unpayable_reason
from payouts.settings import PayoutsSettings

log = logging.getLogger(__name__)

try:  # the exceptions an RPC hiccup raises through web3.py
    from requests.exceptions import RequestException as _RequestException
except ImportError:  # pragma: no cover
    _RequestException = OSError  # type: ignore[misc, assignment]
from web3.exceptions import TimeExhausted, Web3Exception

RETRY_ON: tuple[type[BaseException], ...] = (
    ChainError, _RequestException, OSError, TimeoutError, TimeExhausted, Web3Exception, OperationalError,
)


@dataclass
class Resources:
    """What a task needs, created lazily in the process that uses it (after a prefork fork)."""

    settings: PayoutsSettings
    engine: Engine | None = None
    chain: ChainClient | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _deployment_id: int | None = None

    def db(self) -> Engine:
        with self._lock:
            if self.engine is None:
                from payouts.db import make_engine

                self.engine = make_engine(self.settings.effective_database_url)
            return self.engine

    def chain_client(self) -> ChainClient:
        with self._lock:
            if self.chain is None:
                url = self.settings.chain_rpc_url
                if not url:
                    raise ChainError("no chain: set OPENCHAT_CHAIN_RPC_URL (make run starts anvil)")
                deployment = Deployment.load(self.settings.resolved_deployment_file)
                self.chain = ChainClient.connect(
                    url, deployment, self.settings.hub_private_key.get_secret_value(),
                    tx_timeout=self.settings.tx_timeout_seconds,
                )
            return self.chain

    def deployment_id(self) -> int:
        """The ledger's id of the configured deployment, recorded on first use (see
        ``payouts.deployments``). A row migration 0011 made from older vouchers of this chain and
        contract is adopted only if the chain has paid each of its channels what the ledger says."""
        if self._deployment_id is None:
            client = self.chain_client()
            key = client.deployment_key()
            with Session(self.db()) as s:
                legacy = deployments.legacy_candidate(s, key)
            adopt = None
            if legacy is not None and all(client.get_channel(bytes.fromhex(cid[2:])).paid >= settled
                                          for cid, settled in legacy[1]):
                adopt = legacy[0]
            with self.transaction() as s:
                self._deployment_id = deployments.register(s, key, adopt=adopt)
        return self._deployment_id

    def live_clients(self) -> dict[int, ChainClient]:
        """Deployment id -> a client for every ledger deployment whose contract the configured
        node has (the configured one, and older ones on this chain: their vouchers are still paid)."""
        client = self.chain_client()
        current = self.deployment_id()
        out = {current: client}
        with Session(self.db()) as s:
            rows = deployments.all_deployments(s)
        for d in rows:
            if d.id != current and not d.retired and client.is_live(d.chain_id, d.contract, d.deploy_block,
                                                                   d.deploy_block_hash):
                out[d.id] = client.for_channels(d.contract)
        return out

    @contextmanager
    def transaction(self, pause_label: str | None = None) -> Iterator[Session]:
        """A session in one transaction; the fault hook pauses just before the commit."""
        with Session(self.db(), expire_on_commit=False) as session, session.begin():
            yield session
            if pause_label:
                self.pause(pause_label)

    def pause(self, label: str) -> None:
        wanted = {t.strip() for t in self.settings.fault_pause_tasks.split(",") if t.strip()}
        if self.settings.fault_pause_seconds > 0 and label in wanted:
            print(f"PAUSE {label}", file=sys.stderr, flush=True)
            time.sleep(self.settings.fault_pause_seconds)


# ----------------------------------------------------------------------- work


def run_aggregate(res: Resources, key: str | None = None) -> dict[str, int]:
    """Batch every unbatched credit (in rounds of ``aggregate_max_credits``, one transaction
    each). Returns {"batches", "credits", "total"}."""
    out = {"batches": 0, "credits": 0, "total": 0}
    for round_no in range(1_000_000):
        with res.transaction("aggregate") as s:
            result = ledger.aggregate(
                s, idempotency_key=f"{key}:{round_no}" if key else None,
                max_credits=res.settings.aggregate_max_credits,
            )
        if result is None:
            break
        if not result.replayed:
            out["batches"] += 1
            out["credits"] += result.credit_count
            out["total"] += result.total
        if not result.replayed and result.credit_count < res.settings.aggregate_max_credits:
            break
    return out


# A payee's own failure: the chain refused its transaction (the revert names why) or its data
# cannot be sent (an amount out of range, a ledger refusal). It quarantines that payee and the
# run goes on. Anything in RETRY_ON that is not a revert (RPC down, database gone, no receipt) is
# the run's failure: raised, and Celery retries the task.
PAYEE_ERRORS: tuple[type[Exception], ...] = (LedgerError, ValueError, TypeError, ArithmeticError)


def _quarantine(res: Resources, address: str, stage: str, code: str, reason: str, *,
                permanent: bool = False) -> quarantine.Quarantined:
    with res.transaction() as s:
        q = quarantine.quarantine(s, address, stage=stage, code=code, reason=reason,
                                  retry_seconds=res.settings.payee_retry_seconds,
                                  max_retries=res.settings.payee_max_retries, permanent=permanent)
    log.warning("payee %s quarantined (%s, failure %d, retry %s): %s", address, stage, q.failures,
                q.retry_at.isoformat() if q.retry_at else "by the operator only", q.reason)
    return q


def _unpayable(res: Resources, client: ChainClient, address: str, stage: str) -> bool:
    """Quarantine ``address`` for good, sending nothing, if it can never be paid."""
    found = unpayable_reason(address, client.known_addresses())
    if found is None:
        return False
    code, why = found
    _quarantine(res, address, stage, code, f"{address} can never be paid: it is {why}", permanent=True)
    return True


def _error_code(exc: BaseException) -> str:
    return f"revert:{exc.name}" if isinstance(exc, ContractRevert) else f"error:{type(exc).__name__}"


def run_issue_vouchers(res: Resources) -> dict[str, int]:
    """For every contributor owed more than all their vouchers cover: make sure their channel on
    the configured deployment holds that channel's new cumulative amount (what it was vouchered
    before, plus only what is still owed), then sign and store the voucher. A deposit is sized to
    the voucher plus a headroom (``payouts.deposits``); a payee with no open channel gets one only
    once it is owed ``payout_min_owed`` (until then it stays owed, "below minimum"). The deposits
    of small payees (lifetime earnings below ``small_payee_earned_below``) share a cap
    (``payouts.small_payees``): one that would pass it waits, queued, and the run goes on; the
    queue is served first, in its order. A payee that can't be paid is quarantined and the others go on.
    Returns {"vouchers", "opened", "topped_up", "deposited", "below_minimum", "waiting", "skipped", "quarantined"}."""
    out = {"vouchers": 0, "opened": 0, "topped_up": 0, "deposited": 0, "below_minimum": 0, "waiting": 0,
           "skipped": 0, "quarantined": 0}
    policy = res.settings.deposit_policy()
    capping = res.settings.small_payee_cap()
    client = res.chain_client()
    deployment_id = res.deployment_id()
    started = utcnow()
    with Session(res.db()) as s:
        retrying = quarantine.due_retries(s)
        queued = small_payees.queue(s)
        all_committed, small_committed = small_payees.committed(s, capping.earned_below)
    gate = None
    if capping.enabled:  # the hub's funds: its free tokens plus what its channels hold
        hub_funds = client.token_balance(client.hub.address) + all_committed
        gate = small_payees.Gate(cap=capping.cap(hub_funds), committed=small_committed)
    tried: set[str] = set()  # one attempt per payee and run, however short its backoff

    def pay(o: ledger.Owed) -> bool:
        """Voucher one payee (depositing first if needed); True when something was recorded."""
        tried.add(o.address)
        if _unpayable(res, client, o.address, "voucher"):
            out["quarantined"] += 1
            return True
        step = "get_channel"
        try:
            cid = client.channel_id(o.address)
            ch = client.get_channel(cid)
            must_open = not ch.exists or ch.status == "settled"
            if must_open and not policy.may_open(o.batched - o.vouchered):
                out["below_minimum"] += 1  # stays owed, in the ledger, until it is worth a channel
                return False
            if not must_open and ch.status != "open":
                log.warning("channel of %s is %s: no voucher issued", o.address, ch.status)
                out["skipped"] += 1
                return False
            with res.transaction() as s:  # its amounts start at what the channel has paid
                bound = deployments.bind_channel(s, deployment_id, o.address, payer=client.hub.address,
                                                 channel_id=cid, opening_paid=ch.paid)
            # the channel's cumulative amount: its own vouchers so far + what no voucher covers yet
            target = bound.vouchered + (o.batched - o.vouchered)
            add = 0
            if must_open:  # (re-)open; deposits are cumulative
                add = max(policy.to_add(target, ch.deposited), 1)
            elif ch.deposited < target:
                add = policy.to_add(target, ch.deposited)
            if add and gate is not None and capping.is_small(o.earned):
                why = gate.admit(o.address, add)
                if why is not None:  # waits in the queue; its credits stay owed; nothing sent
                    with res.transaction() as s:
                        small_payees.wait(s, o.address, needed=add, owed=o.batched - o.vouchered, cap=gate.cap,
                                          committed=gate.committed, reason=why)
                    out["waiting"] += 1
                    return False
            deposited = ch.deposited
            if must_open:
                step = "open_channel"
                client.open_channel(o.address, add)
                out["opened"] += 1
            elif add:
                step = "top_up"
                client.top_up(cid, add)
                out["topped_up"] += 1
            deposited += add
            out["deposited"] += add
            if deposited < target:  # never a voucher the channel cannot pay
                raise LedgerError(f"deposit {deposited} of {o.address}'s channel is below the voucher {target}")
            step = "sign_voucher"
            voucher = client.sign_voucher(cid, target)
            step = "store_voucher"
            with res.transaction("issue_vouchers") as s:
                reclaim.record_channel(s, deployment_id, cid, deposited=deposited, state="open")
                small_payees.leave(s, o.address)
                stored = ledger.store_voucher(
                    s, o.address, deployment_id=deployment_id, chain_id=voucher.chain_id,
                    contract=voucher.contract, payer=client.hub.address, channel_id=voucher.channel_id,
                    cumulative_amount=voucher.cumulative_amount, signature=voucher.signature,
                )
                if retrying.get(o.address) == "voucher":
                    quarantine.resolve(s, o.address)
            out["vouchers"] += int(stored)
            return stored
        except ContractRevert as exc:
            _quarantine(res, o.address, "voucher", _error_code(exc), f"{step} reverted: {exc}")
        except RETRY_ON:
            raise
        except PAYEE_ERRORS as exc:
            _quarantine(res, o.address, "voucher", _error_code(exc), f"{step} failed: {exc!r}")
        out["quarantined"] += 1
        return True

    # the queue first, in its order: a payee that waited is served before any newcomer
    for i in range(0, len(queued), 500):
        chunk = queued[i:i + 500]
        with Session(res.db()) as s:
            rows = {o.address: o for o in ledger.owed_vouchers(s, limit=len(chunk), addresses=chunk)}
        for address in chunk:
            if address in rows:
                pay(rows[address])
    while True:
        with Session(res.db()) as s:
            owed = ledger.owed_vouchers(s, limit=500)
        owed = [o for o in owed if o.batched > o.vouchered and o.address not in tried]
        progressed = False
        for o in owed:
            progressed |= pay(o)
        if not owed or not progressed:
            break
    with res.transaction() as s:  # entries this whole run did not confirm leave the queue (still owed)
        small_payees.prune(s, started)
    return out


def run_reclaim(res: Resources, *, idle_seconds: float | None = None) -> dict[str, int]:
    """Close idle channels and take their unused deposit back, on every deployment the configured
    node has. First, closings whose challenge period is over (chain time) are settled and what the
    settle refunded is recorded. Then each open channel with no voucher for ``channel_idle_seconds``
    (whose payee has nothing batched waiting for a voucher) is closed, after its latest voucher
    was pushed if it was not paid yet: the receiver loses nothing, and new credit after the close
    waits for the settle, then the voucher run re-opens the channel.

    Crash-safe: every step reads the chain first. A close mined but not recorded is found as a
    ``closing`` channel and recorded; a settle mined but not recorded is found by its
    ``ChannelSettled`` log; the ledger's writes are conditional on the state they move from.
    Returns {"closed", "settled", "reclaimed", "pushed", "waiting", "skipped"}."""
    settings = res.settings
    idle = settings.channel_idle_seconds if idle_seconds is None else idle_seconds
    out = {"closed": 0, "settled": 0, "reclaimed": 0, "pushed": 0, "waiting": 0, "skipped": 0}
    clients = res.live_clients()
    with Session(res.db()) as s:
        pending = reclaim.closings(s, list(clients))
    for k in pending:
        client = clients[k.deployment_id]
        ch = client.get_channel(k.channel_bytes)
        if ch.status == "closing":
            _, now = client.latest_block()
            if now < ch.closes_at:
                out["waiting"] += 1
                continue
            try:
                client.settle(k.channel_bytes)
            except ContractRevert as exc:  # settled meanwhile by anyone: its log says what it refunded
                log.warning("settle of %s's channel reverted: %s", k.address, exc)
        found = client.settle_log(k.channel_bytes, k.close_block)
        if found is None:
            log.warning("closing of %s's channel %s: no settle on chain yet (%s)", k.address, k.channel_id, ch.status)
            out["skipped"] += 1
            continue
        refund, tx_hash, _ = found
        now_ch = client.get_channel(k.channel_bytes)
        with res.transaction("reclaim") as s:
            if reclaim.finish_closure(s, k, reclaimed=refund, settle_tx=tx_hash, reopened=now_ch.status == "open"):
                out["settled"] += 1
                out["reclaimed"] += refund
            ledger.record_settled(s, k.deployment_id, k.channel_id, now_ch.paid, ref="chain")

    with Session(res.db()) as s:
        candidates = reclaim.idle_channels(s, deployment_ids=list(clients),
                                           idle_before=utcnow() - timedelta(seconds=idle))
    for c in candidates:
        client = clients[c.deployment_id]
        ch = client.get_channel(c.channel_bytes)
        if ch.status == "closing":  # a run closed it and died before recording the closing
            number, _ = client.latest_block()
            with res.transaction("reclaim") as s:
                reclaim.open_closure(s, c.deployment_id, c.address, c.channel_id, deposited=ch.deposited, paid=ch.paid,
                                     closes_at=ch.closes_at, close_block=number, close_tx=None)
            out["closed"] += 1
            continue
        if ch.status == "settled":  # closed by a run that died unrecorded, then settled by anyone
            found = client.settle_log(c.channel_bytes, client.deployment.deploy_block, last=True)
            with res.transaction("reclaim") as s:
                if found is not None:  # its deposit at close: what it holds now plus the refund
                    refund, tx_hash, block = found
                    reclaim.open_closure(s, c.deployment_id, c.address, c.channel_id, deposited=ch.deposited + refund,
                                         paid=ch.paid, closes_at=0, close_block=block, close_tx=None)
                    k = next((k for k in reclaim.closings(s, [c.deployment_id]) if k.channel_id == c.channel_id), None)
                    if k is not None and reclaim.finish_closure(s, k, reclaimed=refund, settle_tx=tx_hash):
                        out["settled"] += 1
                        out["reclaimed"] += refund
                reclaim.record_channel(s, c.deployment_id, c.channel_id, deposited=ch.deposited, state="settled")
                ledger.record_settled(s, c.deployment_id, c.channel_id, ch.paid, ref="chain")
            continue
        if ch.paid < c.vouchered:  # push its latest voucher first: the receiver loses nothing
            pushed = {"transactions": 0, "channels": 0, "amount": 0, "quarantined": 0}
            _push_isolating(res, client, c.deployment_id, [(c.address, c.vouchered, c.vouchered - max(ch.paid, c.settled))],
                            pushed, set())
            ch = client.get_channel(c.channel_bytes)
            if ch.paid < c.vouchered:
                out["skipped"] += 1
                continue
            out["pushed"] += 1
        elif ch.paid > c.settled:
            with res.transaction() as s:
                ledger.record_settled(s, c.deployment_id, c.channel_id, ch.paid, ref="chain")
        with Session(res.db()) as s:  # nothing vouchered meanwhile (the chain queue runs one task at a time)
            unchanged = reclaim.still_idle(s, c)
        if not unchanged:
            out["skipped"] += 1
            continue
        try:
            receipt = client.close_channel(c.channel_bytes)
        except ContractRevert as exc:
            log.warning("close of %s's channel reverted: %s", c.address, exc)
            out["skipped"] += 1
            continue
        ch = client.get_channel(c.channel_bytes)
        with res.transaction("reclaim") as s:
            reclaim.open_closure(s, c.deployment_id, c.address, c.channel_id, deposited=ch.deposited, paid=ch.paid,
                                 closes_at=ch.closes_at, close_block=int(receipt["blockNumber"]),
                                 close_tx=_tx_hash(receipt))
        out["closed"] += 1
    return out


def _tx_hash(receipt: Any) -> str:
    return "0x" + bytes(receipt["transactionHash"]).hex()


def reconcile_pending(res: Resources, clients: dict[int, ChainClient] | None = None) -> int:
    """Settle the books of ``pending`` settlements a crash left behind, from the chain's state of
    their deployment: each item's channel ``paid`` is recorded; the settlement is ``reconciled``
    if every item was paid, ``failed`` (dropped, nothing more to record) otherwise. A settlement
    whose deployment the configured node does not have stays pending (reconcile reports it).
    Returns how many were settled."""
    clients = res.live_clients() if clients is None else clients
    with Session(res.db()) as s:
        pending = ledger.pending_settlements(s)
    done = 0
    for sid, did, items in pending:
        client = clients.get(did) if did is not None else None
        if client is None:
            log.warning("pending settlement %s is on deployment #%s, not on the configured node: left pending", sid, did)
            continue
        paid_all = True
        with res.transaction() as s:
            for address, cumulative in items:
                cid = client.channel_id(address)
                paid = client.get_channel(cid).paid
                ledger.record_settled(s, did, cid, paid, ref=f"settlement:{sid}")
                paid_all &= paid >= cumulative
            ledger.finish_settlement(s, sid, status="reconciled" if paid_all else "failed",
                                     error=None if paid_all else "no receipt recorded; not (fully) paid on chain")
        done += 1
    return done


def sync_paid_from_chain(res: Resources, clients: dict[int, ChainClient] | None = None) -> int:
    """Record what channels paid on chain outside our pushes (contributors cashing vouchers with
    ``claim``, or a push whose receipt was lost), on every deployment the configured node has:
    settled := the channel's ``paid``. Returns how many channels' settled amounts rose."""
    clients = res.live_clients() if clients is None else clients
    with Session(res.db()) as s:  # quarantined payees too: reading a channel cannot fail for one
        unsettled = ledger.settle_candidates(s, threshold=1, limit=1_000_000, include_quarantined=True,
                                             deployment_ids=list(clients))
    rose = 0
    for o in unsettled:
        paid = clients[o.deployment_id].get_channel(o.channel_bytes).paid
        if paid > o.settled:
            with res.transaction() as s:
                rose += ledger.record_settled(s, o.deployment_id, o.channel_id, paid, ref="chain")
    return rose


def run_settle(res: Resources, *, threshold: int | None = None) -> dict[str, int]:
    """Push vouchered-but-unpaid amounts on chain, many channels per transaction, each on the
    deployment its vouchers were signed for (the configured one, or an older one still on this
    node); a payee whose entry makes the push revert is quarantined and the others are pushed
    without it. Returns {"transactions", "channels", "amount", "reconciled", "synced", "quarantined"}."""
    settings = res.settings
    clients = res.live_clients()
    out = {"transactions": 0, "channels": 0, "amount": 0, "reconciled": reconcile_pending(res, clients),
           "synced": sync_paid_from_chain(res, clients), "quarantined": 0}
    threshold = settings.settle_threshold if threshold is None else threshold
    with Session(res.db()) as s:
        due = ledger.settle_candidates(s, threshold=threshold, max_age_seconds=settings.settle_max_age_seconds,
                                       limit=10_000, deployment_ids=list(clients))
        retrying = {a for a, stage in quarantine.due_retries(s).items() if stage == "settle"}
    by_deployment: dict[int, list[ledger.ChannelOwed]] = {}
    for o in due:
        by_deployment.setdefault(o.deployment_id, []).append(o)
    for did, group in by_deployment.items():
        client = clients[did]
        for i in range(0, len(group), settings.push_batch_size):
            entries: list[tuple[str, int, int]] = []
            for o in group[i:i + settings.push_batch_size]:
                if _unpayable(res, client, o.address, "settle"):
                    out["quarantined"] += 1
                    continue
                paid = client.get_channel(o.channel_bytes).paid
                if paid >= o.vouchered:  # paid already (a claim, or a push whose receipt was lost)
                    with res.transaction() as s:
                        ledger.record_settled(s, did, o.channel_id, paid, ref="chain")
                        if o.address in retrying:
                            quarantine.resolve(s, o.address)
                    continue
                entries.append((o.address, o.vouchered, o.vouchered - max(paid, o.settled)))
            _push_isolating(res, client, did, entries, out, retrying)
    return out


def _push_isolating(res: Resources, client: ChainClient, deployment_id: int, entries: list[tuple[str, int, int]],
                    out: dict[str, int], retrying: set[str]) -> None:
    """Push ``entries`` in one transaction. When it reverts, the payee the revert names (its
    channel id or address) is quarantined and the others are pushed again; a revert that names
    nobody is retried one entry at a time, so only the failing ones are quarantined."""
    while entries:
        try:
            _push(res, client, deployment_id, entries, out, retrying)
            return
        except ContractRevert as exc:
            culprit = _culprit(client, exc, entries)
            if culprit is None and len(entries) > 1:
                for entry in entries:
                    _push_isolating(res, client, deployment_id, [entry], out, retrying)
                return
            culprit = culprit or entries[0]
            _quarantine(res, culprit[0], "settle", _error_code(exc), f"pushPayments reverted: {exc}")
            out["quarantined"] += 1
            entries = [e for e in entries if e is not culprit]


def _culprit(client: ChainClient, exc: ContractRevert, entries: list[tuple[str, int, int]]
             ) -> tuple[str, int, int] | None:
    """The entry a revert's arguments name (e.g. ``InsufficientDeposit(channelId, ...)``,
    ``ERC20InvalidReceiver(receiver)``), or None."""
    named = {v for v in exc.args_dict.values() if isinstance(v, bytes | str)}
    for entry in entries:
        if entry[0] in named or client.channel_id(entry[0]) in named:
            return entry
    return None


def _push(res: Resources, client: ChainClient, deployment_id: int, entries: list[tuple[str, int, int]],
          out: dict[str, int], retrying: set[str]) -> None:
    with res.transaction() as s:
        sid = ledger.begin_settlement(s, entries, deployment_id=deployment_id, chain_id=client.chain_id,
                                      contract=client.deployment.channels)
    try:
        receipt = client.push_payments([(a, c) for a, c, _ in entries])
    except ContractRevert as exc:
        with res.transaction() as s:
            ledger.finish_settlement(s, sid, status="failed", error=str(exc)[:2000])
        raise
    with res.transaction("settle") as s:
        ledger.finish_settlement(s, sid, status="confirmed", tx_hash=_tx_hash(receipt),
                                 block_number=int(receipt["blockNumber"]), gas_used=int(receipt["gasUsed"]))
        for address, cumulative, _ in entries:
            ledger.record_settled(s, deployment_id, client.channel_id(address), cumulative, ref=_tx_hash(receipt))
            if address in retrying:
                quarantine.resolve(s, address)
    out["transactions"] += 1
    out["channels"] += len(entries)
    out["amount"] += sum(n for _, _, n in entries)


def run_follow_deposits(res: Resources) -> dict[str, int]:
    """Record new TopUps deposits and credit those with enough confirmations (``payouts.topups``).
    The fault hook pauses before its commits: ``deposits_seen`` (logs recorded), ``deposits_credit``."""
    client = res.chain_client()

    def read() -> Session:
        return Session(res.db())

    out = topups.follow(client, res.transaction, read,
                          confirmations=res.settings.deposit_confirmations,
                          scan_blocks=res.settings.deposit_scan_blocks)
    return out.as_dict()


# ---------------------------------------------------------------------- celery


def task_options(settings: PayoutsSettings) -> dict[str, Any]:
    """Options every payout task shares: late acks, redelivery of a dead worker's task, retries
    with exponential backoff on chain/RPC/database errors."""
    return {
        "bind": True,
        "shared": False,  # this app only (other apps in the process have their own settings)
        "acks_late": True,
        "reject_on_worker_lost": True,
        "autoretry_for": RETRY_ON,
        "retry_backoff": 1,
        "retry_backoff_max": settings.task_retry_backoff_max,
        "retry_jitter": True,
        "max_retries": settings.task_max_retries,
    }


def register(app: Any, settings: PayoutsSettings) -> None:
    """Register the payout tasks on a Celery app (tasks share one lazy :class:`Resources`)."""
    res = Resources(settings)
    app.openchat_resources = res
    common = task_options(settings)

    @app.task(name="payouts.aggregate", **common)
    def aggregate(self: Any) -> dict[str, int]:
        out = run_aggregate(res, key=self.request.id)
        log.info("aggregate %s: %s", self.request.id, out)
        if out["credits"]:
            issue_vouchers.apply_async()
        return out

    @app.task(name="payouts.issue_vouchers", **common)
    def issue_vouchers(self: Any) -> dict[str, int]:
        out = run_issue_vouchers(res)
        log.info("issue_vouchers %s: %s", self.request.id, out)
        return out

    @app.task(name="payouts.reclaim", **common)
    def reclaim_channels(self: Any, idle_seconds: float | None = None) -> dict[str, int]:
        out = run_reclaim(res, idle_seconds=idle_seconds)
        log.info("reclaim %s: %s", self.request.id, out)
        return out

    @app.task(name="payouts.follow_deposits", **common)
    def follow_deposits(self: Any) -> dict[str, int]:
        out = run_follow_deposits(res)
        if out["new"] or out["credited"] or out["unassigned"] or out["dropped"]:
            log.info("follow_deposits %s: %s", self.request.id, out)
        return out

    @app.task(name="payouts.settle", **common)
    def settle(self: Any, threshold: int | None = None) -> dict[str, int]:
        out = run_settle(res, threshold=threshold)
        log.info("settle %s: %s", self.request.id, out)
        return out
