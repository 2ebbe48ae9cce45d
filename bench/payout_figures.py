"""Payouts benchmark: credits aggregated per second, answers recorded per second, and gas per
contributor of the hub's batched settlement, all on real services.

    python bench/payout_figures.py                      # SQLite + PostgreSQL (if reachable) + anvil
    python bench/payout_figures.py --credits 100000 --contributors 1000 --no-chain
    python bench/payout_figures.py --compare 3 --no-chain   # aggregate: schema 0005 vs head, alternating
    python bench/payout_figures.py --no-sqlite --no-postgres --settle-contributors 0   # latency only

* aggregate: N credits over M contributors (bulk-inserted), batched by ``ledger.aggregate``
  in one transaction, the way one worker does it (target: >= 20,000 credits/s); ``--compare R``
  instead runs it R times alternating with the baseline it replaced (schema revision 0005, where
  batching UPDATEd ``credits.batch_id``), each run on a fresh database, and prints medians and
  the ratio;
* record: ``ledger.record_answer_payment`` per answer (3 cited contributors), one transaction
  each, as the chat flow calls it;
* settle: ``run_settle`` pushing vouchers for K contributors in transactions of
  ``push_batch_size`` channels; first payment (fresh token balance slot) and repeat payment
  (target: <= 30,000 gas per contributor paid; ``--settle-contributors 0`` skips it);
* latency (on by default; ``--no-latency`` or ``--no-chain`` skips it, 3-4 min): answer ->
  voucher at the DEFAULT ``payout_interval`` (60 s), nothing sent by hand. A real ``celery
  worker -B`` (embedded beat; the tests' ``Stack`` harness), anvil with the contracts deployed,
  a SQLite ledger on a temp dir, Redis db 9 under a private key prefix (the embedded broker when
  Redis is unreachable). ``--latency-answers`` answers (3 cited contributors each) are recorded
  at random moments over ``--latency-intervals`` intervals; for each, the time from its commit
  until every credit of it reads ``vouchered`` (``views.answer_credits``, the API's status),
  polled every 100 ms. Prints median / p90 / max in seconds and in intervals, the part after the
  batch opened (aggregate + channel opening + signing + broker hop), and the target check
  (<= 2 x interval). Beat fires every interval and ``aggregate`` queues ``issue_vouchers`` at
  once, so the latency is the wait for the next tick (up to one interval) plus that part.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa
from alembic import command
from sqlalchemy import insert
from sqlalchemy.orm import Session

from assistant.db import alembic_config, migrate
from payouts import ledger
from payouts.db import make_engine
from payouts.models import AnswerPayment, Credit, JournalEntry

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def addresses(n: int) -> list[str]:
    from eth_utils import to_checksum_address

    return [to_checksum_address(f"0x{uuid.uuid4().hex}{i:08x}") for i in range(n)]


def migrate_to(engine: sa.Engine, revision: str) -> None:
    if revision == "head":
        migrate(engine)
        return
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def seed_credits(engine: sa.Engine, n_credits: int, people: list[str], *, queue: bool = True) -> None:
    """Bulk-insert paid answers of 4 credits of 1 unit; ``queue=False``: the 0005 schema (no
    ``unbatched_credits``; a NULL ``credits.batch_id`` meant unbatched)."""
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
                             "created_at": now})
        s.execute(insert(Credit), rows)
        if queue:  # what record_answer_payment does with each credit
            s.execute(sa.text("INSERT INTO unbatched_credits (credit_id) SELECT id FROM credits ORDER BY id"))
        # the seeded answers were paid: deposit, debit and journal them like the ledger does
        total = 4 * n_answers
        ledger.deposit(s, "bench", total)
        s.execute(sa.text("UPDATE accounts SET balance = balance - :t WHERE id = 'bench'"), {"t": total})
        s.execute(insert(JournalEntry), [{"holder": "account:bench", "kind": "answer_debit", "delta": -total,
                                          "balance_after": 0, "created_at": now}])
        # earned = Σ credits (keeps the CHECK earned >= batched true after aggregate)
        s.execute(sa.text("UPDATE contributors SET earned = (SELECT COALESCE(SUM(amount), 0) "
                          "FROM credits WHERE credits.contributor = contributors.address)"))


def aggregate_0005(s: Session, max_credits: int) -> ledger.BatchResult | None:
    """The aggregate this schema replaced (revision 0005, commit 43abc89): one UPDATE marks the
    oldest unbatched credits with the batch id and returns them; Python sums them per
    contributor. The rest of the batch (contributors, items, journal) is the ledger's own code."""
    batch = ledger._open_batch(s, None)
    assert isinstance(batch, ledger.PayoutBatch)
    lock = " FOR UPDATE SKIP LOCKED" if s.get_bind().dialect.name == "postgresql" else ""
    rows = s.execute(sa.text(
        "UPDATE credits SET batch_id = :b WHERE id IN (SELECT id FROM credits WHERE batch_id IS NULL "
        f"ORDER BY id LIMIT :n{lock}) AND batch_id IS NULL RETURNING contributor, amount"),
        {"b": batch.id, "n": max_credits}).all()
    per: dict[str, list[int]] = {}
    for contributor, amount in rows:
        acc = per.setdefault(contributor, [0, 0])
        acc[0] += int(amount)
        acc[1] += 1
    return ledger._close_batch(s, batch, [(c, a, n) for c, (a, n) in per.items()])


