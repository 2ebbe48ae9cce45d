"""Channel deposits sized to what is owed, a minimum payout before a channel, idle channels
closed and their unused deposit reclaimed (issue 16, finding 6). On the session's anvil with the
task bodies in-process (SQLite and PostgreSQL) and with the real Celery worker killed mid-run;
every amount is checked to the unit on chain and in the ledger."""

from __future__ import annotations

import dataclasses
import json
import re
import uuid
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from assistant.db import migrate
from payouts import ledger, reclaim
from payouts.db import make_engine
from payouts.deposits import DepositPolicy
from payouts.metrics import ledger_figures
from payouts.models import ChannelClosure, Contributor, PayeeChannel
from payouts.settings import PayoutsSettings
from payouts.tasks import Resources, run_aggregate, run_issue_vouchers, run_reclaim, run_settle
from payouts.worker import create_celery
from tests.conftest import new_address
from tests.payouts.conftest import Stack
from tests.payouts.test_quarantine import credit, hub_nonce, payouts_cli
from tests.payouts.test_worker import check_money_rules

MIN_OWED = 100_000  # the defaults, spelled out: 0.1 ocUSD before a channel, 100 % headroom
DEFAULTS = {"payout_min_owed": MIN_OWED, "channel_min_topup": 100_000, "channel_headroom_bps": 10_000,
            "channel_max_headroom": 100_000_000}


def resources(stack: Stack, engine: Engine, **settings: object) -> Resources:
    return Resources(stack.settings.model_copy(update={**DEFAULTS, "settle_threshold": 10**12, **settings}),
                     engine=engine, chain=stack.client)


def deposited(stack: Stack, address: str) -> int:
    return stack.client.get_channel(stack.client.channel_id(address)).deposited


def locked(stack: Stack, payees: list[str]) -> int:
    """The hub's tokens in these payees' channels: deposited and not paid out."""
    return sum(stack.client.get_channel(stack.client.channel_id(p)).remaining for p in payees)


def feed(engine: Engine, res: Resources, amounts: dict[str, int]) -> dict[str, int]:
    credit(engine, amounts)
    run_aggregate(res)
    return run_issue_vouchers(res)


def amounts_of(engine: Engine, address: str) -> tuple[int, int, int, int]:
    with Session(engine) as s:
        c = s.get(Contributor, address)
        assert c is not None
        return c.earned, c.batched, c.vouchered, c.settled


# ------------------------------------------------------------------------------ pure


def test_deposit_policy() -> None:
    p = DepositPolicy(min_owed=100_000, min_topup=100_000, headroom_bps=10_000, max_headroom=1_000_000)
    assert p.to_add(150_000, 0) == 300_000  # twice what is owed
    assert p.to_add(250_000, 300_000) == 0  # covered: no transaction
    assert p.to_add(350_000, 300_000) == 400_000  # up to twice the new amount
    assert p.to_add(10, 0) == 100_000  # at least the minimum step
    assert p.to_add(5_000_000, 0) == 6_000_000  # headroom capped at max_headroom
    assert p.to_add(0, 0) == 0
    assert (p.may_open(99_999), p.may_open(100_000), p.may_open(0)) == (False, True, False)
    assert DepositPolicy(0, 0, 0, 0).to_add(7, 3) == 4 and DepositPolicy(0, 0, 0, 0).may_open(1)
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError):
            p.to_add(bad, 0)  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            DepositPolicy(bad, 0, 0, 0)  # type: ignore[arg-type]
    assert PayoutsSettings().deposit_policy() == DepositPolicy(**{k.replace("payout_", "").replace("channel_", ""): v
                                                                   for k, v in DEFAULTS.items()})


# -------------------------------------------------------------------- on anvil


