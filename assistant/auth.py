"""Bearer API keys."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from fastapi import Request

from assistant.errors import ApiError


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


def require_key(request: Request) -> Principal:
    """FastAPI dependency: the caller's principal, or 401 in OpenAI's shape."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "missing API key: send 'Authorization: Bearer <key>'", "missing_api_key",
                       headers={"WWW-Authenticate": "Bearer"})
    principal = request.app.state.api_keys.lookup(token.strip())
    if principal is None:
        raise ApiError(401, "invalid API key", "invalid_api_key", headers={"WWW-Authenticate": "Bearer"})
    return principal
