"""Paid answers through the running app: 402, exact debits, credits, the contributors' API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import httpx
import openai
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from assistant.accounts import DEV_ACCOUNT, DEV_BALANCE_REF, grant_dev_balance
from assistant.auth import ApiKeys
from payouts import ledger
from payouts.models import AnswerPayment, Credit, JournalEntry
from tests.assistant.test_api_chat import MODEL, sdk
from tests.assistant.test_api_knowledge import assert_openai_error
from tests.conftest import LiveServer, new_address

PRICE, FEE = 10_000, 1_000  # the defaults: 0.01 ocUSD per answer, 10% platform fee
CITED = "What do koalas eat?"
UNANSWERABLE = "What was the GDP of Portugal in 1987?"


_KOALA_TEXT = "Koalas eat almost nothing but eucalyptus leaves, which few other animals can digest."
_koalas: dict[str, str] = {}  # server url -> the contributor who stored the fact there


@pytest.fixture
def koala(api: LiveServer) -> str:
    """A fact from its own contributor, stored once per server (other modules use it too)."""
    if api.url not in _koalas:
        who = new_address()
        with api.client() as c:
            resp = c.post("/v1/contributions", json={"text": _KOALA_TEXT, "title": "Koala diet", "contributor": who})
            assert resp.status_code == 201, resp.text
        _koalas[api.url] = who
    return _koalas[api.url]


def asker(api: LiveServer, balance: int) -> tuple[str, str]:
    """A new account with ``balance`` base units and its key; (account, key)."""
    account, key = f"acct-{uuid.uuid4().hex[:8]}", f"key-{uuid.uuid4().hex}"
    app = api.server.config.app
    keys = dict(app.state.api_keys._keys)
    keys[key] = account
    app.state.api_keys = ApiKeys(keys)
    if balance:
        with Session(app.state.engine) as s, s.begin():
            ledger.deposit(s, account, balance, ref="test")
    return account, key


def engine(api: LiveServer):  # type: ignore[no-untyped-def]
    return api.server.config.app.state.engine


def balance_of(api: LiveServer, account: str) -> int:
    with Session(engine(api)) as s:
        return ledger.balance(s, account)


def ask(api: LiveServer, key: str, question: str, stream: bool = False) -> dict:
    client = sdk(api, key)
    messages = [{"role": "user", "content": question}]
    if stream:
        chunks = list(client.chat.completions.create(model=MODEL, messages=messages, stream=True))
        return chunks[-1].model_extra["openchat"]
    return client.chat.completions.create(model=MODEL, messages=messages).model_extra["openchat"]


@pytest.mark.parametrize("stream", [False, True])
def test_empty_balance_is_402_before_anything(api: LiveServer, koala: str, stream: bool) -> None:
    account, key = asker(api, PRICE - 1)
    with Session(engine(api)) as s:
        answers_before = s.scalar(select(func.count()).select_from(AnswerPayment))
    with pytest.raises(openai.APIStatusError) as err:
        ask(api, key, CITED, stream=stream)
    assert err.value.status_code == 402
    body = err.value.response.json()
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["type"] == "insufficient_quota" and body["error"]["code"] == "insufficient_quota"
    assert account in body["error"]["message"]
    assert balance_of(api, account) == PRICE - 1
    with Session(engine(api)) as s:
        assert s.scalar(select(func.count()).select_from(AnswerPayment)) == answers_before
    # Nothing was streamed: the raw request gets a JSON error, not an event stream.
    with httpx.Client(base_url=api.url, headers={"Authorization": f"Bearer {key}"}) as c:
        resp = c.post("/v1/chat/completions", json={"model": MODEL, "stream": True,
                                                     "messages": [{"role": "user", "content": CITED}]})
    assert_openai_error(resp, 402, "insufficient_quota")
    assert resp.headers["content-type"].startswith("application/json")


def test_balance_is_debited_exactly_and_money_balances(api: LiveServer, koala: str) -> None:
    start = 10 * PRICE
    account, key = asker(api, start)
    results = [ask(api, key, CITED), ask(api, key, CITED, stream=True), ask(api, key, UNANSWERABLE),
               ask(api, key, CITED)]
    cited = [r for r in results if r["credits"]]
    uncited = [r for r in results if not r["credits"]]
    assert len(cited) == 3 and len(uncited) == 1
    assert all(r["price"] == PRICE and r["credits"] == [{"contributor": koala, "amount": PRICE - FEE}] for r in cited)
    # No verified citation: no contributor credit, the asker pays only the platform's base fee.
    assert uncited[0]["price"] == FEE
    assert balance_of(api, account) == start - 3 * PRICE - FEE
    ids = [r["answer_id"] for r in results]
    with Session(engine(api)) as s:
        debits = s.scalar(select(func.sum(AnswerPayment.total)).where(AnswerPayment.answer_id.in_(ids)))
        fees = s.scalar(select(func.sum(AnswerPayment.fee)).where(AnswerPayment.answer_id.in_(ids)))
        credits = s.scalar(select(func.sum(Credit.amount)).where(Credit.answer_id.in_(ids)))
        assert (debits, fees, credits) == (3 * PRICE + FEE, 4 * FEE, 3 * (PRICE - FEE))
        assert debits == credits + fees
        assert s.scalar(select(func.count()).select_from(Credit).where(Credit.answer_id == uncited[0]["answer_id"])) == 0
        entries = s.execute(select(JournalEntry.kind, JournalEntry.delta).where(JournalEntry.holder == f"account:{account}")
                            .order_by(JournalEntry.id)).all()
        assert [d for k, d in entries if k not in ("hold", "release")] == [start, -PRICE, -PRICE, -FEE, -PRICE]
        # Each answer's price was held before it was delivered and given back when it was recorded.
        assert [(k, d) for k, d in entries if k in ("hold", "release")] == [("hold", -PRICE), ("release", PRICE)] * 4
        assert ledger.check_invariants(s) == []  # every money rule, over everything this server did
    # The answer shows its credit with its payout status, per source too.
    with api.client(key) as c:
        ans = c.get(f"/v1/answers/{cited[0]['answer_id']}").json()
        none = c.get(f"/v1/answers/{uncited[0]['answer_id']}").json()
    assert ans["price"] == PRICE
    assert [(c["contributor"], c["amount"], c["status"], c["settlement_tx"]) for c in ans["credits"]] == \
        [(koala, PRICE - FEE, "credited", None)]
    assert [(s["contributor"], s["credited_amount"], s["payout_status"]) for s in ans["sources"]] == \
        [(koala, PRICE - FEE, "credited")]
    assert none["price"] == FEE and none["credits"] == [] and none["sources"] == []


def test_concurrent_streams_deliver_only_what_is_paid(api: LiveServer, koala: str) -> None:
    # Funded for exactly one answer, 20 streams at once: the price is held before the first
    # byte, so one is delivered and paid, the other 19 are refused before they start.
    account, key = asker(api, PRICE)
    outcomes: list[object] = []

    def stream() -> None:
        try:
            chunks = list(sdk(api, key).chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": CITED}], stream=True))
            text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
            outcomes.append("delivered" if "eucalyptus" in text else text)
        except openai.APIStatusError as exc:
            outcomes.append(exc.status_code)

    threads = [threading.Thread(target=stream) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes, key=str) == [402] * 19 + ["delivered"], outcomes
    with Session(engine(api)) as s:
        paid = s.scalars(select(AnswerPayment.total).where(AnswerPayment.account_id == account)).all()
        assert paid == [PRICE] and ledger.balance(s, account) == 0
        assert ledger.check_invariants(s) == []


def test_contributor_earnings_paginated(api: LiveServer, koala: str) -> None:
    _, key = asker(api, 2 * PRICE)
    ask(api, key, CITED)
    ask(api, key, CITED)
    with api.client(None) as c:  # public: no key
        full = c.get(f"/v1/contributors/{koala.lower()}").json()
        page = c.get(f"/v1/contributors/{koala}", params={"limit": 1, "offset": 1}).json()
    n = full["credits"]["total"]
    assert full["address"] == koala and n >= 2 and full["earned"] == n * (PRICE - FEE)
    assert (full["batched"], full["vouchered"], full["settled"], full["unsettled"]) == (0, 0, 0, 0)
    assert [i["status"] for i in full["credits"]["items"]] == ["credited"] * n
    # Why no voucher comes yet: what is owed is below the minimum payout (no channel for it).
    minimum = api.settings.payouts.payout_min_owed
    assert full["payout_minimum"] == minimum and full["below_minimum_payout"] == (full["earned"] < minimum)
    assert page["credits"]["limit"] == 1 and page["credits"]["offset"] == 1
    assert [i["answer_id"] for i in page["credits"]["items"]] == [full["credits"]["items"][1]["answer_id"]]


def test_contributor_errors_and_unknowns(api: LiveServer) -> None:
    nobody = new_address()
    with api.client(None) as c:
        assert_openai_error(c.get("/v1/contributors/0x123"), 400, "invalid_address")
        good = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"  # EIP-55's own example
        assert_openai_error(c.get(f"/v1/contributors/{good.replace('aA', 'Aa', 1)}"), 400, "invalid_address")
        assert c.get(f"/v1/contributors/{good.lower()}").json()["address"] == good
        assert_openai_error(c.get("/v1/contributors/0x123/voucher"), 400, "invalid_address")
        zero = c.get(f"/v1/contributors/{nobody}")
        assert zero.status_code == 200 and zero.json()["earned"] == 0 and zero.json()["credits"]["items"] == []
        assert zero.json()["below_minimum_payout"] is False  # owed nothing: not waiting for the minimum
        assert_openai_error(c.get(f"/v1/contributors/{nobody}/voucher"), 404, "no_voucher")
        assert_openai_error(c.get(f"/v1/contributors/{nobody}", params={"limit": 0}), 400)


def test_dev_balance_is_granted_once(api: LiveServer) -> None:
    settings = api.settings
    with Session(engine(api)) as s:
        grants = s.scalars(select(JournalEntry.delta).where(
            JournalEntry.holder == f"account:{DEV_ACCOUNT}", JournalEntry.ref == DEV_BALANCE_REF)).all()
    assert grants == [settings.app.dev_balance]
    assert grant_dev_balance(engine(api), settings.app.dev_balance) is False  # a restart grants nothing
    with Session(engine(api)) as s:
        assert s.scalar(select(func.count()).select_from(JournalEntry).where(
            JournalEntry.ref == DEV_BALANCE_REF)) == 1


def test_accounts_cli_funds_and_shows(tmp_path: Path) -> None:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("OPENCHAT_")}, "OPENCHAT_DATA_DIR": str(tmp_path)}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "assistant.cli", "accounts", *args], env=env, check=False,
                              capture_output=True, text=True, timeout=120)

    first = cli("fund", "alice", "2500000")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout) == {"account": "alice", "deposited": 2_500_000, "balance": 2_500_000}
    assert json.loads(cli("fund", "alice", "1", "--ref", "invoice-7").stdout)["balance"] == 2_500_001
    shown = cli("show", "alice")
    assert shown.returncode == 0
    summary = json.loads(shown.stdout)
    assert summary["balance"] == 2_500_001
    assert [(e["delta"], e["ref"]) for e in summary["journal"]] == [(1, "invoice-7"), (2_500_000, "operator")]
    bad = cli("fund", "alice", "0")
    assert bad.returncode == 2 and "positive" in bad.stderr
    missing = cli("show", "nobody")
    assert missing.returncode == 1 and "no account" in missing.stderr
    issued = cli("key", "alice", "--name", "laptop")
    assert issued.returncode == 0, issued.stderr
    key = json.loads(issued.stdout)["key"]
    assert key.startswith("oc-") and json.loads(issued.stdout)["account"] == "alice"
    assert cli("revoke", key).returncode == 0
    assert cli("revoke", key).returncode == 1  # already revoked


def test_out_of_range_ids_are_client_errors(api: LiveServer) -> None:
    with api.client(None) as c:
        assert_openai_error(c.get(f"/v1/contributions/{2**70}/proof"), 400)
        assert_openai_error(c.get("/v1/contributions/0/proof"), 400)
        assert_openai_error(c.get(f"/v1/contributors/{new_address()}", params={"offset": 2**70}), 400)
        assert_openai_error(c.get("/v1/contributions/1/proof", params={"offset": 2**70}), 400)


def test_ledger_issued_keys_authenticate_and_pay(api: LiveServer, koala: str) -> None:
    account = f"acct-{uuid.uuid4().hex[:8]}"
    with Session(engine(api)) as s, s.begin():
        key = ledger.create_api_key(s, account, name="test")
    with pytest.raises(openai.APIStatusError) as err:  # a known key, but nothing to pay with
        ask(api, key, CITED)
    assert err.value.status_code == 402
    with Session(engine(api)) as s, s.begin():
        ledger.deposit(s, account, PRICE)
    assert ask(api, key, CITED)["price"] == PRICE
    assert balance_of(api, account) == 0
    with Session(engine(api)) as s, s.begin():
        assert ledger.revoke_api_key(s, key)
    with pytest.raises(openai.AuthenticationError):
        ask(api, key, CITED)