def test_sybil_payees_lock_what_they_are_owed_not_ten_ocusd_each(engine: Engine, stack: Stack) -> None:
    """Five addresses owed 0.009 ocUSD each. Before: a fixed 10 ocUSD deposit each locked 50 ocUSD.
    Now: below the minimum payout they get no channel (no transaction, nothing locked), stay owed
    and are listed; once one is owed the minimum its deposit is twice what it is owed."""
    hub = stack.client.hub.address
    # the old policy, measured on the same chain: fixed 10 ocUSD per new channel
    old = [new_address() for _ in range(5)]
    res_old = resources(stack, engine, payout_min_owed=0, channel_min_topup=10_000_000, channel_headroom_bps=0)
    before = stack.client.token_balance(hub)
    assert feed(engine, res_old, {p: 9_000 for p in old})["opened"] == 5
    assert before - stack.client.token_balance(hub) == locked(stack, old) == 50_000_000

    sybils = [new_address() for _ in range(5)]
    res = resources(stack, engine)
    before, nonce = stack.client.token_balance(hub), hub_nonce(stack)
    out = feed(engine, res, {p: 9_000 for p in sybils})
    assert (out["opened"], out["vouchers"], out["below_minimum"]) == (0, 0, 5)
    assert hub_nonce(stack) == nonce and stack.client.token_balance(hub) == before  # no transaction at all
    assert locked(stack, sybils) == 0
    for p in sybils:
        assert amounts_of(engine, p) == (9_000, 9_000, 0, 0)  # owed, in the ledger
    with Session(engine) as s:
        count, owed, listed = reclaim.below_minimum(s, MIN_OWED)
        assert (count, owed) == (5, 45_000) and {b["address"] for b in listed} == set(sybils)
        figures = ledger_figures(s, min_owed=MIN_OWED).channels
        assert ledger.check_invariants(s) == []
    assert (figures["payees_below_minimum"], figures["below_minimum_owed"]) == (5, 45_000)
    status = payouts_cli(engine, "status", "--json")
    body = json.loads(status.stdout)
    assert body["channels"]["payees_below_minimum"] == 5 and body["channels"]["below_minimum_owed"] == 45_000
    assert {b["address"]: b["owed"] for b in body["below_minimum"]} == {p: 9_000 for p in sybils}
    one = json.loads(payouts_cli(engine, "status", "--json", "--contributor", sybils[1]).stdout)["contributor"]
    assert one["below_minimum_payout"] is True and (one["earned"], one["vouchered"]) == (9_000, 0)
    text = payouts_cli(engine, "status").stdout
    assert f"{sybils[0]}  owed 9000  below minimum payout" in text

    # one of them keeps earning: at the minimum it gets a channel holding twice what it is owed
    out = feed(engine, res, {sybils[0]: 91_000})
    assert (out["opened"], out["vouchers"], out["deposited"]) == (1, 1, 200_000)
    assert before - stack.client.token_balance(hub) == locked(stack, sybils) == 200_000
    assert amounts_of(engine, sybils[0]) == (100_000, 100_000, 100_000, 0)
    with Session(engine) as s:
        figures = ledger_figures(s, min_owed=MIN_OWED).channels
    assert (figures["payees_below_minimum"], figures["below_minimum_owed"]) == (4, 36_000)
    assert figures["deposits_committed"] == 50_000_000 + 200_000  # the old five and the new one
    assert figures["deposits_reclaimable"] == (50_000_000 - 45_000) + 100_000  # deposit beyond every voucher
    check_money_rules(engine, stack.client, [sybils[0], *old])


def test_deposit_is_topped_up_as_what_is_owed_grows(engine: Engine, stack: Stack) -> None:
    payee = new_address()
    res = resources(stack, engine)
    hub = stack.client.hub.address
    start = stack.client.token_balance(hub)
    out = feed(engine, res, {payee: 150_000})
    assert (out["opened"], out["deposited"]) == (1, 300_000) and deposited(stack, payee) == 300_000
    nonce = hub_nonce(stack)
    out = feed(engine, res, {payee: 100_000})  # 250,000 owed: the deposit covers it, no transaction
    assert (out["vouchers"], out["topped_up"], out["opened"]) == (1, 0, 0) and hub_nonce(stack) == nonce
    out = feed(engine, res, {payee: 100_000})  # 350,000 > 300,000: topped up to twice 350,000
    assert (out["vouchers"], out["topped_up"], out["deposited"]) == (1, 1, 400_000)
    assert deposited(stack, payee) == 700_000 == start - stack.client.token_balance(hub)
    out = feed(engine, res, {payee: 1})  # a micro-payment: a voucher, no transaction
    assert (out["vouchers"], out["topped_up"]) == (1, 0)
    with Session(engine) as s:
        v = ledger.latest_voucher(s, payee)
        assert v.cumulative_amount == 350_001 <= deposited(stack, payee)  # never above the deposit
        assert s.scalar(select(PayeeChannel.deposited).where(PayeeChannel.contributor == payee)) == 700_000
    run_settle(res, threshold=0)
    assert stack.client.token_balance(payee) == 350_001
    check_money_rules(engine, stack.client, [payee])


