"""Per-account rate limits: the token bucket, and 429 through the API."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from assistant.ratelimit import RateLimiter
from assistant.settings import load_settings
from retrieval.embedder import Embedder
from tests.conftest import DEV_KEY, LiveServer, start_server


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_bucket_allows_burst_then_refills() -> None:
    clock = Clock()
    limiter = RateLimiter(per_minute=60, burst=3, clock=clock)
    assert [limiter.acquire("a") for _ in range(3)] == [None, None, None]
    wait = limiter.acquire("a")
    assert wait is not None and 0.9 < wait <= 1.0
    assert limiter.acquire("b") is None  # accounts are independent
    clock.now += 1.0
    assert limiter.acquire("a") is None and limiter.acquire("a") is not None


def test_zero_means_unlimited() -> None:
    limiter = RateLimiter(per_minute=0, burst=1)
    assert all(limiter.acquire("a") is None for _ in range(1000))


@pytest.fixture(scope="module")
def limited(embedder: Embedder, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    settings = load_settings(data_dir=tmp_path_factory.mktemp("limited"), dev_api_key=DEV_KEY,
                             chat_rate_per_minute=1, chat_rate_burst=2)
    live = start_server(settings, embedder)
    yield live
    live.stop()


def test_429_in_openai_shape(limited: LiveServer) -> None:
    client = openai.OpenAI(base_url=f"{limited.url}/v1", api_key=DEV_KEY, max_retries=0)
    ask = [{"role": "user", "content": "anything?"}]
    for _ in range(2):
        client.chat.completions.create(model="openchat-extractive", messages=ask)
    with pytest.raises(openai.RateLimitError) as err:
        client.chat.completions.create(model="openchat-extractive", messages=ask)
    assert err.value.code == "rate_limit_exceeded"
    assert int(err.value.response.headers["retry-after"]) >= 1
