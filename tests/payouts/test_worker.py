"""Payout workers with real services: Redis broker, a Celery worker process, anvil, SQLite.

The money rules are checked after every scenario: Σ credits of an answer = pool, Σ debits =
Σ credits + Σ fees, every credit in exactly one batch, cumulative voucher = Σ batched credits,
Σ settled ≤ Σ vouchered, and on chain: each channel paid exactly what the ledger settled, never
more than its deposit, and each receiver holds exactly what was paid.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from payouts import ledger
from payouts.chain import ChainClient
from payouts.models import BatchCredit, Contributor, Credit, Settlement, Voucher
from payouts.settings import PayoutsSettings
from payouts.vouchers import SignedVoucher, recover_signer
from payouts.worker import create_celery
from tests.conftest import new_address
from tests.payouts.conftest import OwnRedis, Stack

PRICE = 10_000
FEE_BPS = 1_000


def seed(stack: Stack, n_answers: int, people: list[str], *, seed_no: int = 0) -> None:
    rnd = random.Random(seed_no)
    account = f"asker-{uuid.uuid4().hex[:8]}"
    with Session(stack.engine) as s, s.begin():
        ledger.deposit(s, account, n_answers * PRICE)
        for i in range(n_answers):
            cited = rnd.sample(people, k=min(len(people), rnd.randint(1, 4)))
            weights = {p: rnd.randint(1, 1_000_000) for p in cited}
            ledger.record_answer_payment(s, account, f"{account}-{i}", PRICE, weights, fee_bps=FEE_BPS)


def unbatched(stack: Stack) -> int:
    with Session(stack.engine) as s:
        return int(s.scalar(select(func.count()).select_from(Credit).outerjoin(BatchCredit, BatchCredit.credit_id == Credit.id).where(BatchCredit.credit_id.is_(None))))


def contributors(stack: Stack, people: list[str]) -> dict[str, Contributor]:
    with Session(stack.engine) as s:
        return {c.address: c for c in s.scalars(select(Contributor).where(Contributor.address.in_(people)))}


def all_vouchered(stack: Stack, people: list[str]) -> bool:
    cs = contributors(stack, people)
    return len(cs) == len(people) and all(c.vouchered == c.batched == c.earned for c in cs.values())


def all_settled(stack: Stack, people: list[str]) -> bool:
    cs = contributors(stack, people)
    return all(c.settled == c.vouchered == c.earned for c in cs.values())


def assert_money_rules(stack: Stack, people: list[str]) -> None:
    check_money_rules(stack.engine, stack.client, people)


def check_money_rules(engine: Engine, client: ChainClient, people: list[str]) -> None:
    """Every money rule, in the ledger and against the chain, for ``people``'s channels."""
    with Session(engine) as s:
        assert ledger.check_invariants(s) == []
        t = ledger.totals(s)
        assert t.debits == t.credits + t.fees
        assert t.settled <= t.vouchered <= t.batched <= t.credits
        assert s.scalar(select(func.count()).select_from(Settlement).where(Settlement.status == "pending")) == 0
        for c in s.scalars(select(Contributor).where(Contributor.address.in_(people))):
            ch = client.get_channel(client.channel_id(c.address))
            if c.vouchered:
                assert ch.deposited >= c.vouchered  # every voucher is cashable
                v = ledger.latest_voucher(s, c.address)
                signed = SignedVoucher(v.chain_id, v.contract, bytes.fromhex(v.channel_id[2:]),
                                       v.cumulative_amount, bytes.fromhex(v.signature[2:]))
                assert recover_signer(signed) == client.hub.address
                assert v.cumulative_amount == c.vouchered == c.batched
            assert ch.paid == c.settled <= ch.deposited  # paid exactly once, within the deposit
            assert client.token_balance(c.address) == c.settled


def test_answers_to_batches_to_vouchers_to_settlement(stack: Stack) -> None:
    people = [new_address() for _ in range(12)]
    seed(stack, 200, people, seed_no=1)
    stack.send("payouts.aggregate")  # aggregate then queues issue_vouchers itself
    stack.wait_for(lambda: all_vouchered(stack, people), what="vouchers")
    assert unbatched(stack) == 0
    stack.send("payouts.settle", threshold=0)
    stack.wait_for(lambda: all_settled(stack, people), what="settlement")
    with Session(stack.engine) as s:
        confirmed = s.scalars(select(Settlement).where(Settlement.status == "confirmed")).all()
        assert confirmed and all(x.tx_hash and x.block_number for x in confirmed)
    assert_money_rules(stack, people)
    # more answers: vouchers rise, never fall; a second push pays only the difference
    before = {a: c.vouchered for a, c in contributors(stack, people).items()}
    seed(stack, 50, people, seed_no=2)
    stack.send("payouts.aggregate")
    stack.wait_for(lambda: all_vouchered(stack, people), what="second vouchers")
    after = contributors(stack, people)
    assert all(after[a].vouchered >= before[a] for a in people)
    stack.send("payouts.settle", threshold=0)
    stack.wait_for(lambda: all_settled(stack, people), what="second settlement")
    assert_money_rules(stack, people)