def time_aggregate(engine: sa.Engine, n_credits: int, n_contributors: int, *, baseline: bool) -> float:
    """Seconds for one aggregate of ``n_credits`` on a freshly migrated and seeded database."""
    migrate_to(engine, "0005" if baseline else "head")
    seed_credits(engine, n_credits, addresses(n_contributors), queue=not baseline)
    with engine.begin() as c:  # fresh planner statistics for both, as autovacuum would have
        c.execute(sa.text("ANALYZE"))
    t0 = time.perf_counter()
    with Session(engine) as s, s.begin():
        if baseline:
            result = aggregate_0005(s, n_credits + 1)
        else:
            result = ledger.aggregate(s, max_credits=n_credits + 1)
    dt = time.perf_counter() - t0
    assert result is not None and result.credit_count == n_credits - n_credits % 4
    return dt


def compare(label: str, fresh: Callable[[], tuple[sa.Engine, Callable[[], None]]], repeats: int, n_credits: int,
            n_contributors: int) -> None:
    """Baseline (0005) and new aggregate alternating, each on a fresh database; medians, ratio."""
    times: dict[str, list[float]] = {"0005": [], "head": []}
    for r in range(repeats):
        order = ["0005", "head"] if r % 2 == 0 else ["head", "0005"]
        for rev in order:
            engine, drop = fresh()
            try:
                times[rev].append(time_aggregate(engine, n_credits, n_contributors, baseline=rev == "0005"))
            finally:
                engine.dispose()
                drop()
            print(f"{label:>10}  aggregate   {rev:>4} run {r + 1}: {n_credits / times[rev][-1]:>9,.0f} credits/s",
                  flush=True)
    old, new = statistics.median(times["0005"]), statistics.median(times["head"])
    print(f"{label:>10}  aggregate   median of {repeats}: 0005 {n_credits / old:,.0f} credits/s, "
          f"head {n_credits / new:,.0f} credits/s, head/0005 = x{old / new:.2f}")


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
        # payout_min_owed=0: each payee earns one answer's share, below the default minimum payout
        settings = PayoutsSettings(data_dir=Path(tmp), chain_rpc_url=chain.rpc_url, channel_min_topup=10**9,
                                   payout_min_owed=0)
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


