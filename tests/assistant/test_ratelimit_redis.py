"""Rate limits shared through Redis by several API instances; Redis down or restarted: requests are
still served (fail open to each instance's own budget), a warning is logged and a metric counts it."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
import redis

from assistant.settings import Settings, load_settings
from retrieval.embedder import Embedder
from tests.conftest import (
    DEV_KEY,
    LiveServer,
    free_port,
    new_address,
    redis_scratch_prefix,
    start_server,
)
from tests.payouts.conftest import OwnRedis

# Our own database number on the machine's Redis, so no other test's keys are in the way.
REDIS_URL = os.environ.get("OPENCHAT_TEST_RATELIMIT_REDIS_URL", "redis://127.0.0.1:6379/11")
ASK = [{"role": "user", "content": "anything?"}]
# Chat: 3 per 180 s; writes: 2 per 120 s. Windows far longer than a test, so nothing refills.
LIMITS = {"chat_rate_per_minute": 1, "chat_rate_burst": 3, "write_rate_per_minute": 1, "write_rate_burst": 2}


def limited_settings(data_dir: Path, redis_url: str | None, prefix: str) -> Settings:
    return load_settings(data_dir=data_dir, dev_api_key=DEV_KEY, redis_url=redis_url, redis_key_prefix=prefix,
                         **LIMITS)


@pytest.fixture
def prefix() -> Iterator[str]:
    """A key prefix of this test's own; its keys are removed afterwards."""
    with redis_scratch_prefix(REDIS_URL, "ratelimit-test") as value:
        yield value


def pair(tmp_path: Path, embedder: Embedder, redis_url: str | None, prefix: str) -> tuple[LiveServer, LiveServer]:
    """Two API instances (own data dirs, own processes' worth of state) on the same Redis."""
    return (start_server(limited_settings(tmp_path / "a", redis_url, prefix), embedder),
            start_server(limited_settings(tmp_path / "b", redis_url, prefix), embedder))


def sdk(live: LiveServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{live.url}/v1", api_key=DEV_KEY, max_retries=0)


# Unrelated facts: near-copies of stored text would be refused (409) by the knowledge base.
FACTS = [
    "Octopuses have three hearts and blue blood.", "The Danube flows through ten countries.",
    "Honey found in ancient Egyptian tombs was still edible.", "Venus rotates in the opposite direction to Earth.",
    "A group of flamingos is called a flamboyance.", "Bamboo can grow almost a metre in a single day.",
    "The Eiffel Tower grows taller in summer as the iron expands.", "Sharks existed before trees did.",
    "Bananas are botanically berries, strawberries are not.", "The shortest war lasted under an hour.",
    "Wombat droppings are cube-shaped.", "Saturn would float in a bathtub large enough to hold it.",
    "Sloths can hold their breath longer than dolphins.", "Scotland's national animal is the unicorn.",
    "Lightning strikes the Earth about forty times a second.", "A day on Mercury lasts two of its years.",
    "Cows have best friends and get stressed apart.", "Oxford University is older than the Aztec Empire.",
]
_written: dict[str, int] = {}


def contribute(live: LiveServer) -> httpx.Response:
    with live.client() as c:
        n = _written[live.url] = _written.get(live.url, -1) + 1  # each instance has its own knowledge base
        return c.post("/v1/contributions", json={"text": FACTS[n], "contributor": new_address()})


def metric(live: LiveServer, name: str) -> float:
    with live.client() as c:
        lines = c.get("/metrics").text.splitlines()
    return sum(float(line.split()[-1]) for line in lines if line.startswith(name))


def test_two_instances_share_one_budget_per_key(tmp_path: Path, embedder: Embedder, prefix: str) -> None:
    a, b = pair(tmp_path, embedder, REDIS_URL, prefix)
    try:
        for live in (a, b, a):  # 3 chats between them: the whole chat budget
            sdk(live).chat.completions.create(model="openchat-extractive", messages=ASK)  # type: ignore[arg-type]
        for live in (b, a):
            with pytest.raises(openai.RateLimitError) as err:
                sdk(live).chat.completions.create(model="openchat-extractive", messages=ASK)  # type: ignore[arg-type]
            assert err.value.code == "rate_limit_exceeded"
            assert int(err.value.response.headers["retry-after"]) >= 1
        # Writes have their own budget, shared the same way.
        assert contribute(a).status_code == 201
        assert contribute(b).status_code == 201
        for live in (a, b):
            resp = contribute(live)
            assert resp.status_code == 429 and resp.json()["error"]["type"] == "rate_limit_error", resp.text
        assert metric(a, "openchat_rate_limit_store_errors_total") == 0
        keys = list(redis.Redis.from_url(REDIS_URL).scan_iter(match=f"{prefix}ratelimit*"))
        assert keys, "the counters are in Redis"
    finally:
        a.stop()
        b.stop()


def test_without_redis_each_instance_has_its_own_budget(tmp_path: Path, embedder: Embedder) -> None:
    """The contrast to the shared budget: memory storage counts per process."""
    a, b = pair(tmp_path, embedder, None, "unused:")
    try:
        for live in (a, b):
            for i in range(2):
                assert contribute(live).status_code == 201
            assert contribute(live).status_code == 429
    finally:
        a.stop()
        b.stop()


def test_redis_never_reachable_fails_open(tmp_path: Path, embedder: Embedder,
                                          caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="assistant.ratelimit")
    nowhere = f"redis://127.0.0.1:{free_port()}/0"
    live = start_server(limited_settings(tmp_path, nowhere, "openchat:"), embedder)
    try:
        started = time.monotonic()
        # Served from this instance's own budget: 2 writes, then its own 429.
        assert [contribute(live).status_code for _ in range(3)] == [201, 201, 429]
        assert sdk(live).chat.completions.create(model="openchat-extractive", messages=ASK).choices  # type: ignore[arg-type]
        assert time.monotonic() - started < 60  # not hung on Redis (a loose bound, not a timing)
        assert metric(live, "openchat_rate_limit_store_errors_total") >= 4
        warnings = [r.getMessage() for r in caplog.records if r.name == "assistant.ratelimit"]
        assert len(warnings) == 1 and "failing open" in warnings[0], warnings  # once, not per request
    finally:
        live.stop()


def test_redis_killed_and_restarted_while_serving(tmp_path: Path, embedder: Embedder,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="assistant.ratelimit")
    own = OwnRedis(tmp_path)
    own.start()
    live = start_server(limited_settings(tmp_path / "api", own.url, "openchat:"), embedder)
    try:
        assert [contribute(live).status_code for _ in range(3)] == [201, 201, 429]
        own.kill()
        # Redis is gone: still served, from the instance's own (fresh) budget.
        assert [contribute(live).status_code for _ in range(3)] == [201, 201, 429]
        assert sdk(live).chat.completions.create(model="openchat-extractive", messages=ASK).choices  # type: ignore[arg-type]
        errors_while_down = metric(live, "openchat_rate_limit_store_errors_total")
        assert errors_while_down >= 4
        own.start()  # the append-only file brings the shared counters back
        time.sleep(2.5)  # past the pause after a failure, so the next check asks Redis again
        resp = contribute(live)
        assert resp.status_code == 429, resp.text  # the shared budget, spent before the outage
        assert metric(live, "openchat_rate_limit_store_errors_total") == errors_while_down
        messages = [r.getMessage() for r in caplog.records if r.name == "assistant.ratelimit"]
        assert any("failing open" in m for m in messages) and "answers again" in messages[-1], messages
    finally:
        live.stop()
        own.kill()
