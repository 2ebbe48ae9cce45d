"""The API's front gate: who is calling, decided from the headers before any body is read.

FastAPI reads and parses a request's body (a JSON document, a whole multipart upload) before it
resolves a route's dependencies, so a key checked by a dependency comes after the upload was
read. This ASGI middleware runs first, on the headers alone:

- a request with a body (every non-GET ``/v1`` route needs a key; see
  tests/assistant/test_ratelimit_routes.py) and no valid key gets its 401 without a byte of the
  body read;
- a ``/v1`` request without a valid key (public reads, refused keys) counts against the
  anonymous budget of its client IP (``OPENCHAT_ANON_RATE_PER_MINUTE``), 429 past it;
- the principal it found is left in the request's state, so ``require_key`` does not look the key
  up again.
"""

from __future__ import annotations

import math

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from assistant.auth import PRINCIPAL_STATE, authenticate, refusal
from assistant.errors import ApiError, error_response
from assistant.ratelimit import ANONYMOUS, RateLimits, retry_after_header

# Methods whose requests carry a body worth refusing before it is read.
READS = frozenset({"GET", "HEAD", "OPTIONS"})


class KeyGate:
    """Authenticates ``/v1`` requests from their headers; refuses anonymous bodies and floods."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        state = scope["app"].state
        header = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"authorization"), "")
        principal = await authenticate(state, header)
        if principal is None:
            error = await self._anonymous(state.rate_limits, scope)
            if error is None and scope["method"] not in READS:
                error = refusal(header)
            if error is not None:
                response = error_response(error.status, error.message, error.code, error.param, error.headers)
                await response(scope, receive, send)  # a response that never reads the body
                return
        scope.setdefault("state", {})[PRINCIPAL_STATE] = principal
        await self.app(scope, receive, send)

    @staticmethod
    async def _anonymous(limits: RateLimits, scope: Scope) -> ApiError | None:
        if limits.items.get(ANONYMOUS) is None:
            return None
        # The client's address as uvicorn reports it: behind a reverse proxy, run uvicorn with
        # --forwarded-allow-ips so this is the caller's, not the proxy's (docs/operations.md).
        client = scope.get("client")
        ip = client[0] if client else "unknown"
        wait = await run_in_threadpool(limits.hit, ANONYMOUS, ip) if limits.shared else limits.hit(ANONYMOUS, ip)
        if wait is None:
            return None
        item = limits.items[ANONYMOUS]
        assert item is not None
        seconds = max(1, math.ceil(wait))
        return ApiError(429, f"rate limit of {item.amount} requests without an API key per {item.get_expiry()} s "
                             f"reached for this address; retry in {seconds} s, or send a key",
                        "rate_limit_exceeded", headers=retry_after_header(wait))
