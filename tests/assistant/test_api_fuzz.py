"""Property-based fuzzing of the whole HTTP API from its own OpenAPI schema (schemathesis).

Every operation the app publishes gets generated requests, valid and invalid: none may
answer 5xx, and every error must come in OpenAI's error shape. The example count per
operation is bounded so the suite stays fast; raise OPENCHAT_FUZZ_EXAMPLES for a deeper run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from assistant.app import create_app
from assistant.settings import load_settings
from retrieval.embedder import Embedder
from tests.conftest import DEV_KEY, LiveServer, start_server

EXAMPLES = int(os.environ.get("OPENCHAT_FUZZ_EXAMPLES", "25"))
SEED = os.environ.get("OPENCHAT_FUZZ_SEED")
AUTH = {"Authorization": f"Bearer {DEV_KEY}"}


@pytest.fixture(scope="module")
def fuzz_server(embedder: Embedder, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data_dir: Path = tmp_path_factory.mktemp("fuzz")
    # Rate limits are tested on their own; here they would only turn generated cases into 429s.
    live = start_server(load_settings(data_dir=data_dir, dev_api_key=DEV_KEY, chat_rate_per_minute=0,
                                      write_rate_per_minute=0, read_rate_per_minute=0), embedder)
    with live.client() as client:
        client.post("/v1/contributions", json={
            "text": "The Eiffel Tower in Paris is 330 metres tall and was completed in 1889.",
            "contributor": "0x52908400098527886E0F7030069857D2E4169EE7"}).raise_for_status()
    yield live
    live.stop()


# The schema comes from the app object itself: building the app opens nothing (services
# start in its lifespan), and schemathesis' lazy fixture loader breaks on pytest 9.
schema = schemathesis.openapi.from_dict(create_app(load_settings(data_dir=Path("unused"))).openapi())


def openai_error_shape(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every 4xx/5xx body is {"error": {"message": str, "type": str, "param", "code"}}."""
    if response.status_code < 400:
        return None
    body = response.json()
    assert isinstance(body, dict) and set(body) == {"error"}, f"not OpenAI's error shape: {body!r}"
    error = body["error"]
    assert isinstance(error.get("message"), str) and error["message"], f"error without a message: {body!r}"
    assert isinstance(error.get("type"), str), f"error without a type: {body!r}"
    assert "param" in error and "code" in error, f"error lacks param/code: {body!r}"
    return True


@schema.parametrize()
# Derandomized: the same cases every run, so CI is never red by chance; set
# OPENCHAT_FUZZ_SEED to explore other cases (a failure prints its reproduction).
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck),
          derandomize=SEED is None)
def test_no_server_errors_and_openai_error_shape(case: Any, fuzz_server: LiveServer) -> None:
    # Stream requests are fuzzed too: the SSE body is read whole, errors before it are JSON.
    case.call_and_validate(base_url=fuzz_server.url, headers=AUTH,
                           checks=[not_a_server_error, openai_error_shape], timeout=60)


def test_unauthenticated_writes_are_refused(fuzz_server: LiveServer) -> None:
    with fuzz_server.client(key=None) as anonymous, fuzz_server.client(key="wrong-key") as wrong:
        for client, code in ((anonymous, "missing_api_key"), (wrong, "invalid_api_key")):
            for method, path, body in [
                ("POST", "/v1/contributions", {"text": "x", "contributor": "0x52908400098527886E0F7030069857D2E4169EE7"}),
                ("POST", "/v1/chat/completions", {"model": "openchat-extractive", "messages": [{"role": "user", "content": "hi"}]}),
            ]:
                response = client.request(method, path, json=body)
                assert response.status_code == 401, (path, response.text)
                assert response.json()["error"]["code"] == code
                assert response.headers["WWW-Authenticate"] == "Bearer"
