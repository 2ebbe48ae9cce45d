"""Per-account rate limits, shared by every API replica.

Counting is the `limits` library's (the one slowapi uses), with its sliding-window-counter
strategy: in Redis when ``OPENCHAT_REDIS_URL`` is set, so every replica draws on one budget per
account; in process memory otherwise. Why that strategy: it keeps two integers per account and
window (the moving window keeps one timestamp per allowed request, O(limit) memory and work), it
has no boundary burst (a fixed window lets twice the limit through across a window edge), and in
Redis an allowed request costs one atomic round-trip (one Lua script: read, weigh, increment).
A refused request costs a second one, to read when the window frees a slot (``Retry-After``).

When Redis fails the limiter fails open (to this process's own memory budget), logs a warning and
counts ``openchat_rate_limit_store_errors_total``: a rate limiter guards capacity, it is not the
guard of money (answers are paid from balances, in the ledger's transaction) nor of access (keys
are checked first), so refusing every request because the counter store is down would turn a
Redis outage into a whole-API outage. The local budget still bounds each key per replica.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from limits import RateLimitItem, RateLimitItemPerSecond
from limits.errors import StorageError
from limits.storage import MemoryStorage, RedisStorage, Storage
from limits.strategies import SlidingWindowCounterRateLimiter
from prometheus_client import CollectorRegistry, Counter
from redis.backoff import NoBackoff
from redis.retry import Retry
from starlette.concurrency import run_in_threadpool

from assistant.auth import Principal, require_key
from assistant.errors import ApiError
from assistant.settings import Settings

log = logging.getLogger(__name__)

CHAT = "chat"
WRITE = "write"
READ = "read"
# Requests without a valid key, counted per client IP (assistant.gate).
ANONYMOUS = "anonymous"
# Seconds a Redis call may take: a dead or unreachable Redis must cost a request little.
REDIS_TIMEOUT = 0.5
# After a Redis failure, seconds the limiter uses its local budget before trying Redis again,
# so a Redis that times out delays one request per pause, not every request (limits has no
# circuit breaker of its own).
RETRY_SHARED_AFTER = 2.0


def window(per_minute: int, burst: int, kind: str) -> RateLimitItem | None:
    """``per_minute`` requests a minute, at most ``burst`` at once, as one sliding window: ``burst``
    requests per ``60 * burst / per_minute`` seconds (whole seconds, at least one). None: no limit."""
    if per_minute <= 0:
        return None
    seconds = max(1, round(60 * burst / per_minute))
    amount = max(1, round(per_minute * seconds / 60))
    return RateLimitItemPerSecond(amount, seconds, namespace=kind)


@dataclass(frozen=True)
class RateLimitMetrics:
    """Refusals by endpoint class, and failures of the shared counter store."""

    refused: Counter
    store_errors: Counter


def rate_limit_metrics(registry: CollectorRegistry) -> RateLimitMetrics:
    return RateLimitMetrics(
        refused=Counter("openchat_rate_limited", "Requests refused with 429, by endpoint class.", ["kind"],
                        registry=registry),
        store_errors=Counter("openchat_rate_limit_store_errors",
                             "Rate-limit checks Redis did not answer (it failed, or in the pause after a "
                             "failure), served from the replica's own budget.",
                             registry=registry),
    )


def _acquire(limiter: SlidingWindowCounterRateLimiter, item: RateLimitItem, account: str) -> float | None:
    if limiter.hit(item, account):
        return None
    return max(0.0, limiter.get_window_stats(item, account).reset_time - time.time())


class RateLimits:
    """Per-account budgets by endpoint class; ``shared`` (Redis) first, this process's memory when
    there is none or it fails."""

    def __init__(self, items: Mapping[str, RateLimitItem | None], shared: Storage | None = None,
                 metrics: RateLimitMetrics | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.items = dict(items)
        self.metrics = metrics
        self.clock = clock
        self._local = SlidingWindowCounterRateLimiter(MemoryStorage())
        self._shared = SlidingWindowCounterRateLimiter(shared) if shared is not None else None
        self._shared_down_until: float | None = None
        self._lock = threading.Lock()

    @property
    def shared(self) -> bool:
        """Whether counts live in Redis (a network call per hit) rather than process memory."""
        return self._shared is not None

    def hit(self, kind: str, account: str) -> float | None:
        """Count one request of ``account``; None if allowed, else the seconds until a slot frees."""
        item = self.items.get(kind)
        if item is None:
            return None
        wait = self._hit_shared(item, account) if self._shared is not None else _acquire(self._local, item, account)
        if wait is not None and self.metrics is not None:
            self.metrics.refused.labels(kind).inc()
        return wait

    def _hit_shared(self, item: RateLimitItem, account: str) -> float | None:
        assert self._shared is not None
        down_until = self._shared_down_until
        if down_until is None or self.clock() >= down_until:
            try:
                wait = _acquire(self._shared, item, account)
            except StorageError as exc:
                self._shared_failed(exc)
            else:
                if down_until is not None:
                    with self._lock:  # one line for the recovery, whichever thread sees it first
                        recovered, self._shared_down_until = self._shared_down_until is not None, None
                    if recovered:
                        log.warning("rate limits: Redis answers again; limits are shared across replicas again")
                return wait
        elif self.metrics is not None:
            self.metrics.store_errors.inc()  # still counted as failing while paused
        return _acquire(self._local, item, account)

    def _shared_failed(self, exc: StorageError) -> None:
        if self.metrics is not None:
            self.metrics.store_errors.inc()
        with self._lock:
            first = self._shared_down_until is None
            self._shared_down_until = self.clock() + RETRY_SHARED_AFTER
        if first:
            log.warning("rate limits: Redis unavailable (%s); failing open to this replica's own budget",
                        exc.storage_error)


def build_rate_limits(settings: Settings, metrics: RateLimitMetrics | None = None) -> RateLimits:
    """The API's limits: chat completions, writes and reads, each its own budget per account, and
    anonymous requests per client IP; shared in
    ``OPENCHAT_REDIS_URL`` when set (no connection is made until the first request)."""
    app = settings.app
    items = {CHAT: window(app.chat_rate_per_minute, app.chat_rate_burst, CHAT),
             WRITE: window(app.write_rate_per_minute, app.write_rate_burst, WRITE),
             READ: window(app.read_rate_per_minute, app.read_rate_burst, READ),
             ANONYMOUS: window(app.anon_rate_per_minute, app.anon_rate_burst, ANONYMOUS)}
    return RateLimits(items, shared_storage(settings), metrics)


def shared_storage(settings: Settings) -> Storage | None:
    """The counters every replica shares: Redis when ``OPENCHAT_REDIS_URL`` is set (no connection
    until the first count), else None (each process counts in its own memory)."""
    if not settings.payouts.redis_url:
        return None
    return RedisStorage(settings.payouts.redis_url, key_prefix=f"{settings.payouts.redis_key_prefix}ratelimit",
                        wrap_exceptions=True, socket_timeout=REDIS_TIMEOUT,
                        socket_connect_timeout=REDIS_TIMEOUT,
                        # One immediate retry: a pooled connection that died with a Redis
                        # restart is replaced; no back-off sleeps added to a request.
                        retry=Retry(NoBackoff(), 1))


def retry_after_header(seconds: float) -> dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil(seconds)))}


# Set in a request's state once its account was charged (by the gate, before the body is read),
# so the route's dependency does not charge it again.
CHARGED_STATE = "openchat_rate_charged"


async def charge(limits: RateLimits, kind: str, who: str) -> ApiError | None:
    """Count one request of ``who`` in ``kind``'s budget; the 429 to answer when it is spent."""
    if limits.items.get(kind) is None:
        return None
    # Counting in process memory is a dict update: done on the event loop. Redis is I/O,
    # so the shared count runs in a worker thread.
    wait = await run_in_threadpool(limits.hit, kind, who) if limits.shared else limits.hit(kind, who)
    if wait is None:
        return None
    item = limits.items[kind]
    assert item is not None
    seconds = max(1, math.ceil(wait))
    if kind == ANONYMOUS:
        message = (f"rate limit of {item.amount} requests without an API key per {item.get_expiry()} s reached "
                   f"for this address; retry in {seconds} s, or send a key")
    else:
        message = (f"rate limit of {item.amount} {kind} requests per {item.get_expiry()} s reached "
                   f"for this key's account; retry in {seconds} s")
    return ApiError(429, message, "rate_limit_exceeded", headers=retry_after_header(wait))


def _limited(kind: str) -> Callable[[Request, Principal], Awaitable[Principal]]:
    async def dependency(request: Request, principal: Annotated[Principal, Depends(require_key)]) -> Principal:
        if (request.scope.get("state") or {}).get(CHARGED_STATE):  # the gate did, before the body
            return principal
        error = await charge(request.app.state.rate_limits, kind, principal.account)
        if error is not None:
            raise error
        return principal

    dependency.__name__ = f"{kind}_key"
    _KINDS[dependency] = kind
    return dependency


_KINDS: dict[Callable[..., object], str] = {}


def route_kind(route: object) -> str | None:
    """The budget a route's requests are counted in (the class of its key dependency), or None."""
    dependant = getattr(route, "dependant", None)
    for dep in getattr(dependant, "dependencies", ()):
        if dep.call in _KINDS:
            return _KINDS[dep.call]
    return None


# FastAPI dependencies: the caller's principal (401 without a valid key), counted against the
# account's budget for that endpoint class (429 with Retry-After when it is spent).
chat_key = _limited(CHAT)
write_key = _limited(WRITE)
read_key = _limited(READ)
