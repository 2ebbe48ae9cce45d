"""The task bodies in-process on PostgreSQL and SQLite against the session's anvil, plus the
Celery app's configuration and the settings the workers read."""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from payouts import ledger, views
from payouts.reconcile import reconcile
from payouts.settings import PayoutsSettings
from payouts.tasks import Resources, run_aggregate, run_issue_vouchers, run_settle
from payouts.worker import CHAIN_QUEUE, create_celery
from tests.conftest import new_address
from tests.payouts.conftest import Stack


def test_cycle_in_process(engine: Engine, stack: Stack) -> None:
    """aggregate → vouchers → settle on this engine (SQLite or PostgreSQL), run twice: the
    second run of everything moves nothing."""
    settings = stack.settings.model_copy(update={"channel_min_topup": 0, "aggregate_max_credits": 7})
    res = Resources(settings, engine=engine, chain=stack.client)
    people = [new_address() for _ in range(5)]
    with Session(engine) as s, s.begin():
        ledger.deposit(s, "pg-asker", 10**9)
        for i in range(20):
            ledger.record_answer_payment(s, "pg-asker", f"pg-{i}", 10_000 + i,
                                         {people[i % 5]: 3, people[(i + 1) % 5]: 1}, fee_bps=250)
    with Session(engine) as s:
        assert {c["status"] for c in views.answer_credits(s, "pg-0")} == {"credited"}
        assert views.latest_voucher(s, people[0]) is None
    first = run_aggregate(res, key="k1")
    assert first["credits"] == 40 and first["batches"] == 6  # rounds of at most 7 credits
    assert run_aggregate(res, key="k1") == {"batches": 0, "credits": 0, "total": 0}  # replay
    with Session(engine) as s:
        assert {c["status"] for c in views.answer_credits(s, "pg-0")} == {"batched"}
    assert run_issue_vouchers(res)["vouchers"] == 5
    with Session(engine) as s:
        assert {c["status"] for c in views.answer_credits(s, "pg-0")} == {"vouchered"}
        payload = views.latest_voucher(s, people[0])
    typed = payload["typed_data"]
    typed["message"]["cumulativeAmount"] = int(typed["message"]["cumulativeAmount"])
    signer = Account.recover_message(encode_typed_data(full_message=typed), signature=payload["signature"])
    assert signer == payload["payer"] == stack.client.hub.address
    assert run_issue_vouchers(res)["vouchers"] == 0
    settled = run_settle(res, threshold=0)
    assert settled["transactions"] == 1 and settled["channels"] == 5
    assert run_settle(res, threshold=0)["transactions"] == 0
    with Session(engine) as s:
        assert ledger.check_invariants(s) == []
        t = ledger.totals(s)
        assert t.credits == t.batched == t.vouchered == t.settled == first["total"]
        report = reconcile(s, stack.client)
        assert report.ok, report.problems
        credits = views.answer_credits(s, "pg-0")
        assert {c["status"] for c in credits} == {"settled"}
        assert all(c["settlement_tx"] and c["settlement_tx"].startswith("0x") for c in credits)
        summary = views.contributor_summary(s, people[0].lower(), limit=3)
        assert summary["earned"] == summary["settled"] and summary["unsettled"] == 0
        assert summary["credits"]["total"] == 8 and len(summary["credits"]["items"]) == 3
        assert views.contributor_summary(s, new_address()) is None
    for p in people:  # channels opened with exactly the amount owed (min top-up 0)
        ch = stack.client.get_channel(stack.client.channel_id(p))
        assert ch.deposited == ch.paid


def test_celery_app_configuration(tmp_path) -> None:  # type: ignore[no-untyped-def]
    s = PayoutsSettings(data_dir=tmp_path, payout_interval=7, redis_url="redis://127.0.0.1:6379/9",
                        redis_key_prefix="x:")
    app = create_celery(s)
    conf = app.conf
    assert conf.task_acks_late and conf.task_reject_on_worker_lost and conf.worker_prefetch_multiplier == 1
    assert conf.broker_transport_options["global_keyprefix"] == "x:"
    assert conf.beat_schedule["payouts-aggregate"]["schedule"].total_seconds() == 7
    assert conf.task_routes["payouts.settle"]["queue"] == CHAIN_QUEUE
    assert conf.task_routes["payouts.issue_vouchers"]["queue"] == CHAIN_QUEUE
    assert app.tasks["payouts.aggregate"].max_retries == s.task_max_retries
    embedded = create_celery(PayoutsSettings(data_dir=tmp_path))
    assert embedded.conf.broker_url.startswith("sqla+sqlite:///")
    assert embedded.conf.broker_transport_options == {}  # the sqla transport passes them to create_engine


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("OPENCHAT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("OPENCHAT_REDIS_URL", "redis://127.0.0.1:6379/3")
    monkeypatch.setenv("OPENCHAT_PAYOUT_INTERVAL", "2.5")
    monkeypatch.setenv("OPENCHAT_SETTLE_THRESHOLD", "5000")
    monkeypatch.setenv("OPENCHAT_PRICE_PER_ANSWER", "20000")
    monkeypatch.setenv("OPENCHAT_PLATFORM_FEE_BPS", "500")
    monkeypatch.delenv("OPENCHAT_DATABASE_URL", raising=False)
    s = PayoutsSettings()
    assert s.broker_url == "redis://127.0.0.1:6379/3" and s.payout_interval == 2.5
    assert (s.settle_threshold, s.price_per_answer, s.platform_fee_bps) == (5000, 20000, 500)
    assert s.effective_database_url == f"sqlite:///{(tmp_path / 'openchat.sqlite3').resolve()}"
    monkeypatch.setenv("OPENCHAT_PLATFORM_FEE_BPS", "10001")
    with pytest.raises(ValueError):
        PayoutsSettings()
