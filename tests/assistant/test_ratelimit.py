"""Per-account rate limits in process memory (no OPENCHAT_REDIS_URL): windows, budgets by endpoint
class, and 429 through the API in OpenAI's shape with an integer Retry-After."""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Iterator

import openai
import pytest
from sqlalchemy.orm import Session

from assistant.ratelimit import CHAT, WRITE, RateLimits, window
from assistant.settings import load_settings
from payouts import ledger
from retrieval.embedder import Embedder
from tests.assistant.test_api_knowledge import assert_openai_error
from tests.conftest import DEV_KEY, LiveServer, new_address, start_server

ASK = [{"role": "user", "content": "anything?"}]


def test_window_holds_the_burst_and_the_rate() -> None:
    item = window(120, 60, CHAT)
    assert item is not None and (item.amount, item.get_expiry()) == (60, 30)  # 60 per 30 s = 120 a minute
    item = window(1, 2, WRITE)
    assert item is not None and (item.amount, item.get_expiry()) == (2, 120)
    # A rate above the burst a second: the window cannot be shorter than a second, so the
    # burst grows to the rate of one second (the rate a minute is kept).
    item = window(6000, 1, CHAT)
    assert item is not None and (item.amount, item.get_expiry()) == (100, 1)
    assert window(0, 60, CHAT) is None


def test_budget_per_account_and_class_then_refills() -> None:
    limits = RateLimits({CHAT: window(60, 2, CHAT), WRITE: window(60, 2, WRITE)})  # 2 per 2 s each
    assert [limits.hit(CHAT, "a"), limits.hit(CHAT, "a")] == [None, None]
    wait = limits.hit(CHAT, "a")
    assert wait is not None and 0 < wait <= 2
    assert limits.hit(CHAT, "b") is None  # accounts are independent
    assert limits.hit(WRITE, "a") is None  # so are endpoint classes
    time.sleep(math.ceil(wait))  # Retry-After is honest: after it, a request goes through
    assert limits.hit(CHAT, "a") is None


def test_no_item_means_unlimited() -> None:
    limits = RateLimits({CHAT: window(0, 1, CHAT)})
    assert all(limits.hit(CHAT, "a") is None for _ in range(1000))
    assert limits.hit("an unknown class", "a") is None


@pytest.fixture(scope="module")
def limited(embedder: Embedder, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    settings = load_settings(data_dir=tmp_path_factory.mktemp("limited"), dev_api_key=DEV_KEY,
                             chat_rate_per_minute=1, chat_rate_burst=2, write_rate_per_minute=1, write_rate_burst=2,
                             read_rate_per_minute=1, read_rate_burst=4)
    assert settings.payouts.redis_url is None  # the memory storage
    live = start_server(settings, embedder)
    yield live
    live.stop()


def test_chat_429_in_openai_shape_through_the_sdk(limited: LiveServer) -> None:
    client = openai.OpenAI(base_url=f"{limited.url}/v1", api_key=DEV_KEY, max_retries=0)
    for _ in range(2):
        client.chat.completions.create(model="openchat-extractive", messages=ASK)  # type: ignore[arg-type]
    with pytest.raises(openai.RateLimitError) as err:
        client.chat.completions.create(model="openchat-extractive", messages=ASK)  # type: ignore[arg-type]
    assert err.value.code == "rate_limit_exceeded"
    assert err.value.body["type"] == "rate_limit_error"  # type: ignore[index]
    retry_after = err.value.response.headers["retry-after"]
    assert retry_after.isdigit() and 1 <= int(retry_after) <= 120
    with pytest.raises(openai.RateLimitError):  # streamed requests count against the same budget
        client.chat.completions.create(model="openchat-extractive", messages=ASK, stream=True)  # type: ignore[arg-type]


def test_writes_have_their_own_budget(limited: LiveServer) -> None:
    with limited.client() as c:
        who = new_address()
        for i in range(2):
            resp = c.post("/v1/contributions", json={"text": f"Rate limit fact number {i}.", "contributor": who})
            assert resp.status_code == 201, resp.text
        resp = c.post("/v1/contributions", json={"text": "One more fact.", "contributor": who})
        err = assert_openai_error(resp, 429, "rate_limit_exceeded")
        assert err["type"] == "rate_limit_error"
        assert resp.headers["Retry-After"].isdigit() and int(resp.headers["Retry-After"]) >= 1
        # Every write class shares the write budget: a data set and a conversation edit are refused too.
        files = {"file": ("facts.txt", b"Some text.", "text/plain")}
        assert_openai_error(c.post("/v1/datasets", files=files, data={"contributor": who}), 429, "rate_limit_exceeded")
        assert_openai_error(c.patch("/v1/conversations/conv_x", json={"title": "t"}), 429, "rate_limit_exceeded")
        assert_openai_error(c.delete("/v1/conversations/conv_x"), 429, "rate_limit_exceeded")
        # Reads have their own budget (not spent by the writes), and nothing was half-written
        # by the refused requests.
        assert c.get("/v1/conversations").status_code == 200
        stored = c.post("/v1/search", json={"query": "One more fact", "top_k": 10}).json()["data"]
        assert [h["snippet"] for h in stored if h["contributor"] == who and not h["snippet"].startswith("Rate")] == []
    with limited.client(key="wrong-key") as wrong:  # a bad key is 401 before any budget is looked at
        assert_openai_error(wrong.post("/v1/contributions", json={"text": "x", "contributor": who}), 401,
                            "invalid_api_key")


def test_reads_have_their_own_budget(limited: LiveServer) -> None:
    """A key may not page through the knowledge base's snippets without limit. Search, conversations and answers share the read budget."""
    account = f"reader-{uuid.uuid4().hex[:8]}"  # a budget of its own, whatever ran before
    with Session(limited.server.config.app.state.engine) as s, s.begin():
        key = ledger.create_api_key(s, account, name="reads")
        ledger.deposit(s, account, 10**9)
    with limited.client(key=key) as c:
        for _ in range(4):  # the burst
            assert c.post("/v1/search", json={"query": "octopus", "top_k": 5}).status_code == 200
        for refused in (c.post("/v1/search", json={"query": "octopus", "top_k": 5}), c.get("/v1/conversations"),
                        c.get("/v1/conversations/conv_x"), c.get("/v1/answers/ans_x")):
            assert_openai_error(refused, 429, "rate_limit_exceeded")
            assert refused.headers["Retry-After"].isdigit() and int(refused.headers["Retry-After"]) >= 1
        # Chat is another budget: still open to this account.
        chat = c.post("/v1/chat/completions", json={"model": "openchat-extractive", "messages": ASK})
        assert chat.status_code == 200, chat.text


def test_refusals_are_counted_in_metrics(limited: LiveServer) -> None:
    with limited.client() as c:
        for i in range(3):  # more than the budget, whichever tests ran before
            c.post("/v1/contributions", json={"text": f"Counted {i}.", "contributor": new_address()})
        body = c.get("/metrics").text
    refused = {line.split()[0]: float(line.split()[1]) for line in body.splitlines()
               if line.startswith("openchat_rate_limited_total")}
    assert refused['openchat_rate_limited_total{kind="write"}'] >= 1
    assert "openchat_rate_limit_store_errors_total 0.0" in body  # no Redis, so no store errors