def epoch(moment: datetime) -> float:
    """Seconds since the epoch; SQLite hands back naive datetimes, which the ledger wrote in UTC."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def bench_latency(n_answers: int, spread_intervals: float, redis_url: str, seed_no: int = 5) -> None:
    """Answer -> voucher latency with a real worker and beat at the default payout interval."""
    import redis

    from payouts.localchain import LocalChain
    from payouts.models import PayoutBatch
    from payouts.settings import PayoutsSettings
    from payouts.views import answer_credits
    from payouts.worker import create_celery

    # The tests' real-worker harness (process, log, stop) and the environment it runs in.
    from tests.payouts.conftest import Stack, bench_payouts

    interval = float(PayoutsSettings.model_fields["payout_interval"].default)
    with tempfile.TemporaryDirectory() as tmp, LocalChain(Path(tmp), state_interval=0) as chain:
        data_dir = Path(tmp)
        # answer -> voucher latency of payees with a channel: each earns a few answers' shares,
        # below the default minimum payout that gates a payee's first channel
        bench = bench_payouts(tmp, chain, redis_url, {"OPENCHAT_PAYOUT_INTERVAL": str(interval),
                                                      "OPENCHAT_PAYOUT_MIN_OWED": "0"})
        env, broker, settings, engine, client = bench.env, bench.broker, bench.settings, bench.engine, bench.client
        stack = Stack(data_dir, env, settings, engine, chain, client, create_celery(settings),
                      data_dir / "worker.log")
        rnd = random.Random(seed_no)
        people = addresses(3 * n_answers // 2)  # some contributors recur: top-ups, not only new channels
        with Session(engine) as s, s.begin():
            ledger.deposit(s, "asker", n_answers * settings.price_per_answer)
        offsets = sorted(rnd.uniform(0, spread_intervals * interval) for _ in range(n_answers))
        committed: dict[str, tuple[float, float]] = {}  # answer -> (monotonic, wall clock) at commit
        done: dict[str, tuple[float, float, int]] = {}  # answer -> (monotonic, wall, batch id) when vouchered
        try:
            stack.start_worker("-B", "-s", str(data_dir / "beat-schedule"))
            print(f"{'latency':>10}  {n_answers} answers at random moments over {spread_intervals} x "
                  f"{interval:g} s (default payout_interval); worker -B, {broker}, SQLite, anvil ...", flush=True)
            t0 = time.monotonic()
            deadline = t0 + (spread_intervals + 4) * interval
            nxt = 0
            while len(done) < n_answers:
                now = time.monotonic()
                if now > deadline:
                    raise TimeoutError(f"{n_answers - len(done)} answers not vouchered:\n{stack.log_text()[-3000:]}")
                if stack.proc is None or stack.proc.poll() is not None:
                    raise RuntimeError(f"worker exited:\n{stack.log_text()[-3000:]}")
                while nxt < n_answers and now >= t0 + offsets[nxt]:
                    answer_id = f"lat-{nxt}"
                    weights = {p: rnd.randint(1, 100) for p in rnd.sample(people, 3)}
                    with Session(engine) as s, s.begin():
                        ledger.record_answer_payment(s, "asker", answer_id, settings.price_per_answer, weights,
                                                     fee_bps=settings.platform_fee_bps)
                    committed[answer_id] = (time.monotonic(), time.time())
                    nxt += 1
                with Session(engine) as s:
                    for answer_id in [a for a in committed if a not in done]:
                        rows = answer_credits(s, answer_id)
                        if rows and all(r["status"] in ("vouchered", "settled") for r in rows):
                            assert len(rows) == 3 and len({r["batch_id"] for r in rows}) == 1, rows
                            done[answer_id] = (time.monotonic(), time.time(), rows[0]["batch_id"])
                wake = now + 0.1
                if nxt < n_answers:
                    wake = min(wake, t0 + offsets[nxt])
                time.sleep(max(0.0, wake - time.monotonic()))
            with Session(engine) as s:
                opened = {b.id: b.created_at for b in s.scalars(sa.select(PayoutBatch))}
                problems = ledger.check_invariants(s)
        finally:
            stack.stop_worker()
            engine.dispose()
            if "OPENCHAT_REDIS_URL" in env:
                r = redis.Redis.from_url(redis_url)
                for key in r.scan_iter(match=f"{env['OPENCHAT_REDIS_KEY_PREFIX']}*"):
                    r.delete(key)
    latency = sorted(done[a][0] - committed[a][0] for a in done)
    # a batch's created_at is set when aggregate adds its row, i.e. when the run starts
    after_open = sorted(done[a][1] - epoch(opened[done[a][2]]) for a in done)
    median, p90, worst = (statistics.median(latency), statistics.quantiles(latency, n=10, method="inclusive")[8],
                          max(latency))
    print(f"{'latency':>10}  answer -> voucher: median {median:.1f} s ({median / interval:.2f} x interval), "
          f"p90 {p90:.1f} s ({p90 / interval:.2f} x), max {worst:.1f} s ({worst / interval:.2f} x); "
          f"{len(opened)} batches")
    print(f"{'latency':>10}  of which after the batch opened (aggregate + channels + signing + broker + poll): "
          f"median {statistics.median(after_open):.2f} s, max {max(after_open):.2f} s")
    verdict = "met" if worst <= 2 * interval else "MISSED"
    print(f"{'latency':>10}  target answer -> voucher <= 2 x interval ({2 * interval:g} s): {verdict} "
          f"(max {worst / interval:.2f} x); invariants {'ok' if not problems else problems[:3]}")


def pg_database() -> tuple[sa.Engine, Callable[[], None]]:
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    name = f"openchat_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return make_engine(str(sa.engine.make_url(PG_ADMIN).set(database=name).render_as_string(False))), drop


def run_compare(args: argparse.Namespace) -> None:
    if not args.no_sqlite:
        with tempfile.TemporaryDirectory() as tmp:
            def fresh_sqlite() -> tuple[sa.Engine, Callable[[], None]]:
                path = Path(tmp) / f"{uuid.uuid4().hex[:8]}.sqlite3"
                return make_engine(f"sqlite:///{path}"), lambda: path.unlink()

            compare("sqlite", fresh_sqlite, args.compare, args.credits, args.contributors)
    if not args.no_postgres:
        compare("postgres", pg_database, args.compare, args.credits, args.contributors)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--credits", type=int, default=100_000)
    ap.add_argument("--contributors", type=int, default=1_000)
    ap.add_argument("--answers", type=int, default=500)
    ap.add_argument("--settle-contributors", type=int, default=200)
    ap.add_argument("--no-postgres", action="store_true")
    ap.add_argument("--no-chain", action="store_true")
    ap.add_argument("--no-sqlite", action="store_true")
    ap.add_argument("--no-latency", action="store_true", help="skip answer -> voucher latency (3-4 min)")
    ap.add_argument("--latency-answers", type=int, default=20)
    ap.add_argument("--latency-intervals", type=float, default=3.5,
                    help="answers are spread over this many payout intervals")
    ap.add_argument("--latency-redis", default="redis://127.0.0.1:6379/9")
    ap.add_argument("--latency-seed", type=int, default=5, help="seed of the answers' moments and citations")
    ap.add_argument("--compare", type=int, default=0, metavar="R",
                    help="aggregate only: R runs of schema 0005 vs head, alternating")
    args = ap.parse_args()
    if args.compare:
        run_compare(args)
        return 0
    if not args.no_sqlite:
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
    if not args.no_chain and args.settle_contributors:
        bench_chain(args.settle_contributors)
    if not args.no_chain and not args.no_latency:
        bench_latency(args.latency_answers, args.latency_intervals, args.latency_redis, args.latency_seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
