"""`openchat payouts reconcile` checks the reclaim run's closings against the chain's events
(issue 16): on the session's anvil, SQLite and PostgreSQL, a clean close and settle reconcile; a
ledger row doctored in any money column, or a settle the ledger has not recorded, makes it exit 1
naming the closing and both amounts."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from payouts.closing_audit import ChainClosing, closings_on_chain
from payouts.reconcile import reconcile
from payouts.tasks import run_reclaim
from tests.conftest import new_address
from tests.payouts.conftest import Stack
from tests.payouts.test_channel_deposits import feed, resources
from tests.payouts.test_worker import run_cli


def reconcile_cli(stack: Stack, engine: Engine) -> tuple[int, str]:
    done = run_cli(stack, "reconcile", "--database-url", engine.url.render_as_string(hide_password=False))
    return done.returncode, done.stdout + done.stderr


def test_closings_replayed_from_events() -> None:
    ev = [{"event": "ChannelOpened", "deposited": 300, "tx_hash": "0xa", "block": 1},
          {"event": "ChannelPushed", "paid": 100, "tx_hash": "0xb", "block": 2},
          {"event": "ChannelClosing", "closesAt": 99, "tx_hash": "0xc", "block": 3},
          {"event": "ChannelClaimed", "paid": 150, "tx_hash": "0xd", "block": 4},  # during the challenge period
          {"event": "ChannelSettled", "refund": 150, "tx_hash": "0xe", "block": 5},
          {"event": "ChannelOpened", "deposited": 350, "tx_hash": "0xf", "block": 6},  # re-opened: 200 more
          {"event": "ChannelClosing", "closesAt": 199, "tx_hash": "0x10", "block": 7}]
    assert closings_on_chain(ev) == [ChainClosing("0xc", 3, 99, 300, 100, "0xe", 5, 150, 150),
                                     ChainClosing("0x10", 7, 199, 350, 150)]


@pytest.mark.parametrize("column, delta, expected", [
    ("paid", -1, ["paid to the payee at close 149999 in the ledger (its settled amount then), 150000 on chain"]),
    ("reclaimed", -1, ["reclaimed 149999 in the ledger, the settle 0x",
                       "reclaimed 149999 != deposit at close 300000 - paid 150000 by the settle = 150000"]),
    ("deposited", 1, ["deposit at close 300001 in the ledger, 300000 on chain",
                      "reclaimed 150000 != deposit at close 300001 - paid 150000 by the settle = 150001"]),
])
def test_reconcile_checks_closings_and_names_a_doctored_one(engine: Engine, stack: Stack, column: str, delta: int,
                                                            expected: list[str]) -> None:
    payee, other = new_address(), new_address()
    client = stack.client
    res = resources(stack, engine)
    feed(engine, res, {payee: 150_000, other: 120_000})
    hub_before = client.token_balance(client.hub.address)
    assert run_reclaim(res, idle_seconds=0.0)["closed"] == 2  # unpaid vouchers pushed, then closed
    with Session(engine) as s:
        report = reconcile(s, client)
    assert report.ok and (report.closings_checked, report.chain_refunded) == (2, 0), report.problems

    # settled by anyone (here: the hub's key, outside the run): the ledger has not recorded it yet
    stack.chain.increase_time(client.challenge_period() + 1)
    client.settle(client.channel_id(payee))
    code, out = reconcile_cli(stack, engine)
    assert code == 1 and f"{payee}: closing #" in out and "(refund 150000) but the ledger still has it closing" in out
    assert run_reclaim(res, idle_seconds=0.0)["settled"] == 2
    assert client.token_balance(client.hub.address) - hub_before == 150_000 + 120_000

    code, out = reconcile_cli(stack, engine)
    assert code == 0 and "OK: ledger and chain agree" in out, out
    body = json.loads(run_cli(stack, "reconcile", "--json", "--database-url",
                              engine.url.render_as_string(hide_password=False)).stdout)
    assert (body["closings_checked"], body["closings_reclaimed"], body["chain_refunded"]) == (2, 270_000, 270_000)

    # one money column of the payee's closing doctored: reconcile fails, naming it and both figures
    with engine.begin() as conn:
        conn.execute(text(f"UPDATE channel_closures SET {column} = {column} + :d WHERE contributor = :a"),
                     {"d": delta, "a": payee})
    code, out = reconcile_cli(stack, engine)
    assert code == 1 and f"{len(expected)} difference(s):" in out, out
    for line in expected:
        assert f"  - {payee}: closing #" in out and line in out, out
    assert other not in out  # the other closing still agrees
    with engine.begin() as conn:
        conn.execute(text(f"UPDATE channel_closures SET {column} = {column} - :d WHERE contributor = :a"),
                     {"d": delta, "a": payee})
    assert reconcile_cli(stack, engine)[0] == 0