def test_duplicated_tasks_credit_and_pay_nothing_twice(stack: Stack) -> None:
    people = [new_address() for _ in range(8)]
    seed(stack, 150, people, seed_no=3)
    start = len(stack.log_text())

    def done(task: str) -> int:  # tasks of this test that finished
        return sum(1 for line in stack.log_text()[start:].splitlines()
                   if f"Task {task}[" in line and "] succeeded in" in line)

    for _ in range(4):
        stack.send("payouts.aggregate")
        stack.send("payouts.issue_vouchers")
    stack.wait_for(lambda: all_vouchered(stack, people), what="vouchers")
    for _ in range(3):
        stack.send("payouts.settle", threshold=0)
    stack.wait_for(lambda: all_settled(stack, people), what="settlement")
    # let the duplicates finish, then check nothing moved twice
    stack.send("payouts.settle", threshold=0)
    stack.send("payouts.aggregate")
    stack.wait_for(lambda: done("payouts.settle") >= 4 and done("payouts.aggregate") >= 5, what="drain")
    assert " raised " not in stack.log_text()[start:]
    assert_money_rules(stack, people)
    with Session(stack.engine) as s:
        per_channel = s.execute(select(Voucher.contributor, func.count()).where(Voucher.contributor.in_(people))
                                .group_by(Voucher.contributor)).all()
        assert all(n >= 1 for _, n in per_channel)


@pytest.mark.slow  # ~10 s: worker restarts and a broker redelivery
def test_sigkill_mid_aggregate_loses_and_doubles_nothing(stack: Stack) -> None:
    people = [new_address() for _ in range(6)]
    stack.stop_worker()
    stack.start_worker(OPENCHAT_FAULT_PAUSE_SECONDS="60", OPENCHAT_FAULT_PAUSE_TASKS="aggregate")
    seed(stack, 100, people, seed_no=4)
    pending = unbatched(stack)
    assert pending >= 100
    stack.send("payouts.aggregate")
    stack.wait_log("PAUSE aggregate")
    stack.kill_worker()  # mid-transaction: the batch was written but not committed
    assert unbatched(stack) == pending
    stack.start_worker()  # the unacknowledged task is delivered again (visibility timeout)
    stack.wait_for(lambda: all_vouchered(stack, people), timeout=90, what="redelivered aggregate")
    assert_money_rules(stack, people)


@pytest.mark.slow  # ~10 s: worker restarts and a broker redelivery
def test_sigkill_mid_voucher_issue_deposits_and_signs_once(stack: Stack) -> None:
    people = [new_address() for _ in range(3)]
    stack.stop_worker()
    stack.start_worker(OPENCHAT_FAULT_PAUSE_SECONDS="60", OPENCHAT_FAULT_PAUSE_TASKS="issue_vouchers")
    seed(stack, 30, people, seed_no=5)
    stack.send("payouts.aggregate")
    stack.wait_log("PAUSE issue_vouchers")
    stack.kill_worker()  # the channel was opened on chain, the voucher not stored
    opened = [p for p in people if stack.client.get_channel(stack.client.channel_id(p)).exists]
    assert opened
    deposits = {p: stack.client.get_channel(stack.client.channel_id(p)).deposited for p in opened}
    stack.start_worker()
    stack.wait_for(lambda: all_vouchered(stack, people), timeout=90, what="redelivered issue_vouchers")
    for p in opened:  # the retry read the deposit from the chain: no second deposit
        assert stack.client.get_channel(stack.client.channel_id(p)).deposited == deposits[p]
    assert_money_rules(stack, people)


