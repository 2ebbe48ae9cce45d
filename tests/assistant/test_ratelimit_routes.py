"""Every write the API publishes refuses a missing or bad key with 401 in OpenAI's shape, found by
walking the app's own routes (a new route that forgets its key fails here)."""

from __future__ import annotations

import re

from tests.assistant.test_api_knowledge import assert_openai_error
from tests.conftest import LiveServer

# Non-GET routes open to anyone on purpose: none. Search is a read but returns contributed text
# whole, so it needs a key like every other route that reads the knowledge base's contents.
PUBLIC_READS: set[tuple[str, str]] = set()
# The routes the issues name (search and the writes); the walk must find at least these, so it
# cannot pass on an empty app.
KNOWN_WRITES = {("POST", "/v1/search"), ("POST", "/v1/chat/completions"), ("POST", "/v1/contributions"), ("POST", "/v1/datasets"),
                ("PATCH", "/v1/conversations/{conversation_id}"), ("DELETE", "/v1/conversations/{conversation_id}")}


def non_get_routes(live: LiveServer) -> list[tuple[str, str]]:
    """From the OpenAPI document the app serves (FastAPI's own route objects are private since
    routers are included lazily); no /v1 route is left out of it."""
    with live.client(key=None) as c:
        paths = c.get("/openapi.json").json()["paths"]
    return sorted((method.upper(), path) for path, ops in paths.items() if path.startswith("/v1/")
                  for method in ops if method not in ("get", "head"))


def test_every_non_get_route_needs_a_key(api: LiveServer) -> None:
    routes = non_get_routes(api)
    assert KNOWN_WRITES <= set(routes), routes
    walked = []
    with api.client(key=None) as anonymous, api.client(key="not-a-key") as wrong:
        for method, template in routes:
            if (method, template) in PUBLIC_READS:
                continue
            path = re.sub(r"\{[^}]+\}", "1", template)
            for client, code in ((anonymous, "missing_api_key"), (wrong, "invalid_api_key")):
                # A body valid for nothing: the key is checked before the body is.
                resp = client.request(method, path, json={})
                err = assert_openai_error(resp, 401, code)
                assert err["type"] == "authentication_error", (method, path, err)
                assert resp.headers["WWW-Authenticate"] == "Bearer", (method, path)
            walked.append((method, template))
    assert set(walked) == set(routes) - PUBLIC_READS
