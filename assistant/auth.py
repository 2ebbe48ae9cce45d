"""Bearer API keys."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from assistant.errors import ApiError
from payouts.ledger import lookup_api_key


@dataclass(frozen=True)
class Principal:
    """Who is calling: the account an API key belongs to."""

    account: str


class ApiKeys:
    """The keys the API accepts, each naming its account."""

    def __init__(self, keys: dict[str, str]) -> None:
        self._keys = dict(keys)

    def lookup(self, key: str) -> Principal | None:
        for known, account in self._keys.items():
            # Constant-time comparison: a key's prefix must not be guessable by timing.
            if hmac.compare_digest(known.encode(), key.encode()):
                return Principal(account)
        return None


class LedgerKeys:
    """API keys issued with ``openchat accounts key`` (the ledger keeps only their sha256)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def lookup(self, key: str) -> Principal | None:
        # A hash lookup: the stored value is sha256(key), so timing reveals nothing of the key.
        with Session(self.engine) as session:
            account = lookup_api_key(session, key)
        return Principal(account) if account is not None else None


# Where the gate (assistant.gate) leaves the principal it found, so the key is looked up once.
PRINCIPAL_STATE = "openchat_principal"


def bearer_token(header: str) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def authenticate(state: Any, header: str) -> Principal | None:
    """The principal of an Authorization header against the app's keys; None when missing or unknown."""
    token = bearer_token(header)
    if token is None:
        return None
    principal = state.api_keys.lookup(token)
    ledger_keys = getattr(state, "ledger_keys", None)
    if principal is None and ledger_keys is not None:
        principal = await run_in_threadpool(ledger_keys.lookup, token)
    return principal


def refusal(header: str) -> ApiError:
    """The 401 for a request whose Authorization header gave no principal."""
    if bearer_token(header) is None:
        return ApiError(401, "missing API key: send 'Authorization: Bearer <key>'", "missing_api_key",
                        headers={"WWW-Authenticate": "Bearer"})
    return ApiError(401, "invalid API key", "invalid_api_key", headers={"WWW-Authenticate": "Bearer"})


async def require_key(request: Request) -> Principal:
    """FastAPI dependency: the caller's principal, or 401 in OpenAI's shape."""
    # async: FastAPI runs a plain ``def`` dependency in a worker thread, a hand-off on every
    # request; only the ledger's key lookup (a database read) goes to a thread.
    header = request.headers.get("authorization", "")
    state = request.scope.get("state") or {}
    if PRINCIPAL_STATE in state:  # the gate looked it up already
        principal = state[PRINCIPAL_STATE]
    else:
        principal = await authenticate(request.app.state, header)
    if principal is None:
        raise refusal(header)
    return principal
