"""The cap on hub funds committed to payees who have earned little (issue 16): many small payees
and a tight cap on the session's anvil (task bodies in-process, SQLite and PostgreSQL; and the
real Celery worker). Committed funds never pass the cap, the rest wait in order with a reason,
are paid as pushes and reclaims free funds, a large payee is paid in the same runs, and every
amount balances to the unit on chain and in the ledger."""

from __future__ import annotations

import dataclasses
import json
import uuid
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from assistant.db import migrate
from payouts import ledger, small_payees
from payouts.db import make_engine
from payouts.models import PayeeWait
from payouts.reconcile import reconcile
from payouts.settings import PayoutsSettings
from payouts.small_payees import Gate, SmallPayeeCap
from payouts.tasks import Resources, run_aggregate, run_issue_vouchers, run_reclaim, run_settle
from payouts.worker import create_celery
from tests.conftest import new_address
from tests.payouts.conftest import Stack
from tests.payouts.test_channel_deposits import DEFAULTS, amounts_of
from tests.payouts.test_quarantine import credit, payouts_cli
from tests.payouts.test_worker import check_money_rules

SMALL_BELOW = 1_000_000  # lifetime earnings under 1 ocUSD: small
CAP = 1_000_000  # what small payees' channels may hold in all: five deposits of 200,000
CAPPED = {**DEFAULTS, "settle_threshold": 10**12, "small_payee_earned_below": SMALL_BELOW,
          "small_payees_max_committed": CAP, "small_payees_max_committed_bps": 10_000}


def resources(stack: Stack, engine: Engine) -> Resources:
    return Resources(stack.settings.model_copy(update=CAPPED), engine=engine, chain=stack.client)


def held_on_chain(stack: Stack, payees: list[str]) -> int:
    """The hub's tokens in these payees' channels, deposited and not paid out (0: no channel)."""
    return sum(stack.client.get_channel(stack.client.channel_id(p)).remaining for p in payees)


def queue_of(engine: Engine) -> list[tuple[str, str]]:
    """(address, reason) in queue order."""
    with Session(engine) as s:
        return [(w["address"], w["reason"]) for w in small_payees.waiting(s)[3]]


# ------------------------------------------------------------------------------ pure


def test_gate_admits_in_order_never_past_the_cap() -> None:
    g = Gate(cap=1_000, committed=600)
    assert g.admit("a", 300) is None and g.committed == 900
    why = g.admit("b", 200)
    assert why is not None and why.startswith("cap reached: small payees' channels hold 900 of the cap 1000")
    assert g.blocked_by == "b" and g.committed == 900
    why = g.admit("c", 100)  # would fit, but no overtaking: it queues behind b
    assert why is not None and why.startswith("queued behind b") and g.committed == 900
    why = g.admit("d", 1_001)  # can never fit: waits without holding anyone up
    assert why is not None and "more than the whole cap" in why and g.blocked_by == "b"
    p = SmallPayeeCap(earned_below=10, budget=500, share_bps=1_000)
    assert (p.cap(10_000), p.cap(3_000), p.is_small(9), p.is_small(10)) == (500, 300, True, False)
    assert not SmallPayeeCap(0, 500, 1_000).is_small(0)  # 0: the cap is off
    for bad in ({"earned_below": -1}, {"budget": 1.5}, {"share_bps": 10_001}, {"share_bps": True}):
        with pytest.raises(ValueError):
            SmallPayeeCap(**({"earned_below": 1, "budget": 1, "share_bps": 1} | bad))  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        g.admit("e", -1)
    assert PayoutsSettings().small_payee_cap() == SmallPayeeCap(10_000_000, 1_000_000_000, 1_000)


# -------------------------------------------------------------------- on anvil


