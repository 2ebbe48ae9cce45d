"""Prices that follow a remote model's tokens, through the real API (SQLite and PostgreSQL).

litellm's mock_response stands in for the provider only; its usage is counted with litellm's
token counter, as the hold is. Everything else is real: the app, retrieval, the prompt, the
citations, the ledger and its journal.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from assistant.settings import load_settings
from payouts import ledger
from payouts.models import AnswerHold, AnswerPayment, JournalEntry
from retrieval.embedder import Embedder
from tests.conftest import (
    DEV_KEY,
    LiveServer,
    database_for,
    funded_account,
    mock_model,
    new_address,
    start_server,
)

PRICE, FEE_BPS, PER_1K_PROMPT, PER_1K_COMPLETION = 10_000, 1_000, 1_000, 4_000
FEE = PRICE * FEE_BPS // 10_000
MAX_TOKENS, HISTORY_TOKENS = 2_048, 600
SATURN = "Saturn's rings are made mostly of water ice, with a smaller amount of rocky debris and dust."
SHORT = "Saturn's rings are made mostly of water ice [1]."
LONG = SHORT + " " + " ".join(["The rings are made mostly of water ice, with rocky debris and dust [1]."] * 40)
QUESTION = "What are Saturn's rings made of?"


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def priced(request: pytest.FixtureRequest, embedder: Embedder, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data_dir: Path = tmp_path_factory.mktemp(f"prices-{request.param}")

    models = [mock_model("mock-short", SHORT), mock_model("mock-long", LONG),
              mock_model("mock-uncited", "My sources do not answer this question."),
              mock_model("broken", "litellm.InternalServerError")]
    with database_for(request.param) as database_url:
        settings = load_settings(
            data_dir=data_dir, dev_api_key=DEV_KEY, database_url=database_url, llm_models=models, llm_retries=0,
            chat_max_tokens=MAX_TOKENS, chat_history_tokens=HISTORY_TOKENS, price_per_answer=PRICE,
            platform_fee_bps=FEE_BPS, price_per_1k_prompt_tokens=PER_1K_PROMPT,
            price_per_1k_completion_tokens=PER_1K_COMPLETION)
        live = start_server(settings, embedder)
        with live.client() as c:
            assert c.post("/v1/contributions", json={"text": SATURN, "contributor": new_address()}).status_code == 201
        yield live
        live.stop()


def engine(api: LiveServer):  # type: ignore[no-untyped-def]
    return api.server.config.app.state.engine


def asker(api: LiveServer, balance: int) -> tuple[str, str]:
    """A new account with ``balance`` base units and its key."""
    return funded_account(api, balance)


def money(api: LiveServer, account: str) -> tuple[int, list[tuple[str, int]]]:
    """The account's balance and its journal (kind, delta) after its deposit."""
    with Session(engine(api)) as s:
        rows = s.execute(select(JournalEntry.kind, JournalEntry.delta).where(JournalEntry.holder == f"account:{account}")
                         .order_by(JournalEntry.id)).all()
        return ledger.balance(s, account), [(k, int(d)) for k, d in rows][1:]


def invariants(api: LiveServer) -> list[str]:
    with Session(engine(api)) as s:
        return ledger.check_invariants(s)


