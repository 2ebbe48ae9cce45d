"""Rate-limit cost: what the per-account check adds to a request, in memory and in Redis.

Two parts, both in this one process, repeats interleaved, medians printed:

1. The check alone (``RateLimits.hit``): memory storage; Redis storage, allowed (one Lua script,
   one round-trip) and refused (a second round-trip reads the window for Retry-After); a Redis
   PING with the same client settings as the floor of one round-trip (ratios are against it).
2. Over HTTP: the same cheap authenticated write (PATCH of a missing conversation: key check,
   rate-limit check, one lookup, 404) on three real API instances, limits off / memory / Redis;
   the added latency per request is the difference of the medians.

    .venv/bin/python bench/ratelimit_cost.py [--redis redis://127.0.0.1:6379/11] [--repeats 7]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import redis
from limits.storage import RedisStorage

from assistant.ratelimit import REDIS_TIMEOUT, RateLimits, window

KEY = "bench-key"


def per_call_us(fn: Callable[[], object], calls: int) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - started) / calls * 1e6


def check_alone(url: str, prefix: str, repeats: int, calls: int) -> None:
    ping = redis.Redis.from_url(url, socket_timeout=REDIS_TIMEOUT)
    storage = RedisStorage(url, key_prefix=f"{prefix}ratelimit", wrap_exceptions=True, socket_timeout=REDIS_TIMEOUT)
    big = {"x": window(10**9, 10**9, "x")}
    memory, shared = RateLimits(big), RateLimits(big, storage)
    refusing = RateLimits({"x": window(1, 1, "x")}, storage)
    refusing.hit("x", "a")  # the budget of one is spent: every later hit is refused
    cases: dict[str, Callable[[], object]] = {
        "redis PING (one round-trip)": ping.ping,
        "memory, allowed": lambda: memory.hit("x", "a"),
        "redis, allowed": lambda: shared.hit("x", "a"),
        "redis, refused (+Retry-After)": lambda: refusing.hit("x", "a"),
    }
    figures: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeats):
        for name, fn in cases.items():
            figures[name].append(per_call_us(fn, calls))
    base = statistics.median(figures["redis PING (one round-trip)"])
    print(f"\nthe check alone: median of {repeats} repeats x {calls} calls")
    for name, values in figures.items():
        med = statistics.median(values)
        print(f"  {name:32s} {med:8.1f} us   {med / base:5.2f}x PING")


def over_http(url: str, prefix: str, repeats: int, requests: int) -> None:
    from assistant.settings import load_settings
    from retrieval.embedder import load_embedder
    from tests.conftest import start_server  # the same real server the API tests use

    embedder = load_embedder(load_settings().retrieval)
    tmp = Path(tempfile.mkdtemp(prefix="bench-ratelimit-"))
    unlimited = {"write_rate_per_minute": 10**9, "write_rate_burst": 10**9}
    configs = {
        "limits off": {"write_rate_per_minute": 0},
        "memory": unlimited,
        "redis": dict(unlimited, redis_url=url, redis_key_prefix=prefix),
    }
    servers = {name: start_server(load_settings(data_dir=tmp / name.replace(" ", "-"), dev_api_key=KEY, **kw),
                                  embedder) for name, kw in configs.items()}
    clients = {name: live.client(KEY) for name, live in servers.items()}
    figures: dict[str, list[float]] = {name: [] for name in servers}
    try:
        for c in clients.values():  # warm up: connections, first-call paths
            for _ in range(20):
                c.patch("/v1/conversations/conv_missing", json={"title": "t"})
        names = list(clients)
        for i in range(repeats):
            for name in names[i % 3:] + names[:i % 3]:  # each goes first in turn: no order effect
                c = clients[name]
                times = []
                for _ in range(requests):
                    started = time.perf_counter()
                    resp = c.patch("/v1/conversations/conv_missing", json={"title": "t"})
                    times.append((time.perf_counter() - started) * 1000)
                    assert resp.status_code == 404, resp.text
                figures[name].append(statistics.median(times))
    finally:
        for c in clients.values():
            c.close()
        for live in servers.values():
            live.stop()
    base = statistics.median(figures["limits off"])
    print(f"\nover HTTP (PATCH, 404): median of {repeats} repeats, each the median of {requests} requests")
    for name, values in figures.items():
        med = statistics.median(values)
        print(f"  {name:12s} {med:7.3f} ms   {med / base:5.2f}x off   +{(med - base) * 1000:6.0f} us")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/11")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    prefix = f"bench-ratelimit-{uuid.uuid4().hex[:8]}:"
    try:
        check_alone(args.redis, prefix, args.repeats, args.calls)
        over_http(args.redis, prefix, args.repeats, args.requests)
    finally:
        r = redis.Redis.from_url(args.redis)
        for key in r.scan_iter(match=f"{prefix}*"):
            r.delete(key)


if __name__ == "__main__":
    main()
