"""GET /v1/account: the caller's balance, deposit reference, on-chain deposits and spending."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from payouts import topups
from payouts.chain import DepositLog
from tests.assistant.test_api_knowledge import assert_openai_error
from tests.assistant.test_api_payments import CITED, PRICE, ask, koala  # noqa: F401 - koala is a fixture
from tests.assistant.test_operations import scrape, value
from tests.conftest import LiveServer, funded_account


def get(api: LiveServer, key: str | None, **params: object) -> dict:
    with api.client(key) as c:
        resp = c.get("/v1/account", params=params)
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_account_shows_balance_reference_and_spending_per_day(api: LiveServer, koala: str) -> None:  # noqa: F811
    account, key = funded_account(api, 5 * PRICE)
    body = get(api, key)
    assert body["object"] == "account" and body["account"] == account
    assert body["balance"] == 5 * PRICE and (body["token"], body["decimals"]) == ("ocUSD", 6)
    assert re.fullmatch(r"0x[0-9a-f]{64}", body["deposit_reference"])
    assert key not in str(body) and account not in body["deposit_reference"]
    assert body["deposits"] == []
    assert len(body["spending"]) == 30 and all(d["spent"] == 0 for d in body["spending"])
    assert body["spending"][-1]["day"] == datetime.now(UTC).date().isoformat()
    assert body["top_up"] is None  # this server has no chain deployment

    assert ask(api, key, CITED)["price"] == PRICE  # through the openai SDK
    after = get(api, key, days=7)
    assert after["balance"] == 4 * PRICE
    assert len(after["spending"]) == 7 and after["spending"][-1]["spent"] == PRICE
    assert sum(d["spent"] for d in after["spending"]) == PRICE
    # the reference is drawn once and kept; another account has another one
    assert after["deposit_reference"] == body["deposit_reference"]
    _, other = funded_account(api, 0)
    assert get(api, other)["deposit_reference"] != body["deposit_reference"]


def test_account_lists_its_deposits_with_their_status(api: LiveServer) -> None:
    account, key = funded_account(api, 0)
    ref = get(api, key)["deposit_reference"]
    engine = api.server.config.app.state.engine
    # two logs as the follower records them (the follower itself runs on anvil in tests/payouts)
    tx = "0x" + account.encode().hex().ljust(64, "0")
    logs = [DepositLog(31337, "0x" + "ab" * 20, tx, i, 100 + i, "0x" + f"{i + 7:064x}", ref,
                       "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", 1_000 * (i + 1)) for i in range(2)]
    with Session(engine) as s, s.begin():
        topups.record_seen(s, logs)
        [first] = topups.pending(s, 31337, logs[0].contract, up_to_block=100)
        assert topups.finalise(s, first) == "credited"
    body = get(api, key)
    assert body["balance"] == 1_000
    assert [(d["amount"], d["status"], d["log_index"]) for d in body["deposits"]] == [(2_000, "pending", 1),
                                                                                      (1_000, "credited", 0)]
    assert body["deposits"][1]["from"] == "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
    assert body["deposits"][1]["final_at"] and body["deposits"][0]["final_at"] is None


def test_operators_see_deposits_and_balances_in_metrics_and_status(api: LiveServer) -> None:
    account, key = funded_account(api, 0)
    ref = get(api, key)["deposit_reference"]
    engine = api.server.config.app.state.engine
    before = scrape(api)
    tx = "0x" + account.encode().hex().ljust(64, "1")
    logs = [DepositLog(31337, "0x" + "cd" * 20, tx, i, 50, "0x" + "ee" * 32, ref,
                       "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", 300 + i) for i in range(2)]
    with Session(engine) as s, s.begin():
        topups.record_seen(s, logs)
        first = next(r for r in topups.pending(s, 31337, logs[0].contract, up_to_block=50) if r.tx_hash == tx)
        assert topups.finalise(s, first) == "credited"
    after = scrape(api)
    for status, n, units in (("credited", 1, 300), ("pending", 1, 301)):
        assert value(after, "openchat_deposits", status=status) - value(before, "openchat_deposits", status=status) == n
        assert (value(after, "openchat_deposits_base_units", status=status)
                - value(before, "openchat_deposits_base_units", status=status)) == units
    assert (value(after, "openchat_account_balances_base_units")
            - value(before, "openchat_account_balances_base_units")) == 300
    url = api.settings.payouts.effective_database_url
    out = subprocess.run([str(Path(sys.executable).with_name("openchat")), "payouts", "status", "--json",
                          "--database-url", url], capture_output=True, text=True, timeout=120, check=True)
    status = json.loads(out.stdout)
    assert status["deposits_credited"] >= 1 and status["deposits_pending"] >= 1
    assert status["account_balances_base_units"] == value(after, "openchat_account_balances_base_units")


def test_account_needs_a_key_and_bounds_its_parameters(api: LiveServer) -> None:
    with api.client(None) as c:
        assert_openai_error(c.get("/v1/account"), 401, "missing_api_key")
    with api.client("not-a-key") as c:
        assert_openai_error(c.get("/v1/account"), 401, "invalid_api_key")
    _, key = funded_account(api, 0)
    with api.client(key) as c:
        for params in ({"days": 0}, {"days": 367}, {"limit": 0}, {"limit": 201}, {"days": "x"}):
            err = assert_openai_error(c.get("/v1/account", params=params), 400, "invalid_request")
            assert err["param"] in ("days", "limit")


@pytest.mark.parametrize("path", ["/balance"])
def test_balance_page_is_served_under_the_csp(api: LiveServer, path: str) -> None:
    with api.client(None) as c:
        resp = c.get(path)
    assert resp.status_code == 200 and "text/html" in resp.headers["content-type"]
    assert "connect-src 'self'" in resp.headers["content-security-policy"]
    assert '<script type="module" src="/static/balance.js">' in resp.text