def test_idle_channel_is_closed_and_reclaimed_after_the_challenge_period(engine: Engine, stack: Stack) -> None:
    """The idle channel's unpaid voucher is pushed before it closes (the receiver loses nothing);
    after the challenge period the rest of the deposit comes back to the hub, to the unit; credit
    that arrives meanwhile waits, stays owed, and is paid on the re-opened channel."""
    payee, busy = new_address(), new_address()
    client = stack.client
    hub = client.hub.address
    res = resources(stack, engine)
    feed(engine, res, {payee: 150_000, busy: 120_000})
    assert (deposited(stack, payee), deposited(stack, busy)) == (300_000, 240_000)
    assert client.token_balance(payee) == 0  # vouchered, not pushed (settle threshold not reached)

    assert run_reclaim(res)["closed"] == 0  # nothing idle for the default 30 days
    hub_before = client.token_balance(hub)
    out = run_reclaim(res, idle_seconds=0.0)
    assert (out["pushed"], out["closed"], out["settled"]) == (2, 2, 0)  # both idle at 0 s
    assert client.token_balance(payee) == 150_000 and client.token_balance(busy) == 120_000  # pushed first
    assert client.token_balance(hub) == hub_before  # nothing reclaimed during the challenge period
    for p in (payee, busy):
        assert client.get_channel(client.channel_id(p)).status == "closing"
        assert amounts_of(engine, p)[3] == amounts_of(engine, p)[2]  # settled = vouchered
    with Session(engine) as s:
        figures = ledger_figures(s, min_owed=MIN_OWED).channels
    assert (figures["channels_closing"], figures["deposits_closing"], figures["deposits_reclaimed"]) == (2, 270_000, 0)

    # credit arriving while it closes waits (no voucher on a closing channel) and stays owed
    out = feed(engine, res, {payee: 40_000})
    assert (out["vouchers"], out["skipped"]) == (0, 1)
    assert run_reclaim(res, idle_seconds=0.0) == {"closed": 0, "settled": 0, "reclaimed": 0, "pushed": 0,
                                                  "waiting": 2, "skipped": 0}
    stack.chain.increase_time(client.challenge_period() + 1)
    out = run_reclaim(res, idle_seconds=0.0)
    assert (out["settled"], out["reclaimed"], out["closed"]) == (2, 150_000 + 120_000, 0)
    assert client.token_balance(hub) - hub_before == 270_000  # exactly the unused deposits
    assert run_reclaim(res, idle_seconds=0.0)["reclaimed"] == 0  # again: nothing
    with Session(engine) as s:
        rows = {r.contributor: r for r in s.scalars(select(ChannelClosure))}
        assert {p: (r.status, r.deposited, r.paid, r.reclaimed) for p, r in rows.items()} == {
            payee: ("settled", 300_000, 150_000, 150_000), busy: ("settled", 240_000, 120_000, 120_000)}
        assert all(r.close_tx and r.settle_tx for r in rows.values())
        figures = ledger_figures(s, min_owed=MIN_OWED).channels
        assert ledger.check_invariants(s) == []
    assert (figures["deposits_reclaimed"], figures["channels_reclaimed"], figures["deposits_committed"]) == (270_000, 2, 0)
    scraped = scrape(engine, stack)  # what /metrics serves
    assert scraped["openchat_channel_deposits_reclaimed_base_units_total"] == 270_000
    assert scraped["openchat_channel_deposits_committed_base_units"] == 0
    assert scraped['openchat_payment_channels{state="reclaimed"}'] == 2
    assert (scraped["openchat_payees_below_minimum"], scraped["openchat_below_minimum_owed_base_units"]) == (1, 40_000)
    # the 40,000 that arrived meanwhile: owed, below the minimum for a new channel
    assert (figures["payees_below_minimum"], figures["below_minimum_owed"]) == (1, 40_000)
    assert amounts_of(engine, payee) == (190_000, 190_000, 150_000, 150_000)

    # it earns on: the channel re-opens (deposits are cumulative on chain) and every unit is paid
    out = feed(engine, res, {payee: 60_000})
    assert (out["opened"], out["vouchers"], out["deposited"]) == (1, 1, 2 * 250_000 - 150_000)
    run_settle(res, threshold=0)
    assert client.token_balance(payee) == 250_000 == amounts_of(engine, payee)[0]  # earned, all of it paid
    assert client.token_balance(busy) == 120_000 == amounts_of(engine, busy)[0]
    check_money_rules(engine, stack.client, [payee, busy])
    with Session(engine) as s:
        from payouts.reconcile import reconcile

        assert reconcile(s, stack.client).ok