@pytest.mark.slow  # ~10 s: worker restarts and a broker redelivery
def test_sigkill_mid_settle_pays_once(stack: Stack) -> None:
    people = [new_address() for _ in range(5)]
    seed(stack, 60, people, seed_no=6)
    stack.send("payouts.aggregate")
    stack.wait_for(lambda: all_vouchered(stack, people), what="vouchers")
    stack.stop_worker()
    stack.start_worker(OPENCHAT_FAULT_PAUSE_SECONDS="60", OPENCHAT_FAULT_PAUSE_TASKS="settle")
    stack.send("payouts.settle", threshold=0)
    stack.wait_log("PAUSE settle")
    stack.kill_worker()  # the push is mined; the ledger still says "pending"
    with Session(stack.engine) as s:
        assert s.scalar(select(func.count()).select_from(Settlement).where(Settlement.status == "pending")) >= 1
    paid = {p: stack.client.get_channel(stack.client.channel_id(p)).paid for p in people}
    assert all(paid[p] == c.vouchered for p, c in contributors(stack, people).items())
    stack.start_worker()
    stack.wait_for(lambda: all_settled(stack, people), timeout=90, what="reconciled settlement")
    for p in people:
        assert stack.client.get_channel(stack.client.channel_id(p)).paid == paid[p]
    with Session(stack.engine) as s:
        assert s.scalar(select(func.count()).select_from(Settlement).where(Settlement.status == "reconciled")) >= 1
    assert_money_rules(stack, people)


# ------------------------------------------------- embedded broker, RPC outage, reconcile


def variant(stack: Stack, tmp: Path, **env: str) -> Stack:
    """Another worker on the same ledger and chain, with some settings changed."""
    new_env = {k: v for k, v in {**stack.env, **env}.items() if v != ""}
    new_env.setdefault("OPENCHAT_DEPLOYMENT_FILE", str(stack.settings.resolved_deployment_file))
    settings = PayoutsSettings(**{k.removeprefix("OPENCHAT_").lower(): v for k, v in new_env.items()})
    return dataclasses.replace(stack, env=new_env, settings=settings, app=create_celery(settings),
                               log_path=tmp / "worker.log", proc=None, starts=0, log_offset=0)


def test_embedded_broker_without_redis(stack: Stack, tmp_path: Path) -> None:
    """No OPENCHAT_REDIS_URL: kombu's SQLAlchemy transport on a SQLite file, real worker."""
    local = variant(stack, tmp_path, OPENCHAT_REDIS_URL="", OPENCHAT_DATA_DIR=str(tmp_path))
    assert local.settings.broker_url == f"sqla+sqlite:///{(tmp_path / 'broker.sqlite3').resolve()}"
    local.start_worker()
    try:
        people = [new_address() for _ in range(4)]
        seed(stack, 40, people, seed_no=7)
        local.send("payouts.aggregate")
        local.wait_for(lambda: all_vouchered(stack, people), what="vouchers via the embedded broker")
        assert "sqla+sqlite" in local.log_text()
        assert_money_rules(stack, people)
    finally:
        local.stop_worker()


class FlakyRpc:
    """A JSON-RPC proxy in front of anvil that answers 503 while ``down`` is set."""

    def __init__(self, upstream: str):
        self.down = threading.Event()
        self.failures = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if outer.down.is_set():
                    outer.failures += 1
                    self.send_response(503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                req = urllib.request.Request(upstream, data=body, headers={"Content-Type": "application/json"})
                with urllib.request.urlopen(req, timeout=30) as resp:
                    data = resp.read()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def flaky_rpc(stack: Stack) -> Iterator[FlakyRpc]:
    proxy = FlakyRpc(stack.chain.rpc_url)
    yield proxy
    proxy.close()


@pytest.mark.slow  # ~10 s: worker restarts and a broker redelivery
def test_rpc_outage_is_retried_with_backoff(stack: Stack, flaky_rpc: FlakyRpc, tmp_path: Path) -> None:
    w = variant(stack, tmp_path, OPENCHAT_CHAIN_RPC_URL=flaky_rpc.url,
                OPENCHAT_REDIS_KEY_PREFIX=stack.env["OPENCHAT_REDIS_KEY_PREFIX"] + "flaky:")
    w.start_worker()
    try:
        people = [new_address() for _ in range(4)]
        seed(stack, 40, people, seed_no=8)
        flaky_rpc.down.set()
        w.send("payouts.aggregate")  # batches (no RPC), then issue_vouchers fails and retries
        w.wait_for(lambda: w.log_text().count("payouts.issue_vouchers") >= 3 and "Retry in" in w.log_text(),
                   what="retries during the outage")
        assert contributors(stack, people) and not any(c.vouchered for c in contributors(stack, people).values())
        flaky_rpc.down.clear()
        w.wait_for(lambda: all_vouchered(stack, people), what="vouchers after the outage")
        flaky_rpc.down.set()
        w.send("payouts.settle", threshold=0)
        w.wait_for(lambda: w.log_text().count("payouts.settle") >= 3, what="settle retries")
        flaky_rpc.down.clear()
        w.wait_for(lambda: all_settled(stack, people), what="settlement after the outage")
        assert flaky_rpc.failures >= 2
        assert_money_rules(stack, people)
    finally:
        w.stop_worker()


def test_beat_turns_answers_into_vouchers_and_settlements(stack: Stack, tmp_path: Path) -> None:
    """A worker with its embedded beat (-B) and payout_interval 1 s: no task is sent by hand;
    an answer's credits are vouchered within 2 intervals (+ worker latency) and settled."""
    w = variant(stack, tmp_path, OPENCHAT_PAYOUT_INTERVAL="1", OPENCHAT_SETTLE_THRESHOLD="1",
                OPENCHAT_REDIS_KEY_PREFIX=stack.env["OPENCHAT_REDIS_KEY_PREFIX"] + "beat:")
    w.start_worker("-B", "-s", str(tmp_path / "beat-schedule"))
    try:
        people = [new_address() for _ in range(3)]
        t0 = time.monotonic()
        seed(stack, 10, people, seed_no=11)
        w.wait_for(lambda: all_vouchered(stack, people), timeout=30, what="vouchers from beat")
        assert time.monotonic() - t0 <= 2 * 1 + 5  # 2 x interval + broker/worker latency (loaded CI)
        w.wait_for(lambda: all_settled(stack, people), timeout=30, what="settlement from beat")
        assert_money_rules(stack, people)
    finally:
        w.stop_worker()


def run_cli(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("OPENCHAT_")}, **stack.env}
    return subprocess.run([sys.executable, "-m", "payouts.cli", *args], env=env, capture_output=True,
                          text=True, timeout=120, check=False)