def test_many_small_payees_wait_under_a_tight_cap_and_are_paid_as_funds_free(engine: Engine, stack: Stack) -> None:
    client = stack.client
    hub = client.hub.address
    res = resources(stack, engine)
    smalls = sorted(new_address() for _ in range(8))  # the run goes through new payees in address order
    owed = dict(zip(smalls, [100_000] * 5 + [150_000, 150_000, 100_000], strict=True))  # deposits: twice that
    big, late = new_address(), new_address()
    hub_before = client.token_balance(hub)

    credit(engine, {**owed, big: 20_000_000})  # big: over the line here and by default
    run_aggregate(res)
    out = run_issue_vouchers(res)
    # five small deposits of 200,000 fill the cap; the large payee is paid in the same run
    assert (out["opened"], out["vouchers"], out["waiting"], out["quarantined"]) == (6, 6, 3, 0)
    assert held_on_chain(stack, smalls) == CAP
    assert client.get_channel(client.channel_id(big)).deposited == 40_000_000
    assert [a for a, _ in queue_of(engine)] == smalls[5:]
    reasons = dict(queue_of(engine))
    assert reasons[smalls[5]] == (f"cap reached: small payees' channels hold {CAP} of the cap {CAP}; this deposit "
                                  "needs 300000; paid once pushes, claims or reclaimed deposits free 300000")
    assert all(reasons[a].startswith(f"queued behind {smalls[5]}") for a in smalls[6:])
    for a in smalls[5:]:
        assert not client.get_channel(client.channel_id(a)).exists  # nothing sent for them
        assert amounts_of(engine, a) == (owed[a], owed[a], 0, 0)  # owed, kept in the ledger

    # what the operator sees: status (JSON and text) and /metrics
    body = json.loads(payouts_cli(engine, "status", "--json").stdout)
    assert {k: body["small_payees"][k] for k in ("committed", "waiting", "waiting_owed", "waiting_needed")} == {
        "committed": CAP, "waiting": 3, "waiting_owed": 400_000, "waiting_needed": 800_000}
    assert [(w["position"], w["address"], w["needed"]) for w in body["waiting_for_funds"]] == [
        (1, smalls[5], 300_000), (2, smalls[6], 300_000), (3, smalls[7], 200_000)]
    one = json.loads(payouts_cli(engine, "status", "--json", "--contributor", smalls[6]).stdout)["contributor"]
    assert one["waiting_for_funds"]["position"] == 2
    text = payouts_cli(engine, "status").stdout
    assert f"1. {smalls[5]}  owed 150000  needs 300000" in text and reasons[smalls[5]] in text
    scraped = scrape(engine, stack, res.settings)
    assert (scraped["openchat_payees_waiting_for_funds"], scraped["openchat_small_payees_committed_base_units"],
            scraped["openchat_waiting_for_funds_owed_base_units"]) == (3, CAP, 400_000)

    # again: nothing sent, the same queue in the same order, the same places
    with Session(engine) as s:
        since = dict(s.execute(select(PayeeWait.address, PayeeWait.since)).all())
    assert run_issue_vouchers(res)["waiting"] == 3 and held_on_chain(stack, smalls) == CAP
    with Session(engine) as s:
        assert dict(s.execute(select(PayeeWait.address, PayeeWait.since)).all()) == since

    # pushes pay half of each small deposit out: 500,000 free. The head of the queue (300,000) is
    # paid; the next needs 300,000 and does not fit; the one after it would (200,000) but stays
    # behind it, and so does a newcomer: no overtaking
    run_settle(res, threshold=0)
    assert held_on_chain(stack, smalls) == CAP - 500_000
    credit(engine, {late: 100_000})
    run_aggregate(res)
    out = run_issue_vouchers(res)
    assert (out["opened"], out["waiting"]) == (1, 3)
    assert held_on_chain(stack, smalls + [late]) == 800_000 <= CAP
    assert [a for a, _ in queue_of(engine)] == [smalls[6], smalls[7], late]
    assert queue_of(engine)[0][1].startswith(f"cap reached: small payees' channels hold 800000 of the cap {CAP}")
    assert all(r.startswith(f"queued behind {smalls[6]}") for _, r in queue_of(engine)[1:])

    # the idle channels are closed, the unpaid voucher of one pushed first: that frees 150,000 and
    # the head of the queue fits; the rest of the deposits come back after the challenge period
    run_reclaim(res, idle_seconds=0.0)
    assert held_on_chain(stack, smalls) == 800_000 - 150_000
    out = run_issue_vouchers(res)
    assert (out["opened"], out["waiting"]) == (1, 2) and held_on_chain(stack, smalls) == 950_000 <= CAP
    assert [a for a, _ in queue_of(engine)] == [smalls[7], late]
    assert queue_of(engine)[0][1].startswith(f"cap reached: small payees' channels hold 950000 of the cap {CAP}")
    stack.chain.increase_time(client.challenge_period() + 1)
    out = run_reclaim(res, idle_seconds=3_600.0)  # settles the closings; the new channel is not idle
    assert (out["settled"], out["closed"]) == (7, 0)  # six small channels and the large one
    assert held_on_chain(stack, smalls) == 300_000  # the channel opened meanwhile
    out = run_issue_vouchers(res)
    assert (out["opened"], out["vouchers"], out["waiting"]) == (2, 2, 0) and queue_of(engine) == []
    assert held_on_chain(stack, smalls + [late]) == 300_000 + 200_000 + 200_000 <= CAP

    # everyone is paid every unit; the hub's tokens went to them or are still in their channels
    run_settle(res, threshold=0)
    people = [*smalls, big, late]
    for p in people:
        assert client.token_balance(p) == amounts_of(engine, p)[0] == amounts_of(engine, p)[3]
    paid = sum(client.token_balance(p) for p in people)
    assert paid == sum(owed.values()) + 20_000_000 + 100_000
    assert hub_before - client.token_balance(hub) == paid + held_on_chain(stack, people)
    check_money_rules(engine, client, people)
    with Session(engine) as s:
        assert ledger.check_invariants(s) == []
        report = reconcile(s, client)
    assert report.ok, report.problems
    assert report.closings_checked == 7