@pytest.mark.slow  # ~15 s: two worker kills and broker redeliveries
def test_sigkill_mid_reclaim_closes_and_reclaims_once(stack: Stack, tmp_path: Path) -> None:
    """The real worker is killed after its close is mined and before the ledger records it, then
    after its settle is mined and before that is recorded: the redelivered task records each
    exactly once, from the chain, and the hub gets back exactly the unused deposit."""
    db = make_engine(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")  # its own ledger: only its channel is idle
    migrate(db)
    env = {**stack.env, "OPENCHAT_DATABASE_URL": f"sqlite:///{tmp_path / 'ledger.sqlite3'}",
           "OPENCHAT_DEPLOYMENT_FILE": str(stack.settings.resolved_deployment_file),
           "OPENCHAT_REDIS_KEY_PREFIX": f"openchat-test-{uuid.uuid4().hex[:10]}:", "OPENCHAT_PAYOUT_MIN_OWED": "100000",
           "OPENCHAT_CHANNEL_MIN_TOPUP": "100000", "OPENCHAT_SETTLE_THRESHOLD": str(10**12)}
    settings = PayoutsSettings(**{k.removeprefix("OPENCHAT_").lower(): v for k, v in env.items()})
    local = dataclasses.replace(stack, env=env, settings=settings, engine=db, app=create_celery(settings),
                                log_path=tmp_path / "worker.log", proc=None, starts=0, log_offset=0)
    client = stack.client
    payee = new_address()
    stack.stop_worker()
    try:
        local.start_worker()
        credit(db, {payee: 123_456})
        local.send("payouts.aggregate")
        local.wait_for(lambda: amounts_of(db, payee)[2] == 123_456, what="voucher")
        assert client.get_channel(client.channel_id(payee)).deposited == 246_912
        hub = client.token_balance(client.hub.address)

        local.stop_worker()
        local.start_worker(OPENCHAT_FAULT_PAUSE_SECONDS="60", OPENCHAT_FAULT_PAUSE_TASKS="reclaim")
        local.send("payouts.reclaim", idle_seconds=0.0)
        local.wait_log("PAUSE reclaim")
        local.kill_worker()  # the push and the close are mined; the closing is not recorded
        ch = client.get_channel(client.channel_id(payee))
        assert (ch.status, ch.paid) == ("closing", 123_456) and client.token_balance(payee) == 123_456
        with Session(db) as s:
            assert s.scalar(select(ChannelClosure.id)) is None
        local.start_worker()  # the unacknowledged task comes back: it records the closing from the chain
        local.wait_for(lambda: closure(db) is not None, timeout=90, what="closing recorded")
        assert (closure(db).status, closure(db).close_tx) == ("closing", None)

        stack.chain.increase_time(client.challenge_period() + 1)
        local.stop_worker()
        local.start_worker(OPENCHAT_FAULT_PAUSE_SECONDS="60", OPENCHAT_FAULT_PAUSE_TASKS="reclaim")
        local.send("payouts.reclaim", idle_seconds=0.0)
        local.wait_log("PAUSE reclaim")
        local.kill_worker()  # the settle is mined, not recorded
        assert client.get_channel(client.channel_id(payee)).status == "settled"
        assert closure(db).status == "closing"
        local.start_worker()
        local.wait_for(lambda: closure(db).status == "settled", timeout=90, what="settle recorded")
        row = closure(db)
        assert (row.deposited, row.paid, row.reclaimed) == (246_912, 123_456, 123_456) and row.settle_tx
        assert client.token_balance(client.hub.address) - hub == 123_456  # once
        local.send("payouts.reclaim", idle_seconds=0.0)
        local.send("payouts.settle")
        local.wait_for(lambda: re.search(r"Task payouts\.settle\[[^\]]+\] succeeded", local.log_text()) is not None,
                       what="a settle run")
        check_money_rules(db, client, [payee])
        assert client.token_balance(client.hub.address) - hub == 123_456
        with Session(db) as s:
            assert len(s.scalars(select(ChannelClosure)).all()) == 1
    finally:
        local.stop_worker()
        db.dispose()
        stack.start_worker()


def scrape(engine: Engine, stack: Stack) -> dict[str, float]:
    """The /metrics exposition's samples, by name and labels, as the API's registry renders them."""
    from prometheus_client.parser import text_string_to_metric_families

    from assistant.metrics import metrics_registry, render

    registry, _ = metrics_registry(lambda: engine, lambda: stack.app, ("payouts",), MIN_OWED)
    out = {}
    for family in text_string_to_metric_families(render(registry).decode()):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            out[sample.name + (f"{{{labels}}}" if labels else "")] = sample.value
    return out


def closure(engine: Engine) -> ChannelClosure | None:
    with Session(engine) as s:
        return s.scalars(select(ChannelClosure)).one_or_none()


def test_worker_beat_schedules_reclaim() -> None:
    app = create_celery(PayoutsSettings(reclaim_interval=123.0))
    entry = app.conf.beat_schedule["payouts-reclaim"]
    assert entry["task"] == "payouts.reclaim" and entry["schedule"].total_seconds() == 123.0
    assert app.conf.task_routes["payouts.reclaim"] == {"queue": "payouts.chain"}
    assert "payouts.reclaim" in app.tasks


def test_a_close_and_settle_the_ledger_missed_are_recorded_from_the_chain(engine: Engine, stack: Stack) -> None:
    """A reclaim run closed a channel and died before recording it; before any run came back the
    challenge period passed and someone settled it (anyone may). The next run finds the settle's
    log and records the closing and exactly what it refunded, once."""
    payee = new_address()
    client = stack.client
    res = resources(stack, engine)
    feed(engine, res, {payee: 130_000})
    run_settle(res, threshold=0)
    cid = client.channel_id(payee)
    hub = client.token_balance(client.hub.address)
    client.close_channel(cid)  # what the run that died had sent
    stack.chain.increase_time(client.challenge_period() + 1)
    client.settle(cid)
    assert client.token_balance(client.hub.address) - hub == 130_000
    out = run_reclaim(res, idle_seconds=0.0)
    assert (out["settled"], out["reclaimed"], out["closed"]) == (1, 130_000, 0)
    assert run_reclaim(res, idle_seconds=0.0) == {"closed": 0, "settled": 0, "reclaimed": 0, "pushed": 0,
                                                  "waiting": 0, "skipped": 0}
    row = closure(engine)
    assert (row.status, row.deposited, row.paid, row.reclaimed, row.close_tx) == ("settled", 260_000, 130_000, 130_000, None)
    with Session(engine) as s:
        assert ledger_figures(s, min_owed=MIN_OWED).channels["deposits_reclaimed"] == 130_000
        assert ledger.check_invariants(s) == []
    check_money_rules(engine, client, [payee])
