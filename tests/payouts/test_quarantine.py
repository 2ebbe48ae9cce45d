"""One payee that can't be paid stalls nobody: the voucher and settlement runs on the session's
anvil (task bodies in-process on SQLite and PostgreSQL, and the real Celery worker) quarantine it
with its reason and pay everyone else in the same run; amounts stay exact and owed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path

from eth_account import Account
from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session

from payouts import ledger
from payouts.metrics import ledger_figures
from payouts.models import Contributor, PayeeQuarantine, Settlement, utcnow
from payouts.payees import ZERO_ADDRESS
from payouts.reconcile import reconcile
from payouts.tasks import Resources, run_aggregate, run_issue_vouchers, run_settle
from tests.conftest import new_address
from tests.payouts.conftest import Stack
from tests.payouts.test_worker import all_settled, all_vouchered, check_money_rules

ROOT = Path(__file__).resolve().parents[2]


def resources(stack: Stack, engine: Engine) -> Resources:
    settings = stack.settings.model_copy(update={"channel_min_topup": 0, "payee_retry_seconds": 3_600,
                                                 "payee_max_retries": 5})
    return Resources(settings, engine=engine, chain=stack.client)


def credit(engine: Engine, amounts: dict[str, int]) -> None:
    """One answer per payee, crediting it exactly ``amount`` (no fee): what intake let through
    before it checked payees, or any credit the ledger already holds."""
    account = f"asker-{uuid.uuid4().hex[:8]}"
    with Session(engine) as s, s.begin():
        ledger.deposit(s, account, sum(amounts.values()))
        for i, (address, amount) in enumerate(amounts.items()):
            ledger.record_answer_payment(s, account, f"{account}-{i}", amount, {address: 1}, fee_bps=0)


def amounts_of(engine: Engine, address: str) -> tuple[int, int, int, int]:
    with Session(engine) as s:
        c = s.get(Contributor, address)
        assert c is not None
        return c.earned, c.batched, c.vouchered, c.settled


def quarantine_row(engine: Engine, address: str) -> PayeeQuarantine | None:
    with Session(engine) as s:
        return s.get(PayeeQuarantine, address)


def hub_nonce(stack: Stack) -> int:
    return stack.client.w3.eth.get_transaction_count(stack.client.hub.address)


def payouts_cli(engine: Engine, *args: str) -> subprocess.CompletedProcess[str]:
    url = engine.url.render_as_string(hide_password=False)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENCHAT_")}
    return subprocess.run([sys.executable, "-m", "payouts.cli", *args, "--database-url", url], env=env,
                          capture_output=True, text=True, timeout=120, cwd=ROOT, check=False)


def assert_books_balance(engine: Engine, stack: Stack, payees: list[str]) -> None:
    with Session(engine) as s:
        assert ledger.check_invariants(s) == []
        t = ledger.totals(s)
        assert t.debits == t.credits + t.fees and t.credits == t.unbatched + t.batched
    check_money_rules(engine, stack.client, payees)


def test_unpayable_payees_are_quarantined_without_a_transaction(engine: Engine, stack: Stack) -> None:
    res = resources(stack, engine)
    d = stack.client.deployment
    bad = {ZERO_ADDRESS: "zero_address", d.hub: "hub_address", d.token: "contract_address",
           d.channels: "contract_address", d.registry: "contract_address",
           "0x0000000000000000000000000000000000000001": "precompile_address",
           "0x0000000000000000000000000000000000000100": "precompile_address"}
    good = [new_address(), new_address()]
    credit(engine, {**{a: 1_000 + i for i, a in enumerate(bad)}, good[0]: 5_000, good[1]: 7_000})
    run_aggregate(res)
    nonce = hub_nonce(stack)
    out = run_issue_vouchers(res)
    assert (out["vouchers"], out["opened"], out["quarantined"]) == (2, 2, len(bad))
    assert hub_nonce(stack) == nonce + 2  # the two good channels' opens; nothing sent for the others
    settled = run_settle(res, threshold=0)
    assert (settled["transactions"], settled["channels"], settled["amount"], settled["quarantined"]) == (1, 2, 12_000, 0)
    assert all_settled_in(engine, good)
    for address, code in bad.items():
        row = quarantine_row(engine, address)
        assert row is not None and (row.status, row.stage, row.code, row.retry_at) == ("quarantined", "voucher", code, None)
        assert row.reason.startswith(f"{address} can never be paid: it is the ")
        earned, batched, vouchered, settled_ = amounts_of(engine, address)
        assert earned == batched > 0 and vouchered == settled_ == 0  # still owed, nothing lost
    assert_books_balance(engine, stack, good)
    with Session(engine) as s:
        assert reconcile(s, stack.client).ok
        t = ledger.totals(s)
        figures = ledger_figures(s)
    owed = sum(1_000 + i for i in range(len(bad)))
    assert (t.payees_quarantined, t.quarantined_owed) == (len(bad), owed)
    assert (figures.payees_quarantined, figures.quarantined_owed) == (len(bad), owed)
    assert {(a, st, c) for a, st, c in figures.quarantined} == {(a, "voucher", c) for a, c in bad.items()}

    status = payouts_cli(engine, "status", "--json")
    assert status.returncode == 0, status.stderr
    body = json.loads(status.stdout)
    assert body["payees_quarantined"] == len(bad) and body["quarantined_owed"] == owed
    listed = {q["address"]: q for q in body["quarantined"]}
    assert set(listed) == set(bad) and "the hub's own address" in listed[d.hub]["reason"]
    assert listed[ZERO_ADDRESS]["owed"] == 1_000 and listed[ZERO_ADDRESS]["retry_at"] is None
    text = payouts_cli(engine, "status")
    assert f"{d.token}  voucher  contract_address" in text.stdout and "operator release only" in text.stdout

    # Nothing retries them on its own; released, they are refused again at once, still sending nothing.
    assert run_issue_vouchers(res)["quarantined"] == 0
    released = payouts_cli(engine, "release", "--all", "--json")
    assert released.returncode == 0 and sorted(json.loads(released.stdout)["released"]) == sorted(bad)
    nonce = hub_nonce(stack)
    assert run_issue_vouchers(res)["quarantined"] == len(bad) and hub_nonce(stack) == nonce
    assert quarantine_row(engine, d.hub).failures == 2
    assert_books_balance(engine, stack, good)


def all_settled_in(engine: Engine, people: list[str]) -> bool:
    with Session(engine) as s:
        rows = s.scalars(select(Contributor).where(Contributor.address.in_(people))).all()
    return len(rows) == len(people) and all(c.settled == c.vouchered == c.earned > 0 for c in rows)


def test_a_reverting_open_quarantines_its_payee_and_the_rest_are_paid(engine: Engine, stack: Stack) -> None:
    """A payee owed more than the hub holds: its open_channel reverts on chain
    (ERC20InsufficientBalance); the others are vouchered and settled in the same runs, the
    payee waits out its backoff, and once the hub is funded and the operator releases it, it
    is paid to the unit."""
    res = resources(stack, engine)
    client = stack.client
    big = Account.create().address
    good = [new_address() for _ in range(3)]
    hub_balance = client.token_balance(client.hub.address)
    credit(engine, {good[0]: 3_000, big: hub_balance + 1, good[1]: 4_000, good[2]: 5_000})
    run_aggregate(res)
    out = run_issue_vouchers(res)
    assert (out["vouchers"], out["quarantined"]) == (3, 1)
    row = quarantine_row(engine, big)
    assert row is not None and (row.stage, row.code, row.failures) == ("voucher", "revert:ERC20InsufficientBalance", 1)
    assert row.reason.startswith("open_channel reverted: ERC20InsufficientBalance(") and str(hub_balance + 1) in row.reason
    assert row.retry_at is not None  # a transient failure: retried after the backoff
    assert run_settle(res, threshold=0)["channels"] == 3
    assert all_settled_in(engine, good)
    assert amounts_of(engine, big) == (hub_balance + 1, hub_balance + 1, 0, 0)
    assert_books_balance(engine, stack, good)

    # Not retried before its time...
    assert run_issue_vouchers(res) == {"vouchers": 0, "opened": 0, "topped_up": 0, "deposited": 0, "below_minimum": 0, "waiting": 0,
                                       "skipped": 0, "quarantined": 0}
    # ...retried once it is due (the clock moved on), failing again: the wait doubles.
    with Session(engine) as s, s.begin():
        s.execute(update(PayeeQuarantine).where(PayeeQuarantine.address == big)
                  .values(retry_at=utcnow() - timedelta(seconds=1)))
    assert run_issue_vouchers(res)["quarantined"] == 1
    again = quarantine_row(engine, big)
    assert again.failures == 2 and again.retry_at - again.last_failed_at == timedelta(seconds=7_200)

    # The operator funds the hub; at its next retry the payee is paid exactly and released.
    client.mint(client.hub.address, hub_balance + 1)
    with Session(engine) as s, s.begin():
        s.execute(update(PayeeQuarantine).where(PayeeQuarantine.address == big)
                  .values(retry_at=utcnow() - timedelta(seconds=1)))
    assert run_issue_vouchers(res)["vouchers"] == 1
    row = quarantine_row(engine, big)
    assert (row.status, row.released_by, row.retry_at, row.failures) == ("released", "retry", None, 2)
    assert run_settle(res, threshold=0)["channels"] == 1
    assert all_settled_in(engine, [*good, big])
    assert client.token_balance(big) == hub_balance + 1
    assert_books_balance(engine, stack, [*good, big])
    with Session(engine) as s:
        assert reconcile(s, client).ok
        assert ledger.totals(s).payees_quarantined == 0


def test_a_reverting_push_quarantines_its_payee_and_the_rest_settle(engine: Engine, stack: Stack) -> None:
    """A channel settled on chain while its voucher was unpaid (the hub closed it): the batched
    push reverts (InsufficientDeposit naming that channel). The payee is quarantined and the
    others are pushed again without it, in the same run; once released with new credit, its
    channel is re-opened and it is paid everything it is owed."""
    res = resources(stack, engine)
    client = stack.client
    closed = Account.create().address
    good = [new_address() for _ in range(3)]
    credit(engine, {good[0]: 2_000, closed: 3_000, good[1]: 4_000, good[2]: 6_000})
    run_aggregate(res)
    assert run_issue_vouchers(res)["vouchers"] == 4
    cid = client.channel_id(closed)
    client.close_channel(cid)
    stack.chain.increase_time(client.challenge_period() + 1)
    client.settle(cid)
    assert client.get_channel(cid).status == "settled"

    out = run_settle(res, threshold=0)
    assert (out["transactions"], out["channels"], out["amount"], out["quarantined"]) == (1, 3, 12_000, 1)
    assert all_settled_in(engine, good)
    row = quarantine_row(engine, closed)
    assert (row.stage, row.code) == ("settle", "revert:InsufficientDeposit")
    assert row.reason.startswith("pushPayments reverted: InsufficientDeposit(channelId=0x" + cid.hex())
    with Session(engine) as s:
        failed = s.scalars(select(Settlement).where(Settlement.status == "failed")).all()
        assert len(failed) == 1 and "InsufficientDeposit" in failed[0].error
        assert s.scalar(select(func.count()).select_from(Settlement).where(Settlement.status == "pending")) == 0
        assert ledger.check_invariants(s) == []
        problems = reconcile(s, client).problems
    # the chain says what the ledger says: its voucher is not covered, and it is still owed; and
    # the close the hub sent behind the ledger's back is named, with what its settle refunded
    assert problems[0] == f"{closed}: deposit 0 < latest voucher 3000" and len(problems) == 2
    assert problems[1].startswith(f"{closed}: channel 0x{cid.hex()} was closed on chain in 0x")
    assert problems[1].endswith("refunding 3000 to the hub) but the ledger has no closing and holds it open")
    assert amounts_of(engine, closed) == (3_000, 3_000, 3_000, 0)
    assert run_settle(res, threshold=0)["transactions"] == 0  # held out: nothing is tried

    # More credit, held out of vouchers while quarantined; released, its channel re-opens for the
    # whole amount owed and one push pays both credits.
    credit(engine, {closed: 500})
    run_aggregate(res)
    assert run_issue_vouchers(res)["vouchers"] == 0
    missing = payouts_cli(engine, "release", good[0])
    assert missing.returncode == 1 and f"not quarantined: {good[0]}" in missing.stdout
    released = payouts_cli(engine, "release", closed.lower(), "--note", "channel closed by mistake")
    assert released.returncode == 0 and f"released {closed}" in released.stdout, released.stderr
    row = quarantine_row(engine, closed)
    assert (row.status, row.released_by, row.retry_at) == ("released", "channel closed by mistake", None)
    assert run_issue_vouchers(res)["opened"] == 1
    assert run_settle(res, threshold=0)["channels"] == 1
    assert all_settled_in(engine, [*good, closed]) and client.token_balance(closed) == 3_500
    assert_books_balance(engine, stack, [*good, closed])
    with Session(engine) as s:
        assert reconcile(s, client).ok


def test_the_celery_worker_pays_everyone_else_and_does_not_retry(stack: Stack) -> None:
    """The real worker: a credit to the hub's own address and one to the zero address (from
    before intake checked) used to make every issue_vouchers run revert and retry forever."""
    people = [new_address() for _ in range(4)]
    bad = [stack.client.hub.address, ZERO_ADDRESS]
    start = len(stack.log_text())  # this test's part of the worker's log
    credit(stack.engine, {bad[0]: 1_111, people[0]: 1_000, people[1]: 2_000, bad[1]: 2_222,
                          people[2]: 3_000, people[3]: 4_000})
    stack.send("payouts.aggregate")
    stack.wait_for(lambda: all_vouchered(stack, people), what="vouchers")
    stack.send("payouts.settle", threshold=0)
    stack.wait_for(lambda: all_settled(stack, people), what="settlement")
    stack.wait_for(lambda: "payouts.settle" in stack.log_text()[start:] and " succeeded " in stack.log_text()[start:],
                   what="log")
    log = stack.log_text()[start:]
    assert "Retry in" not in log and "raised unexpected" not in log
    assert f"payee {bad[0]} quarantined (voucher, failure 1, retry by the operator only)" in log
    for address in bad:
        row = quarantine_row(stack.engine, address)
        assert row is not None and row.status == "quarantined" and row.failures == 1
    assert amounts_of(stack.engine, bad[1])[:3] == (2_222, 2_222, 0)
    check_money_rules(stack.engine, stack.client, people)