def scrape(engine: Engine, stack: Stack, settings: PayoutsSettings) -> dict[str, float]:
    """The /metrics samples as the API's registry renders them, with the cap's settings."""
    from prometheus_client.parser import text_string_to_metric_families

    from assistant.metrics import metrics_registry, render

    registry, _ = metrics_registry(lambda: engine, lambda: stack.app, ("payouts",), settings.payout_min_owed,
                                   settings.small_payee_cap())
    return {s.name: s.value for f in text_string_to_metric_families(render(registry).decode()) for s in f.samples
            if not s.labels}


def test_the_real_worker_queues_small_payees_and_pays_them_when_funds_free(stack: Stack, tmp_path: Path) -> None:
    """The same rule in the real Celery worker: four small payees, room for two; the other two
    wait with their reason; a push frees half of each deposit and the next voucher run pays the
    head of the queue; the worker never retried a task."""
    db = make_engine(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
    migrate(db)
    env = {**stack.env, "OPENCHAT_DATABASE_URL": f"sqlite:///{tmp_path / 'ledger.sqlite3'}",
           "OPENCHAT_DEPLOYMENT_FILE": str(stack.settings.resolved_deployment_file),
           "OPENCHAT_REDIS_KEY_PREFIX": f"openchat-test-{uuid.uuid4().hex[:10]}:",
           "OPENCHAT_PAYOUT_MIN_OWED": "100000", "OPENCHAT_CHANNEL_MIN_TOPUP": "100000",
           "OPENCHAT_CHANNEL_HEADROOM_BPS": "10000", "OPENCHAT_SETTLE_THRESHOLD": str(10**12),
           "OPENCHAT_SMALL_PAYEE_EARNED_BELOW": str(SMALL_BELOW), "OPENCHAT_SMALL_PAYEES_MAX_COMMITTED": "400000",
           "OPENCHAT_SMALL_PAYEES_MAX_COMMITTED_BPS": "10000"}
    settings = PayoutsSettings(**{k.removeprefix("OPENCHAT_").lower(): v for k, v in env.items()})
    local = dataclasses.replace(stack, env=env, settings=settings, engine=db, app=create_celery(settings),
                                log_path=tmp_path / "worker.log", proc=None, starts=0, log_offset=0)
    client = stack.client
    smalls = sorted(new_address() for _ in range(4))
    stack.stop_worker()
    try:
        local.start_worker()
        credit(db, {a: 100_000 for a in smalls})
        local.send("payouts.aggregate")  # aggregate queues issue_vouchers
        local.wait_for(lambda: len(queue_of(db)) == 2 and amounts_of(db, smalls[1])[2] == 100_000, what="two waits")
        assert [amounts_of(db, a)[2] for a in smalls] == [100_000, 100_000, 0, 0]
        assert held_on_chain(stack, smalls) == 400_000
        assert [a for a, _ in queue_of(db)] == smalls[2:]
        assert queue_of(db)[0][1].startswith("cap reached: small payees' channels hold 400000 of the cap 400000")
        local.send("payouts.settle", threshold=0)  # pays 100,000 out of each channel: 200,000 free
        local.wait_for(lambda: amounts_of(db, smalls[1])[3] == 100_000, what="the pushes")
        local.send("payouts.issue_vouchers")
        local.wait_for(lambda: amounts_of(db, smalls[2])[2] == 100_000, what="the head of the queue paid")
        assert [a for a, _ in queue_of(db)] == smalls[3:] and held_on_chain(stack, smalls) == 400_000
        assert "Retry in" not in local.log_text()
        with Session(db) as s:
            assert ledger.check_invariants(s) == []
        check_money_rules(db, client, smalls[:2])
    finally:
        local.stop_worker()
        db.dispose()
        stack.start_worker()
