"""The API's front gate: who is calling, decided from the headers before any body is read.

FastAPI reads and parses a request's body (a JSON document, a whole multipart upload) before it
resolves a route's dependencies, so a key checked by a dependency comes after the upload was
read. This ASGI middleware runs first, on the headers alone:

- a request with a body (every non-GET ``/v1`` route needs a key; see
  tests/assistant/test_ratelimit_routes.py) and no valid key gets its 401 without a byte of the
  body read;
- a ``/v1`` request without a valid key (public reads, refused keys) counts against the
  anonymous budget of its client IP (``OPENCHAT_ANON_RATE_PER_MINUTE``), 429 past it;
- a request with a valid key is charged to its account's budget for its route's class (chat,
  write, read: the class of the route's key dependency), so a spent budget refuses an upload
  with 429 before its body is read too;
- the principal it found (and that it charged it) is left in the request's state, so
  ``require_key`` and the budget dependencies do not look up or count again.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Receive, Scope, Send

from assistant.auth import PRINCIPAL_STATE, authenticate, refusal
from assistant.errors import error_response
from assistant.ratelimit import ANONYMOUS, CHARGED_STATE, RateLimits, charge, route_kind

# Methods whose requests carry a body worth refusing before it is read.
READS = frozenset({"GET", "HEAD", "OPTIONS"})


class KeyGate:
    """Authenticates ``/v1`` requests from their headers; refuses anonymous bodies and floods,
    and charges a keyed request to its account's budget before its body is read."""

    def __init__(self, app: ASGIApp, routes: Sequence[BaseRoute] = ()) -> None:
        self.app = app
        # The routes whose requests draw on an account's budget, each with its class. Taken from
        # the routers themselves (FastAPI keeps the app's own view of included routes private).
        self.charged = [(route, kind) for route in routes if (kind := route_kind(route)) is not None]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        state = scope["app"].state
        limits: RateLimits = state.rate_limits
        header = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"authorization"), "")
        principal = await authenticate(state, header)
        request_state = scope.setdefault("state", {})
        request_state[PRINCIPAL_STATE] = principal
        if principal is None:
            # The client's address as uvicorn reports it: behind a reverse proxy, run uvicorn with
            # --forwarded-allow-ips so this is the caller's, not the proxy's (docs/operations.md).
            client = scope.get("client")
            error = await charge(limits, ANONYMOUS, client[0] if client else "unknown")
            if error is None and scope["method"] not in READS:
                error = refusal(header)
        else:
            kind = self._kind(scope)
            error = await charge(limits, kind, principal.account) if kind is not None else None
            request_state[CHARGED_STATE] = kind is not None
        if error is not None:
            response = error_response(error.status, error.message, error.code, error.param, error.headers)
            await response(scope, receive, send)  # a response that never reads the body
            return
        await self.app(scope, receive, send)


    def _kind(self, scope: Scope) -> str | None:
        """The budget of the route this request will reach (a handful of path matches, no I/O)."""
        for route, kind in self.charged:
            match, _ = route.matches(scope)
            if match == Match.FULL:
                return kind
        return None
