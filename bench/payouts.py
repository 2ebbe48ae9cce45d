"""Payouts benchmark: credits aggregated per second, answers recorded per second, and gas per
contributor of the hub's batched settlement, all on real services.

    python bench/payouts.py                      # SQLite + PostgreSQL (if reachable) + anvil
    python bench/payouts.py --credits 100000 --contributors 1000 --no-chain

* aggregate: N credits over M contributors (bulk-inserted), batched by ``ledger.aggregate``
  in one transaction, the way one worker does it (target: >= 20,000 credits/s);
* record: ``ledger.record_answer_payment`` per answer (3 cited contributors), one transaction
  each, as the chat flow calls it;
* settle: ``run_settle`` pushing vouchers for K contributors in transactions of
  ``push_batch_size`` channels; first payment (fresh token balance slot) and repeat payment
  (target: <= 30,000 gas per contributor paid).

Answer -> voucher latency is not simulated here: beat runs ``aggregate`` every
``payout_interval`` and ``aggregate`` queues ``issue_vouchers`` at once, so the worst case is
one interval plus the two tasks' run time (tens of ms each, see the figures above).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa
from sqlalchemy import insert
from sqlalchemy.orm import Session

from assistant.db import migrate
from payouts import ledger
from payouts.db import make_engine
from payouts.models import AnswerPayment, Credit, JournalEntry

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def addresses(n: int) -> list[str]:
    from eth_utils import to_checksum_address

    return [to_checksum_address(f"0x{uuid.uuid4().hex}{i:08x}") for i in range(n)]


def seed_credits(engine: sa.Engine, n_credits: int, people: list[str]) -> None:
    now = ledger.utcnow()
    per_answer = 4
    n_answers = n_credits // per_answer
    with Session(engine) as s, s.begin():
        ledger.ensure_contributors(s, people)
    # answer_payments need an account row (FK); credits need their answer row
    with Session(engine) as s, s.begin():
        ledger.ensure_account(s, "bench")
        s.execute(insert(AnswerPayment), [
            {"answer_id": f"b{i}", "account_id": "bench", "price": 4, "fee_bps": 0, "total": 4,
             "fee": 0, "pool": 4, "created_at": now} for i in range(n_answers)])
        rnd = random.Random(1)
        rows = []
        for i in range(n_answers):
            for who in rnd.sample(people, per_answer):
                rows.append({"answer_id": f"b{i}", "contributor": who, "amount": 1, "weight": 1,
                             "batch_id": None, "created_at": now})
        s.execute(insert(Credit), rows)
        # the seeded answers were paid: deposit, debit and journal them like the ledger does
        total = 4 * n_answers
        ledger.deposit(s, "bench", total)
        s.execute(sa.text("UPDATE accounts SET balance = balance - :t WHERE id = 'bench'"), {"t": total})
        s.execute(insert(JournalEntry), [{"holder": "account:bench", "kind": "answer_debit", "delta": -total,
                                          "balance_after": 0, "created_at": now}])
        # earned = Σ credits (keeps the CHECK earned >= batched true after aggregate)
        s.execute(sa.text("UPDATE contributors SET earned = (SELECT COALESCE(SUM(amount), 0) "
                          "FROM credits WHERE credits.contributor = contributors.address)"))


def bench_db(label: str, engine: sa.Engine, n_credits: int, n_contributors: int, n_answers: int) -> None:
    migrate(engine)
    people = addresses(n_contributors)
    seed_credits(engine, n_credits, people)
    t0 = time.perf_counter()
    with Session(engine) as s, s.begin():
        result = ledger.aggregate(s, max_credits=n_credits + 1)
    dt = time.perf_counter() - t0
    assert result is not None and result.credit_count == n_credits - n_credits % 4
    print(f"{label:>10}  aggregate   {result.credit_count:>7} credits / {len(result.per_contributor)} "
          f"contributors in {dt * 1000:8.1f} ms = {result.credit_count / dt:>9,.0f} credits/s")
    with Session(engine) as s, s.begin():
        ledger.deposit(s, "asker", 10**15)
    t0 = time.perf_counter()
    for i in range(n_answers):
        with Session(engine) as s, s.begin():
            ledger.record_answer_payment(s, "asker", f"r{i}", 10_000, {people[i % 50]: 5, people[(i + 1) % 50]: 3,
                                                                      people[(i + 2) % 50]: 2}, fee_bps=1_000)
    dt = time.perf_counter() - t0
    print(f"{label:>10}  record      {n_answers:>7} answers (1 tx each) in {dt * 1000:8.1f} ms = "
          f"{n_answers / dt:>9,.0f} answers/s")
    with Session(engine) as s:
        problems = ledger.check_invariants(s)
    print(f"{label:>10}  invariants  {'ok' if not problems else problems[:3]}")


def bench_chain(n: int) -> None:
    from payouts.deploy import ensure_deployment_for_settings
    from payouts.localchain import LocalChain
    from payouts.settings import PayoutsSettings
    from payouts.tasks import Resources, run_issue_vouchers, run_settle

    with tempfile.TemporaryDirectory() as tmp, LocalChain(Path(tmp), state_interval=0) as chain:
        settings = PayoutsSettings(data_dir=Path(tmp), chain_rpc_url=chain.rpc_url, channel_min_topup=10**9)
        ensure_deployment_for_settings(settings)
        engine = make_engine(f"sqlite:///{tmp}/ledger.sqlite3")
        migrate(engine)
        res = Resources(settings)
        res.engine = engine
        people = addresses(n)
        for round_no in ("first", "repeat"):
            with Session(engine) as s, s.begin():
                ledger.deposit(s, "asker", 10**12)
                for i, p in enumerate(people):
                    ledger.record_answer_payment(s, "asker", f"{round_no}-{i}", 10_000, {p: 1}, fee_bps=1_000)
                ledger.aggregate(s)
            run_issue_vouchers(res)
            out = run_settle(res, threshold=0)
            from payouts.models import Settlement

            with Session(engine) as s:
                gas = s.scalars(sa.select(Settlement.gas_used).where(Settlement.status == "confirmed")
                                .order_by(Settlement.id.desc()).limit(out["transactions"])).all()
            print(f"{'anvil':>10}  settle      {round_no:>6} payment: {out['channels']} contributors in "
                  f"{out['transactions']} tx of <= {settings.push_batch_size}: "
                  f"{sum(gas) / out['channels']:,.0f} gas per contributor")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--credits", type=int, default=100_000)
    ap.add_argument("--contributors", type=int, default=1_000)
    ap.add_argument("--answers", type=int, default=500)
    ap.add_argument("--settle-contributors", type=int, default=200)
    ap.add_argument("--no-postgres", action="store_true")
    ap.add_argument("--no-chain", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{tmp}/bench.sqlite3")
        bench_db("sqlite", engine, args.credits, args.contributors, args.answers)
        engine.dispose()
    if not args.no_postgres:
        name = f"openchat_bench_{uuid.uuid4().hex[:8]}"
        try:
            admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
            with admin.connect() as c:
                c.execute(sa.text(f'CREATE DATABASE "{name}"'))
        except Exception as exc:  # noqa: BLE001
            print(f"  postgres  skipped: {exc.__class__.__name__}")
        else:
            engine = make_engine(str(sa.engine.make_url(PG_ADMIN).set(database=name).render_as_string(False)))
            try:
                bench_db("postgres", engine, args.credits, args.contributors, args.answers)
            finally:
                engine.dispose()
                with admin.connect() as c:
                    c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    if not args.no_chain:
        bench_chain(args.settle_contributors)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
