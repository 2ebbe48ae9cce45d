"""Per-account rate limits: a token bucket per API key's account, in process memory.

One API process holds the buckets; behind several processes each enforces its own share
(a Redis-backed limiter would be the shared form, when a deployment needs it).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable


class RateLimiter:
    """``per_minute`` requests a minute on average, up to ``burst`` at once; 0 turns it off."""

    def __init__(self, per_minute: int, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = per_minute / 60.0
        self.burst = max(1, burst)
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # account -> (tokens, last time)
        self._lock = threading.Lock()

    def acquire(self, account: str) -> float | None:
        """Take one token; None if allowed, else the seconds until the next token."""
        if self.rate <= 0:
            return None
        now = self.clock()
        with self._lock:
            tokens, last = self._buckets.get(account, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[account] = (tokens - 1.0, now)
                return None
            self._buckets[account] = (tokens, now)
            return (1.0 - tokens) / self.rate


def retry_after_header(seconds: float) -> dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil(seconds)))}