def sdk(api: LiveServer, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{api.url}/v1", api_key=key, max_retries=0, timeout=60)


def ask(api: LiveServer, key: str, model: str, stream: bool = False, messages: list[dict[str, str]] | None = None,
        **params: Any) -> tuple[str, dict[str, Any], dict[str, int]]:
    """(text, the ``openchat`` extra, usage) of one answer."""
    messages = messages or [{"role": "user", "content": QUESTION}]
    client = sdk(api, key)
    if stream:
        chunks = list(client.chat.completions.create(model=model, messages=messages, stream=True, **params))
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        last = chunks[-1]
        return text, last.model_extra["openchat"], last.usage.model_dump()
    done = client.chat.completions.create(model=model, messages=messages, **params)
    return done.choices[0].message.content or "", done.model_extra["openchat"], done.usage.model_dump()


def expected(usage: dict[str, int], max_tokens: int, cited: bool = True) -> dict[str, int]:
    """The documented price of an answer with this usage (docs/assistant.md, Prices)."""
    prompt = ceil_div(usage["prompt_tokens"] * PER_1K_PROMPT, 1_000)
    completion = ceil_div(usage["completion_tokens"] * PER_1K_COMPLETION, 1_000)
    held = PRICE + prompt + ceil_div(max_tokens * PER_1K_COMPLETION, 1_000)
    price = (PRICE if cited else FEE) + prompt + completion
    return {"prompt": prompt, "completion": completion, "held": held, "price": price, "refunded": held - price}


def test_max_tokens_past_the_cap_is_400_before_anything(priced: LiveServer) -> None:
    account, key = asker(priced, 100_000)
    with httpx.Client(base_url=priced.url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as c:
        for field in ("max_tokens", "max_completion_tokens"):
            for stream in (False, True):
                resp = c.post("/v1/chat/completions", json={
                    "model": "mock-short", "stream": stream, field: MAX_TOKENS + 1,
                    "messages": [{"role": "user", "content": QUESTION}]})
                assert resp.status_code == 400 and resp.headers["content-type"].startswith("application/json")
                error = resp.json()["error"]
                assert (error["param"], error["code"], error["type"]) == ("max_tokens", "max_tokens_too_large",
                                                                          "invalid_request_error")
                assert f"at most {MAX_TOKENS}" in error["message"] and str(MAX_TOKENS + 1) in error["message"]
    assert money(priced, account) == (100_000, [])  # nothing held, nothing charged
    _, extra, usage = ask(priced, key, "mock-short", max_tokens=MAX_TOKENS)  # the cap itself is allowed
    assert extra["price_breakdown"]["held"] == expected(usage, MAX_TOKENS)["held"] == \
        PRICE + usage["prompt_tokens"] + MAX_TOKENS * 4


@pytest.mark.parametrize("stream", [False, True])
def test_price_follows_tokens_held_at_worst_case_charged_at_actual(priced: LiveServer, stream: bool) -> None:
    start = 1_000_000
    account, key = asker(priced, start)
    short_text, short, short_usage = ask(priced, key, "mock-short", stream, max_tokens=1_024)
    long_text, long, long_usage = ask(priced, key, "mock-long", stream, max_tokens=1_024)
    assert (short_text, long_text) == (SHORT, LONG)
    assert long_usage["completion_tokens"] > 10 * short_usage["completion_tokens"]
    for extra, usage in ((short, short_usage), (long, long_usage)):
        want = expected(usage, 1_024)
        b = extra["price_breakdown"]
        assert extra["price"] == b["price"] == want["price"]
        assert b == {"metered": True, "base": PRICE, "fee": FEE, "contributors": PRICE - FEE,
                     "prompt_tokens": usage["prompt_tokens"], "per_1k_prompt_tokens": PER_1K_PROMPT,
                     "prompt": want["prompt"], "completion_tokens": usage["completion_tokens"],
                     "per_1k_completion_tokens": PER_1K_COMPLETION, "completion": want["completion"], "waived": 0,
                     "price": want["price"], "held": want["held"], "refunded": want["refunded"]}
        assert b["fee"] + b["contributors"] + b["prompt"] + b["completion"] == b["price"]
        assert [c["amount"] for c in extra["credits"]] == [PRICE - FEE]  # the pool does not grow with tokens
    # The same question and sources: the long answer costs more by its extra completion tokens.
    assert long["price"] > short["price"]
    assert long["price"] - short["price"] == long["price_breakdown"]["completion"] - short["price_breakdown"]["completion"] \
        + long["price_breakdown"]["prompt"] - short["price_breakdown"]["prompt"]
    balance, journal = money(priced, account)
    assert balance == start - short["price"] - long["price"]
    # Held before the first byte: the completion's worst case before retrieval, then the
    # prompt's before the model call; given back whole and the actual price taken.
    completion_worst = ceil_div(1_024 * PER_1K_COMPLETION, 1_000)
    assert journal == [entry for extra in (short, long) for entry in (
        ("hold", -(PRICE + completion_worst)), ("hold", -extra["price_breakdown"]["prompt"]),
        ("release", extra["price_breakdown"]["held"]), ("answer_debit", -extra["price"]))]
    with Session(engine(priced)) as s:
        for extra in (short, long):
            row = s.get(AnswerPayment, extra["answer_id"])
            usage_cost = extra["price_breakdown"]["prompt"] + extra["price_breakdown"]["completion"]
            assert (row.total, row.fee, row.pool, row.price) == (extra["price"], FEE + usage_cost, PRICE - FEE, PRICE)
            kinds = dict(s.execute(select(JournalEntry.kind, JournalEntry.delta).where(
                JournalEntry.answer_id == extra["answer_id"], JournalEntry.holder == "platform")).all())
            assert kinds == {"fee": FEE, "model_usage": usage_cost}
            hold = s.get(AnswerHold, extra["answer_id"])
            assert (hold.status, hold.amount) == ("settled", extra["price_breakdown"]["held"])
    assert invariants(priced) == []
    with priced.client(key) as c:
        assert c.get(f"/v1/answers/{long['answer_id']}").json()["price"] == long["price"]


def test_an_uncited_answer_still_pays_its_tokens(priced: LiveServer) -> None:
    account, key = asker(priced, 100_000)
    _, extra, usage = ask(priced, key, "mock-uncited", max_tokens=256)
    want = expected(usage, 256, cited=False)
    b = extra["price_breakdown"]
    assert extra["credits"] == [] and (b["fee"], b["contributors"]) == (FEE, 0)
    assert extra["price"] == want["price"] == FEE + b["prompt"] + b["completion"] and b["refunded"] == want["refunded"]
    assert money(priced, account)[0] == 100_000 - want["price"]
    assert invariants(priced) == []


def test_the_history_sent_to_the_model_is_capped(priced: LiveServer) -> None:
    _, key = asker(priced, 1_000_000)
    history: list[dict[str, str]] = []
    for i in range(60):
        history += [{"role": "user", "content": f"Tell me about ring {i}. " + "Tell me more. " * 20},
                    {"role": "assistant", "content": f"Ring {i} is icy. " + "It is icy indeed. " * 20}]
    alone = ask(priced, key, "mock-short", messages=[{"role": "user", "content": QUESTION}])[2]["prompt_tokens"]
    _, extra, usage = ask(priced, key, "mock-short", messages=[*history, {"role": "user", "content": QUESTION}])
    history_tokens = usage["prompt_tokens"] - alone
    # ~6,000 tokens of history were sent; at most the cap reached the model (and the price).
    # (The sources' fences carry a random nonce: a prompt's count varies by a few tokens.)
    assert 0 < history_tokens <= HISTORY_TOKENS + 16, history_tokens
    assert extra["price_breakdown"]["prompt"] == usage["prompt_tokens"]  # 1,000 per 1k: a unit a token


def test_system_messages_past_the_history_cap_are_400_and_give_the_hold_back(priced: LiveServer) -> None:
    account, key = asker(priced, 100_000)
    with pytest.raises(openai.BadRequestError) as err:
        ask(priced, key, "mock-short", messages=[{"role": "system", "content": "Speak like a pirate. " * 300},
                                                 {"role": "user", "content": QUESTION}])
    body = err.value.response.json()["error"]
    assert (body["code"], body["param"]) == ("history_too_long", "messages") and f"at most {HISTORY_TOKENS}" in body["message"]
    balance, journal = money(priced, account)
    assert balance == 100_000 and journal[-1][0] == "release" and sum(d for _, d in journal) == 0


def test_a_balance_short_of_the_worst_case_is_402_before_the_model(priced: LiveServer) -> None:
    # "broken" fails whenever it is called (502): a 402 from it shows the model was not called.
    completion_worst = ceil_div(512 * PER_1K_COMPLETION, 1_000)
    account, key = asker(priced, PRICE + completion_worst - 1)  # short of even the completion's worst case
    for stream in (False, True):
        with pytest.raises(openai.APIStatusError) as err:
            ask(priced, key, "broken", stream, max_tokens=512)
        assert err.value.status_code == 402 and err.value.response.headers["content-type"].startswith("application/json")
    assert money(priced, account) == (PRICE + completion_worst - 1, [])
    # Enough for the completion, not for the prompt: held, then refused once the prompt is
    # counted, before the model call; the hold goes back whole.
    account, key = asker(priced, PRICE + completion_worst + 10)
    with pytest.raises(openai.APIStatusError) as err:
        ask(priced, key, "broken", max_tokens=512)
    assert err.value.status_code == 402 and "prompt tokens" in err.value.response.json()["error"]["message"]
    assert money(priced, account) == (PRICE + completion_worst + 10,
                                      [("hold", -(PRICE + completion_worst)), ("release", PRICE + completion_worst)])
    # Funded for the worst case, the model is called (and fails: 502, everything given back).
    _, key = asker(priced, 100_000)
    with pytest.raises(openai.InternalServerError) as err:
        ask(priced, key, "broken", max_tokens=512)
    assert err.value.status_code == 502
    assert invariants(priced) == []


def test_concurrent_streams_deliver_only_the_worst_cases_funded(priced: LiveServer) -> None:
    _, probe_key = asker(priced, 100_000)
    held = ask(priced, probe_key, "mock-short", True, max_tokens=64)[1]["price_breakdown"]["held"]
    # Funded for 3.5 worst cases: 3 answers at once hold 3, a fourth does not fit; and since an
    # answer gives back at most 52 unused tokens (208 units), no later one fits either.
    k = 3
    account, key = asker(priced, k * held + held // 2)
    outcomes: list[object] = []
    extras: list[dict[str, Any]] = []

    def stream() -> None:
        try:
            text, extra, _ = ask(priced, key, "mock-short", True, max_tokens=64)
            outcomes.append("delivered" if text == SHORT else text)
            extras.append(extra)
        except openai.APIStatusError as exc:
            outcomes.append(exc.status_code)

    threads = [threading.Thread(target=stream) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes, key=str) == [402] * (12 - k) + ["delivered"] * k, outcomes
    balance, journal = money(priced, account)
    assert balance == k * held + held // 2 - sum(e["price"] for e in extras)
    assert all(e["price"] < e["price_breakdown"]["held"] for e in extras)  # each refunded its unused tokens
    assert sum(d for kind, d in journal if kind == "answer_debit") == -sum(e["price"] for e in extras)
    with Session(engine(priced)) as s:
        paid = s.scalars(select(AnswerPayment.total).where(AnswerPayment.account_id == account)).all()
        assert sorted(paid) == sorted(e["price"] for e in extras)
        holds = s.scalars(select(AnswerHold.status).where(AnswerHold.account_id == account)).all()
        # The refused ones held nothing, or their completion's worst case and gave it back.
        assert holds.count("settled") == k and set(holds) <= {"settled", "released"}
    assert invariants(priced) == []
