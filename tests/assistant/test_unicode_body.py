"""A JSON body holding a lone surrogate escape ("\\udcff": valid JSON, not valid Unicode) gets a clear
400 from every JSON endpoint, before anything reads it; a surrogate pair (an emoji spelled as
escapes) is text like any other. Real app, through HTTP."""

from __future__ import annotations

import json

import pytest

LONE = "\\udcff"
PAIR = "\\ud83d\\ude00"  # 😀
# Fixed, not new_address(): the parameters must be the same in every pytest-xdist worker.
CONTRIBUTOR = "0x000000000000000000000000000000000005c1Fa"


@pytest.mark.parametrize(("path", "body"), [
    ("/v1/chat/completions", '{"model": "openchat-extractive", "messages": [{"role": "user", "content": "What %s is Vostok?"}]}'),
    ("/v1/search", '{"query": "What %s is Vostok?"}'),
    ("/v1/contributions", '{"text": "Vostok %s station.", "contributor": "' + CONTRIBUTOR + '"}'),
    ("/v1/chat/completions", '{"model": "openchat-extractive", "messages": [{"role": "user", "content": "Hi", "name%s": 1}]}'),
])
def test_a_lone_surrogate_is_a_clear_400(api, path: str, body: str) -> None:  # type: ignore[no-untyped-def]
    with api.client() as c:
        r = c.post(path, content=body % LONE, headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["type"] == "invalid_request_error" and "surrogate" in error["message"]


def test_a_surrogate_pair_is_text(api) -> None:  # type: ignore[no-untyped-def]
    with api.client() as c:
        r = c.post("/v1/search", content='{"query": "Vostok ' + PAIR + '"}', headers={"content-type": "application/json"})
    assert r.status_code == 200, r.text
    assert json.loads(f'"{PAIR}"') == "\U0001F600"