def test_reconcile_cli_spots_and_heals_a_difference(stack: Stack) -> None:
    people = [new_address() for _ in range(3)]
    seed(stack, 20, people, seed_no=9)
    stack.send("payouts.aggregate")
    stack.wait_for(lambda: all_vouchered(stack, people), what="vouchers")
    stack.send("payouts.settle", threshold=0)
    stack.wait_for(lambda: all_settled(stack, people), what="settled")
    ok = run_cli(stack, "reconcile", "--json")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    report = json.loads(ok.stdout)
    assert report["ok"] and report["chain_checked"] and report["chain_paid"] == report["ledger_settled"]
    status = run_cli(stack, "status", "--json", "--contributor", people[0])
    assert status.returncode == 0 and json.loads(status.stdout)["contributor"]["address"] == people[0]
    # money moves on chain behind the ledger's back: a new voucher, cashed by the receiver's
    # channel being pushed directly; reconcile reports it, settle records it.
    late = new_address()
    seed(stack, 5, [late], seed_no=10)
    stack.send("payouts.aggregate")
    stack.wait_for(lambda: all_vouchered(stack, [late]), what="late voucher")
    owed = contributors(stack, [late])[late].vouchered
    stack.client.push_payments([(late, owed)])
    bad = run_cli(stack, "reconcile")
    assert bad.returncode == 1 and f"{late}: paid on chain {owed} != settled in ledger 0" in bad.stdout
    stack.send("payouts.settle", threshold=10**18)  # nothing due, but the chain's payment is recorded
    stack.wait_for(lambda: all_settled(stack, [late]), what="ledger catches up with the chain")
    assert run_cli(stack, "reconcile").returncode == 0
    assert_money_rules(stack, [late])


@pytest.mark.slow  # ~15 s: broker killed and restarted twice
@pytest.mark.skipif(not Path("/usr/bin/redis-server").exists() and not shutil.which("redis-server"),
                    reason="no redis-server binary")
def test_broker_restart_loses_nothing(stack: Stack, tmp_path: Path) -> None:
    broker = OwnRedis(tmp_path)
    broker.start()
    w = variant(stack, tmp_path, OPENCHAT_REDIS_URL=broker.url)
    try:
        w.start_worker()
        people = [new_address() for _ in range(3)]
        seed(stack, 10, people, seed_no=12)
        # 1. the broker dies under a running worker, comes back; the worker reconnects
        broker.kill()
        time.sleep(1)
        broker.start()
        w.send("payouts.aggregate")
        w.wait_for(lambda: all_vouchered(stack, people), timeout=60, what="vouchers after broker restart")
        # 2. a task queued while no worker runs survives a broker crash (append-only file)
        w.stop_worker()
        more = [new_address() for _ in range(2)]
        seed(stack, 6, more, seed_no=13)
        w.send("payouts.aggregate")
        broker.kill()
        broker.start()
        w.start_worker()
        w.wait_for(lambda: all_vouchered(stack, more), timeout=60, what="queued task after broker crash")
        assert_money_rules(stack, people + more)
    finally:
        w.stop_worker()
        broker.kill()
