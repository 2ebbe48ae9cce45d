"""The ledger on SQLite and PostgreSQL: debits, credits, fees, batches, vouchers, journal."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from payouts import deployments, ledger
from payouts.chain import DeploymentKey
from payouts.models import (
    Account,
    AnswerPayment,
    BatchCredit,
    Contributor,
    Credit,
    JournalEntry,
    PayoutBatchItem,
    Settlement,
    utcnow,
)
from tests.conftest import new_address

FEE_BPS = 1_000  # 10 %


def answer_id() -> str:
    return "ans-" + uuid.uuid4().hex[:20]


def fund(engine: Engine, account: str, amount: int) -> None:
    with Session(engine) as s, s.begin():
        ledger.deposit(s, account, amount)


def test_answer_payment_debits_credits_and_fees_exactly(engine: Engine) -> None:
    a, b, c = new_address(), new_address(), new_address()
    fund(engine, "alice", 1_000_000)
    with Session(engine) as s, s.begin():
        r = ledger.record_answer_payment(
            s, "alice", "ans-1", 10_001, {a: 500_000, b.lower(): 300_000, c: 200_000}, fee_bps=FEE_BPS)
    assert r.charge.total == 10_001 and r.charge.fee == 1_000 and r.charge.pool == 9_001
    assert sum(r.credits.values()) == 9_001 and set(r.credits) == {a, b, c}  # EIP-55 keys
    assert r.balance_after == 1_000_000 - 10_001
    with Session(engine) as s:
        assert ledger.balance(s, "alice") == 989_999
        assert s.scalar(select(func.sum(Credit.amount)).where(Credit.answer_id == "ans-1")) == 9_001
        assert ledger.check_invariants(s) == []
    # replaying the same answer changes nothing
    with Session(engine) as s, s.begin():
        again = ledger.record_answer_payment(s, "alice", "ans-1", 10_001, {a: 1}, fee_bps=FEE_BPS)
        assert again.already_recorded and again.credits == r.credits
        assert ledger.balance(s, "alice") == 989_999


def test_no_verified_citation_pays_only_the_fee_and_credits_nobody(engine: Engine) -> None:
    fund(engine, "bob", 5_000)
    with Session(engine) as s, s.begin():
        r = ledger.record_answer_payment(s, "bob", "ans-none", 10_000, {new_address(): 0}, fee_bps=FEE_BPS)
    assert r.credits == {} and r.charge.total == 1_000
    with Session(engine) as s:
        assert ledger.balance(s, "bob") == 4_000
        assert s.scalar(select(func.count()).select_from(Credit)) == 0
        assert ledger.check_invariants(s) == []


def test_insufficient_balance_writes_nothing(engine: Engine) -> None:
    fund(engine, "carol", 999)
    with Session(engine) as s:
        with pytest.raises(ledger.InsufficientBalance) as err:
            ledger.ensure_can_pay(s, "carol", 1_000)
        assert err.value.balance == 999 and err.value.needed == 1_000
        s.rollback()
        with pytest.raises(ledger.InsufficientBalance), s.begin():
            ledger.record_answer_payment(s, "carol", "ans-x", 1_000, {new_address(): 1}, fee_bps=FEE_BPS)
        with pytest.raises(ledger.InsufficientBalance), s.begin():
            ledger.record_answer_payment(s, "nobody", "ans-y", 1, {new_address(): 1}, fee_bps=FEE_BPS)
    with Session(engine) as s:
        assert ledger.balance(s, "carol") == 999
        assert s.scalar(select(func.count()).select_from(AnswerPayment)) == 0
        assert s.scalar(select(func.count()).select_from(Credit)) == 0


def at_once(engine: Engine, n: int, write: Callable[[Session, int], object], done: str) -> list[str]:
    """Run ``write(session, i)`` for i in range(n) in n threads at once, each in its own
    transaction; ``done`` for each that committed, "short" for each refused for its balance."""
    outcomes: list[str] = []

    def run(i: int) -> None:
        try:
            with Session(engine) as s, s.begin():
                write(s, i)
            outcomes.append(done)
        except ledger.InsufficientBalance:
            outcomes.append("short")

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sorted(outcomes)


def test_concurrent_answers_cannot_overspend(engine: Engine) -> None:
    fund(engine, "dave", 10_000)
    who = new_address()
    outcomes = at_once(engine, 6, lambda s, i: ledger.record_answer_payment(s, "dave", f"ans-c{i}", 3_000, {who: 1},
                                                                          fee_bps=FEE_BPS), "ok")
    assert outcomes == ["ok"] * 3 + ["short"] * 3
    with Session(engine) as s:
        assert ledger.balance(s, "dave") == 1_000
        assert ledger.check_invariants(s) == []


def test_a_hold_is_settled_by_the_record_or_released_once(engine: Engine) -> None:
    fund(engine, "erin", 25_000)
    who = new_address()
    with Session(engine) as s, s.begin():
        assert ledger.hold_answer(s, "erin", "ans-h1", 10_000) == 15_000
        assert ledger.hold_answer(s, "erin", "ans-h1", 10_000) == 15_000  # the same answer holds once
        ledger.hold_answer(s, "erin", "ans-h2", 10_000)
    with Session(engine) as s, s.begin(), pytest.raises(ledger.InsufficientBalance):
        ledger.hold_answer(s, "erin", "ans-h3", 10_000)  # 5,000 left: refused, nothing written
    with Session(engine) as s:
        assert ledger.open_holds(s) == (2, 20_000) and ledger.check_invariants(s) == []
    # A cited answer's record gives its hold back and takes the price; a refusal only the fee.
    with Session(engine) as s, s.begin():
        ledger.record_answer_payment(s, "erin", "ans-h1", 10_000, {who: 1}, fee_bps=FEE_BPS)
        ledger.record_answer_payment(s, "erin", "ans-h2", 10_000, {}, fee_bps=FEE_BPS)
    with Session(engine) as s:
        assert ledger.balance(s, "erin") == 25_000 - 10_000 - 1_000
        assert ledger.open_holds(s) == (0, 0) and ledger.check_invariants(s) == []
    # A failed answer's hold goes back whole, once, however often it is released.
    with Session(engine) as s, s.begin():
        ledger.hold_answer(s, "erin", "ans-h4", 10_000)
    with Session(engine) as s, s.begin():
        assert ledger.release_hold(s, "ans-h4") and not ledger.release_hold(s, "ans-h4")
        assert not ledger.release_hold(s, "ans-h1")  # settled holds stay settled
    with Session(engine) as s:
        assert ledger.balance(s, "erin") == 14_000 and ledger.check_invariants(s) == []


def journal_of(engine: Engine, answer: str) -> list[tuple[str, str, int]]:
    with Session(engine) as s:
        return [tuple(r) for r in s.execute(select(JournalEntry.holder, JournalEntry.kind, JournalEntry.delta)
                                            .where(JournalEntry.answer_id == answer).order_by(JournalEntry.id))]


def test_a_metered_answer_holds_its_worst_case_and_pays_what_it_used(engine: Engine) -> None:
    account, who, ans = f"meter-{uuid.uuid4().hex[:6]}", new_address(), answer_id()
    fund(engine, account, 50_000)
    with Session(engine) as s, s.begin():
        assert ledger.hold_answer(s, account, ans, 12_000) == 38_000  # before retrieval: base + max_tokens
        assert ledger.hold_answer(s, account, ans, 20_000) == 30_000  # the prompt is built: raised by 8,000
        assert ledger.hold_answer(s, account, ans, 15_000) == 30_000  # never lowered
        assert ledger.open_holds(s) == (1, 20_000) and ledger.check_invariants(s) == []
    with Session(engine) as s, s.begin():
        r = ledger.record_answer_payment(s, account, ans, 10_000, {who: 1}, fee_bps=FEE_BPS, usage=7_123)
    # price 10,000 (fee 1,000, pool 9,000) + 7,123 of tokens, kept by the platform; 2,877 of the hold back.
    assert (r.charge.total, r.charge.fee, r.charge.pool, r.usage, r.held) == (17_123, 8_123, 9_000, 7_123, 20_000)
    assert r.credits == {who: 9_000} and r.balance_after == 50_000 - 17_123
    assert journal_of(engine, ans) == [
        (f"account:{account}", "hold", -12_000), (f"account:{account}", "hold", -8_000),
        (f"account:{account}", "release", 20_000), (f"account:{account}", "answer_debit", -17_123),
        ("platform", "fee", 1_000), ("platform", "model_usage", 7_123), (f"contributor:{who}", "earned", 9_000)]
    with Session(engine) as s, s.begin():
        again = ledger.record_answer_payment(s, account, ans, 10_000, {who: 1}, fee_bps=FEE_BPS, usage=9_999)
        assert again.already_recorded and (again.charge, again.usage, again.held) == (r.charge, 7_123, 20_000)
    with Session(engine) as s:
        assert ledger.balance(s, account) == 32_877 and ledger.open_holds(s) == (0, 0)
        assert ledger.check_invariants(s) == []


def test_a_metered_answer_never_pays_more_than_it_held(engine: Engine) -> None:
    account, who = f"cap-{uuid.uuid4().hex[:6]}", new_address()
    cited, uncited = answer_id(), answer_id()
    fund(engine, account, 40_000)
    with Session(engine) as s, s.begin():
        ledger.hold_answer(s, account, cited, 12_000)
        ledger.hold_answer(s, account, uncited, 12_000)
    with Session(engine) as s, s.begin():
        # The provider counted more than was held: the usage past the hold is waived.
        r = ledger.record_answer_payment(s, account, cited, 10_000, {who: 1}, fee_bps=FEE_BPS, usage=5_000)
        # Without a verified citation: the fee on the price and the usage (all of it fits the hold).
        u = ledger.record_answer_payment(s, account, uncited, 10_000, {}, fee_bps=FEE_BPS, usage=5_000)
    assert (r.charge.total, r.usage, r.charge.pool) == (12_000, 2_000, 9_000)
    assert (u.charge.total, u.usage, u.charge.pool, u.charge.fee) == (6_000, 5_000, 0, 6_000) and u.credits == {}
    with Session(engine) as s:
        assert ledger.balance(s, account) == 40_000 - 12_000 - 6_000 and ledger.check_invariants(s) == []


def test_a_metered_answer_splits_its_pool_exactly_as_a_flat_one(engine: Engine) -> None:
    account, flat, metered = f"split-{uuid.uuid4().hex[:6]}", answer_id(), answer_id()
    a, b, c = new_address(), new_address(), new_address()
    weights = {a: 500_001, b: 333_333, c: 166_666}
    fund(engine, account, 100_000)
    with Session(engine) as s, s.begin():
        ledger.hold_answer(s, account, metered, 30_000)
        f = ledger.record_answer_payment(s, account, flat, 10_007, weights, fee_bps=FEE_BPS)
        m = ledger.record_answer_payment(s, account, metered, 10_007, weights, fee_bps=FEE_BPS, usage=12_345)
    # The tokens go to the platform: the pool (10,007 - 1,000) and its largest-remainder split are the same.
    assert m.credits == f.credits and sum(m.credits.values()) == m.charge.pool == f.charge.pool == 9_007
    assert (m.charge.total, m.charge.fee) == (f.charge.total + 12_345, f.charge.fee + 12_345)
    with Session(engine) as s:
        assert ledger.balance(s, account) == 100_000 - 10_007 - 22_352 and ledger.check_invariants(s) == []


def test_a_raise_short_of_funds_writes_nothing(engine: Engine) -> None:
    account, ans = f"short-{uuid.uuid4().hex[:6]}", answer_id()
    fund(engine, account, 15_000)
    with Session(engine) as s, s.begin():
        ledger.hold_answer(s, account, ans, 12_000)
    with Session(engine) as s, s.begin(), pytest.raises(ledger.InsufficientBalance):
        ledger.hold_answer(s, account, ans, 16_000)  # 4,000 more; 3,000 left
    with Session(engine) as s:
        assert ledger.balance(s, account) == 3_000 and ledger.open_holds(s) == (1, 12_000)
        assert ledger.check_invariants(s) == []
    with Session(engine) as s, s.begin():
        assert ledger.release_hold(s, ans)
        assert ledger.hold_answer(s, account, ans, 20_000) == 15_000  # a closed hold is not raised again
    with Session(engine) as s:
        assert ledger.balance(s, account) == 15_000 and ledger.check_invariants(s) == []


def test_concurrent_raises_cannot_overspend(engine: Engine) -> None:
    account = f"race-{uuid.uuid4().hex[:6]}"
    fund(engine, account, 10_000)
    with Session(engine) as s, s.begin():
        for i in range(3):
            ledger.hold_answer(s, account, f"ans-r{account}{i}", 2_000)
    # 4,000 left: of three raises by 2,000 each at once, two fit.
    outcomes = at_once(engine, 3, lambda s, i: ledger.hold_answer(s, account, f"ans-r{account}{i}", 4_000), "raised")
    assert outcomes == ["raised", "raised", "short"]
    with Session(engine) as s:
        assert ledger.balance(s, account) == 0 and ledger.open_holds(s)[1] >= 10_000
        assert ledger.check_invariants(s) == []


def test_stale_holds_are_released_and_fresh_ones_kept(engine: Engine) -> None:
    from datetime import UTC, datetime, timedelta

    fund(engine, "fay", 20_000)
    with Session(engine) as s, s.begin():
        ledger.hold_answer(s, "fay", "ans-s1", 10_000)
    cutoff = datetime.now(UTC) + timedelta(seconds=1)
    with Session(engine) as s, s.begin():
        ledger.hold_answer(s, "fay", "ans-s2", 5_000)
        s.execute(text("UPDATE answer_holds SET created_at = :t WHERE answer_id = 'ans-s2'"),
                  {"t": cutoff + timedelta(minutes=1)})
    with Session(engine) as s, s.begin():
        assert ledger.release_stale_holds(s, cutoff) == 1  # ans-s1: its process died mid-answer
    with Session(engine) as s:
        assert ledger.balance(s, "fay") == 15_000 and ledger.open_holds(s) == (1, 5_000)
        assert ledger.check_invariants(s) == []


def test_concurrent_holds_cannot_overspend(engine: Engine) -> None:
    fund(engine, "gus", 10_000)
    outcomes = at_once(engine, 6, lambda s, i: ledger.hold_answer(s, "gus", f"ans-g{i}", 3_000), "held")
    assert outcomes == ["held"] * 3 + ["short"] * 3
    with Session(engine) as s:
        assert ledger.balance(s, "gus") == 1_000 and ledger.check_invariants(s) == []


def test_api_keys_are_hashed(engine: Engine) -> None:
    with Session(engine) as s, s.begin():
        key = ledger.create_api_key(s, "erin", name="laptop")
    with Session(engine) as s:
        assert ledger.lookup_api_key(s, key) == "erin"
        assert ledger.lookup_api_key(s, key + "x") is None
        assert s.scalar(text("SELECT count(*) FROM api_keys WHERE key_hash = :k"), {"k": key}) == 0
    with Session(engine) as s, s.begin():
        assert ledger.revoke_api_key(s, key)
    with Session(engine) as s:
        assert ledger.lookup_api_key(s, key) is None


def test_journal_is_append_only(engine: Engine) -> None:
    fund(engine, "frank", 10)
    with Session(engine) as s:
        with pytest.raises(DBAPIError), s.begin():
            s.execute(text("UPDATE journal_entries SET delta = 1000"))
        with pytest.raises(DBAPIError), s.begin():
            s.execute(text("DELETE FROM journal_entries"))
        assert s.scalar(select(func.sum(JournalEntry.delta))) == 10


def seed_answers(engine: Engine, n_answers: int, contributors: list[str], account: str = "asker") -> None:
    fund(engine, account, 10**12)
    with Session(engine) as s, s.begin():
        for i in range(n_answers):
            w = {contributors[(i + j) % len(contributors)]: 1 + j for j in range(3)}
            ledger.record_answer_payment(s, account, f"seed-{account}-{i}", 10_000 + i, w, fee_bps=FEE_BPS)


def test_aggregate_batches_each_credit_once_and_raises_cumulative(engine: Engine) -> None:
    people = [new_address() for _ in range(5)]
    seed_answers(engine, 20, people)
    with Session(engine) as s, s.begin():
        first = ledger.aggregate(s, idempotency_key="task-1")
    assert first is not None and first.credit_count == 60
    with Session(engine) as s, s.begin():
        assert ledger.aggregate(s) is None  # nothing left
        replay = ledger.aggregate(s, idempotency_key="task-1")  # redelivered task
    assert replay is not None and replay.replayed and replay.batch_id == first.batch_id
    seed_answers(engine, 5, people, account="asker2")
    with Session(engine) as s, s.begin():
        second = ledger.aggregate(s)
    assert second is not None and second.credit_count == 15
    with Session(engine) as s:
        for p in people:
            c = s.get(Contributor, p)
            assert c is not None and c.batched == c.earned == second.cumulative.get(p, c.batched)
        assert s.scalar(select(func.count()).select_from(Credit).outerjoin(BatchCredit, BatchCredit.credit_id == Credit.id).where(BatchCredit.credit_id.is_(None))) == 0
        assert ledger.check_invariants(s) == []


def test_concurrent_aggregates_never_batch_a_credit_twice(engine: Engine) -> None:
    people = [new_address() for _ in range(40)]
    seed_answers(engine, 300, people)
    results: list[object] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def run() -> None:
        try:
            barrier.wait()
            with Session(engine) as s, s.begin():
                results.append(ledger.aggregate(s, max_credits=250))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    with Session(engine) as s:
        counted = sum(r.credit_count for r in results if r is not None)
        assert counted == s.scalar(select(func.count()).select_from(BatchCredit))
        assert s.scalar(select(func.sum(PayoutBatchItem.credit_count))) == counted
        assert ledger.check_invariants(s) == []
    with Session(engine) as s, s.begin():
        while ledger.aggregate(s, max_credits=250):
            pass
    with Session(engine) as s:
        assert s.scalar(select(func.count()).select_from(Credit).outerjoin(BatchCredit, BatchCredit.credit_id == Credit.id).where(BatchCredit.credit_id.is_(None))) == 0
        assert ledger.check_invariants(s) == []


def test_vouchers_and_settlements_only_go_up(engine: Engine) -> None:
    p = new_address()
    fund(engine, "gina", 10**9)
    with Session(engine) as s, s.begin():
        ledger.record_answer_payment(s, "gina", "g1", 1_000_000, {p: 1}, fee_bps=0)
        ledger.aggregate(s)
    contract = new_address()
    key = DeploymentKey(31337, contract, 1, "0x" + uuid.uuid4().hex * 2)
    with Session(engine) as s, s.begin():
        did = deployments.register(s, key)
        deployments.bind_channel(s, did, p, payer=new_address(), channel_id=b"\x01" * 32, opening_paid=0)
    kw = {"deployment_id": did, "chain_id": 31337, "contract": contract, "payer": new_address(),
          "channel_id": b"\x01" * 32}
    with Session(engine) as s, s.begin():
        assert [o.address for o in ledger.owed_vouchers(s)] == [p]
        assert ledger.store_voucher(s, p, cumulative_amount=600_000, signature=b"\x02" * 65, **kw)
        assert not ledger.store_voucher(s, p, cumulative_amount=600_000, signature=b"\x02" * 65, **kw)
        assert not ledger.store_voucher(s, p, cumulative_amount=500_000, signature=b"\x03" * 65, **kw)
        with pytest.raises(ledger.LedgerError):
            ledger.store_voucher(s, p, cumulative_amount=2_000_000, signature=b"\x04" * 65, **kw)
        assert ledger.store_voucher(s, p, cumulative_amount=1_000_000, signature=b"\x05" * 65, **kw)
    with Session(engine) as s, s.begin():
        assert ledger.latest_voucher(s, p).cumulative_amount == 1_000_000
        assert [o.address for o in ledger.settle_candidates(s, threshold=1_000_000)] == [p]
        assert ledger.settle_candidates(s, threshold=1_000_001) == []
        sid = ledger.begin_settlement(s, [(p, 1_000_000, 1_000_000)], deployment_id=did, chain_id=31337,
                                      contract=contract)
        ledger.finish_settlement(s, sid, status="confirmed", tx_hash="0x" + "ab" * 32, block_number=7)
        assert ledger.record_settled(s, did, b"\x01" * 32, 1_000_000)
        assert not ledger.record_settled(s, did, b"\x01" * 32, 400_000)
        assert not ledger.record_settled(s, did, b"\x01" * 32, 5_000_000)  # capped at vouchered
    with Session(engine) as s:
        c = s.get(Contributor, p)
        assert (c.earned, c.batched, c.vouchered, c.settled) == (1_000_000,) * 4
        assert ledger.check_invariants(s) == []
        t = ledger.totals(s)
        assert t.debits == t.credits + t.fees and t.settled == 1_000_000
        settlement = s.get(Settlement, sid)
        assert (settlement.deployment_id, settlement.chain_id, settlement.contract) == (did, 31337, contract)


def test_floats_and_bad_addresses_are_refused(engine: Engine) -> None:
    fund(engine, "hal", 10**6)
    with Session(engine) as s:
        with pytest.raises(TypeError), s.begin():
            ledger.record_answer_payment(s, "hal", "h1", 10.5, {new_address(): 1}, fee_bps=FEE_BPS)  # type: ignore[arg-type]
        with pytest.raises(ValueError), s.begin():
            ledger.record_answer_payment(s, "hal", "h2", 10, {"0xnot-an-address": 1}, fee_bps=FEE_BPS)
        with pytest.raises(TypeError), s.begin():
            ledger.deposit(s, "hal", 1.0)  # type: ignore[arg-type]


def test_payment_sees_pending_orm_changes_of_its_transaction(engine: Engine) -> None:
    """The payment runs Core statements on the session's connection (they are the hot path);
    pending ORM changes of the same transaction are flushed first, as Session.execute would."""
    who = new_address()
    account = "orm-" + uuid.uuid4().hex[:8]
    with Session(engine) as s, s.begin():
        s.add(Account(id=account, balance=20_000, created_at=utcnow()))  # not flushed
        r = ledger.record_answer_payment(s, account, answer_id(), 10_000, {who: 1}, fee_bps=FEE_BPS)
        assert r.balance_after == 10_000
        assert ledger.balance(s, account) == 10_000
