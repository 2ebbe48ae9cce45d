"""Ledger figures and queue depths for /metrics, on real databases and real brokers."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from payouts import deployments, ledger
from payouts.chain import DeploymentKey
from payouts.metrics import ledger_figures, queue_depths
from payouts.settings import PayoutsSettings
from payouts.worker import CHAIN_QUEUE, QUEUE, create_celery
from tests.conftest import new_address
from tests.payouts.conftest import REDIS_URL, redis_available


def test_ledger_figures_follow_every_step(engine: Engine) -> None:
    with Session(engine) as s:
        before = ledger_figures(s)
    a, b = new_address(), new_address()
    with Session(engine) as s, s.begin():
        ledger.deposit(s, "metrics", 1_000_000)
        ledger.record_answer_payment(s, "metrics", "ans-m-" + uuid.uuid4().hex[:12], 10_000,
                                     {a: 600_000, b: 400_000}, fee_bps=1_000)
        batch = ledger.aggregate(s)
    assert batch is not None
    with Session(engine) as s, s.begin():
        key = DeploymentKey(31337, new_address(), 1, "0x" + uuid.uuid4().hex * 2)
        sid = ledger.begin_settlement(s, [(a, 5_400, 5_400)], deployment_id=deployments.register(s, key),
                                      chain_id=key.chain_id, contract=key.contract)
        ledger.finish_settlement(s, sid, status="confirmed", tx_hash="0x" + uuid.uuid4().hex * 2,
                                 block_number=7, gas_used=51_234)
    with Session(engine) as s:
        after = ledger_figures(s)
    assert after.answers_paid - before.answers_paid == 1
    assert after.debited - before.debited == 10_000 and after.fees - before.fees == 1_000
    assert after.credits - before.credits == 2 and after.credited - before.credited == 9_000
    assert after.batches - before.batches == 1 and after.batched - before.batched == batch.total == 9_000
    assert after.settlement_gas - before.settlement_gas == 51_234
    assert after.settlements["confirmed"] - before.settlements.get("confirmed", 0) == 1
    assert after.settled - before.settled == 5_400


def _depth_after_sending(settings: PayoutsSettings) -> tuple[dict[str, int], dict[str, int]]:
    app = create_celery(settings)
    before = queue_depths(app, (QUEUE, CHAIN_QUEUE))
    app.send_task("payouts.aggregate")
    app.send_task("payouts.settle", queue=CHAIN_QUEUE)
    app.send_task("payouts.settle", queue=CHAIN_QUEUE)
    after = queue_depths(app, (QUEUE, CHAIN_QUEUE))
    with app.connection_for_write() as conn:
        for q in (QUEUE, CHAIN_QUEUE):
            conn.default_channel.queue_purge(q)
    return before, after


def test_queue_depth_on_the_embedded_broker(tmp_path: Path) -> None:
    before, after = _depth_after_sending(PayoutsSettings(data_dir=tmp_path))
    assert before == {QUEUE: 0, CHAIN_QUEUE: 0}
    assert after == {QUEUE: 1, CHAIN_QUEUE: 2}


def test_queue_depth_on_redis(tmp_path: Path) -> None:
    if not redis_available():
        pytest.skip(f"no Redis at {REDIS_URL}")
    settings = PayoutsSettings(data_dir=tmp_path, redis_url=REDIS_URL,
                               redis_key_prefix=f"openchat-test-{uuid.uuid4().hex[:8]}:")
    before, after = _depth_after_sending(settings)
    assert before == {QUEUE: 0, CHAIN_QUEUE: 0}
    assert after == {QUEUE: 1, CHAIN_QUEUE: 2}


def test_queue_depth_raises_when_the_broker_is_down(tmp_path: Path) -> None:
    from tests.conftest import free_port

    app = create_celery(PayoutsSettings(data_dir=tmp_path, redis_url=f"redis://127.0.0.1:{free_port()}/0"))
    with pytest.raises(Exception):  # noqa: B017 - kombu raises its OperationalError
        queue_depths(app, (QUEUE,), timeout=1.0)
