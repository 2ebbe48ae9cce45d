"""Batch membership (migration 0006): credits are insert-only, a credit is queued until one batch
takes it, and the database itself refuses a second batch; existing ledgers migrate both ways."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from assistant.db import alembic_config
from payouts import ledger
from payouts.models import BatchCredit, Credit, PayoutBatchItem, UnbatchedCredit
from tests.conftest import new_address
from tests.payouts.test_ledger import fund, seed_answers


def test_credits_queue_until_one_batch_takes_them(engine: Engine) -> None:
    people = [new_address() for _ in range(4)]
    seed_answers(engine, 10, people)
    with Session(engine) as s:
        assert s.scalar(select(func.count()).select_from(UnbatchedCredit)) == 30
        assert s.scalar(select(func.count()).select_from(BatchCredit)) == 0
    with Session(engine) as s, s.begin():
        first = ledger.aggregate(s, max_credits=7)  # the oldest 7 credits
    assert first is not None and first.credit_count == 7
    with Session(engine) as s:
        oldest = list(s.scalars(select(Credit.id).order_by(Credit.id).limit(7)))
        assert list(s.scalars(select(BatchCredit.credit_id).where(BatchCredit.batch_id == first.batch_id)
                              .order_by(BatchCredit.credit_id))) == oldest
        assert s.scalar(select(func.count()).select_from(UnbatchedCredit)) == 23
        assert ledger.totals(s).unbatched == ledger.totals(s).credits - first.total
        assert ledger.check_invariants(s) == []


def test_database_refuses_a_credit_in_two_batches_and_rewrites(engine: Engine) -> None:
    seed_answers(engine, 2, [new_address() for _ in range(3)])
    with Session(engine) as s, s.begin():
        batch = ledger.aggregate(s)
    assert batch is not None
    with Session(engine) as s:
        credit_id = s.scalar(select(BatchCredit.credit_id).limit(1))
    refused = [
        "INSERT INTO batch_credits (credit_id, batch_id) VALUES (:c, :b)",  # a second batch
        "UPDATE batch_credits SET batch_id = :b WHERE credit_id = :c",      # moved to another batch
        "DELETE FROM batch_credits WHERE credit_id = :c AND batch_id = :b",  # unbatched again
        "UPDATE credits SET amount = amount + 1 WHERE id = :c AND :b > 0",   # credits are insert-only
        "DELETE FROM credits WHERE id = :c AND :b > 0",
    ]
    for sql in refused:
        with pytest.raises(DBAPIError), Session(engine) as s, s.begin():
            s.execute(text(sql), {"c": credit_id, "b": batch.batch_id})
    with Session(engine) as s:
        assert ledger.check_invariants(s) == []


def test_a_lost_credit_is_reported(engine: Engine) -> None:
    fund(engine, "lost", 10**9)
    with Session(engine) as s, s.begin():
        ledger.record_answer_payment(s, "lost", "lost-1", 10_000, {new_address(): 1}, fee_bps=1_000)
        s.execute(text("DELETE FROM unbatched_credits"))  # what a bug in aggregate could do
    with Session(engine) as s:
        assert any("lost" in p for p in ledger.check_invariants(s))


# ------------------------------------------------------------------ migration


def _alembic(engine: Engine, action: str, revision: str) -> None:
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        getattr(command, action)(config, revision)


def _credit_batches(engine: Engine) -> dict[int, int | None]:
    with engine.connect() as c:
        return {int(i): (None if b is None else int(b))
                for i, b in c.execute(text("SELECT id, batch_id FROM credits")).all()}


def _seed_0005(engine: Engine, n_answers: int, people: list[str]) -> None:
    """Paid answers of 3 credits of 1 unit each, written as the 0005 ledger did (SQL: today's
    ledger code writes the new tables), consistent with every rule check_invariants checks."""
    total = 3 * n_answers
    with engine.begin() as c:
        now = {"t": ledger.utcnow()}
        c.execute(text("INSERT INTO accounts (id, balance, created_at) VALUES ('old', 0, :t)"), now)
        c.execute(text("INSERT INTO journal_entries (holder, kind, delta, balance_after, created_at) VALUES "
                       "('account:old', 'deposit', :n, :n, :t), ('account:old', 'answer_debit', -:n, 0, :t)"),
                  {**now, "n": total})
        c.execute(text("INSERT INTO contributors (address, earned, batched, vouchered, settled, created_at) "
                       "VALUES (:a, 0, 0, 0, 0, :t)"), [{"a": a, **now} for a in people])
        for i in range(n_answers):
            c.execute(text("INSERT INTO answer_payments (answer_id, account_id, price, fee_bps, total, fee, pool, "
                           "created_at) VALUES (:a, 'old', 3, 0, 3, 0, 3, :t)"), {"a": f"old-{i}", **now})
            c.execute(text("INSERT INTO credits (answer_id, contributor, amount, weight, batch_id, created_at) "
                           "VALUES (:a, :w, 1, 1, NULL, :t)"),
                      [{"a": f"old-{i}", "w": people[(i + j) % len(people)], **now} for j in range(3)])
        c.execute(text("UPDATE contributors SET earned = "
                       "(SELECT COUNT(*) FROM credits WHERE credits.contributor = contributors.address)"))


def test_migration_moves_existing_batches_and_back(bare_engine: Engine) -> None:
    engine = bare_engine
    _alembic(engine, "upgrade", "0005")
    _seed_0005(engine, 12, [new_address() for _ in range(5)])  # 36 credits, batch_id NULL
    with engine.begin() as c:  # batch the oldest 20 the 0005 way: the old UPDATE, then its items
        bid = c.execute(text("INSERT INTO payout_batches (idempotency_key, credit_count, total, created_at) "
                             "VALUES ('old', 0, 0, CURRENT_TIMESTAMP) RETURNING id")).scalar_one()
        c.execute(text("UPDATE credits SET batch_id = :b WHERE id IN "
                       "(SELECT id FROM credits ORDER BY id LIMIT 20)"), {"b": bid})
        per = c.execute(text("SELECT contributor, SUM(amount), COUNT(*) FROM credits WHERE batch_id = :b "
                             "GROUP BY contributor"), {"b": bid}).all()
        for who, amount, n in per:
            cum = c.execute(text("UPDATE contributors SET batched = batched + :a WHERE address = :w "
                                 "RETURNING batched"), {"a": amount, "w": who}).scalar_one()
            c.execute(text("INSERT INTO payout_batch_items (batch_id, contributor, amount, credit_count, cumulative) "
                           "VALUES (:b, :w, :a, :n, :c)"), {"b": bid, "w": who, "a": amount, "n": n, "c": cum})
        c.execute(text("UPDATE payout_batches SET credit_count = 20, total = "
                       "(SELECT SUM(amount) FROM credits WHERE batch_id = :b) WHERE id = :b"), {"b": bid})
    before = _credit_batches(engine)
    assert sum(b is not None for b in before.values()) == 20 and len(before) == 36

    _alembic(engine, "upgrade", "head")
    with Session(engine) as s:
        assert {int(c): int(b) for c, b in s.execute(select(BatchCredit.credit_id, BatchCredit.batch_id))} == \
            {c: b for c, b in before.items() if b is not None}
        assert set(s.scalars(select(UnbatchedCredit.credit_id))) == {c for c, b in before.items() if b is None}
        assert ledger.check_invariants(s) == []
    with pytest.raises(DBAPIError), Session(engine) as s, s.begin():  # the rebuilt table kept its CHECK
        s.execute(text("INSERT INTO credits (answer_id, contributor, amount, weight, created_at) "
                       "SELECT answer_id, contributor, 0, 1, created_at FROM credits LIMIT 1"))
    with Session(engine) as s, s.begin():  # the rest batches the new way, on top of the old batch
        rest = ledger.aggregate(s)
    assert rest is not None and rest.credit_count == 16
    with Session(engine) as s:
        assert ledger.check_invariants(s) == []
        assert s.scalar(select(func.sum(PayoutBatchItem.credit_count))) == 36
        after = {int(c): int(b) for c, b in s.execute(select(BatchCredit.credit_id, BatchCredit.batch_id))}

    _alembic(engine, "downgrade", "0005")
    assert _credit_batches(engine) == after
