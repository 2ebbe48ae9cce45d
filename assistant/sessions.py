"""Session accounts: on a shared deployment each browser gets an account of its own, with a small
free grant, so visitors never share a balance or see each other's conversations (which are kept
per account already).

The grant is real money of the operator's (it pays contributors when it is spent), so it is
bounded twice before any row is written: per client IP (an IPv6 /64, what one subscriber
usually holds) and for all IPs together, each per 24 hours. The counts are the ``limits``
library's moving window (exact: one timestamp per account opened, a handful per IP), in Redis
when ``OPENCHAT_REDIS_URL`` is set so every replica draws on one budget. Unlike the request rate
limits (assistant/ratelimit.py), this one fails closed: a count that cannot be made grants nothing.
"""

from __future__ import annotations

import math
import secrets
import time
from dataclasses import dataclass
from ipaddress import IPv6Network, ip_address

from limits import RateLimitItemPerDay
from limits.errors import StorageError
from limits.storage import MemoryStorage, Storage
from limits.strategies import MovingWindowRateLimiter
from prometheus_client import CollectorRegistry, Counter
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from payouts import ledger

SESSION_ACCOUNT_PREFIX = "session-"
SESSION_GRANT_REF = "session-grant"
SESSION_KEY_NAME = "web session"


@dataclass(frozen=True)
class SessionAccount:
    """A new account, its one API key (shown once) and what was deposited into it."""

    account: str
    key: str
    granted: int


def open_session_account(engine: Engine, grant: int) -> SessionAccount:
    """Create an account with a random name, an API key and ``grant`` base units, in one
    transaction: either all of it exists afterwards or none of it."""
    account = SESSION_ACCOUNT_PREFIX + secrets.token_hex(12)
    with Session(engine) as session, session.begin():
        key = ledger.create_api_key(session, account, name=SESSION_KEY_NAME)
        granted = grant if grant > 0 and ledger.deposit_once(session, account, grant, ref=SESSION_GRANT_REF) else 0
    return SessionAccount(account, key, granted)


def client_bucket(host: str | None) -> str:
    """Who a new-account count is charged to: the IPv4 address, or the /64 of an IPv6 one (a
    subscriber gets a whole /64, so counting single IPv6 addresses would bound nothing)."""
    if not host:
        return "unknown"
    try:
        address = ip_address(host)
    except ValueError:
        return host
    if address.version == 6:
        mapped = address.ipv4_mapped  # type: ignore[union-attr]
        if mapped is not None:
            return str(mapped)
        return str(IPv6Network(f"{address}/64", strict=False))
    return str(address)


def session_metrics(registry: CollectorRegistry) -> Counter:
    """New session accounts by outcome: opened, refused_ip, refused_total, unavailable (per replica)."""
    return Counter("openchat_session_accounts", "Session accounts asked for (POST /web-session), by outcome.",
                   ["result"], registry=registry)


class QuotaUnavailable(Exception):
    """The shared counter store did not answer: no account is opened (fail closed)."""


class SessionQuota:
    """New session accounts per client bucket and in all, each per 24 hours."""

    def __init__(self, per_ip: int, total: int, storage: Storage | None = None) -> None:
        self.per_ip = RateLimitItemPerDay(per_ip, namespace="session-ip")
        self.total = RateLimitItemPerDay(total, namespace="session-all")
        self._limiter = MovingWindowRateLimiter(storage if storage is not None else MemoryStorage())

    def take(self, bucket: str) -> tuple[str, float] | None:
        """Count one new account of ``bucket``; None if allowed, else (which bound, seconds until
        a slot frees). Blocking (Redis): call it from a worker thread."""
        try:
            # The IP's own bound first: one address refused there never draws on everyone's budget.
            for item, who, name in ((self.per_ip, bucket, "ip"), (self.total, "all", "total")):
                if not self._limiter.hit(item, who):
                    reset = self._limiter.get_window_stats(item, who).reset_time
                    return name, max(1.0, math.ceil(reset - time.time()))
        except StorageError as exc:
            raise QuotaUnavailable(str(exc.storage_error)) from exc
        return None
