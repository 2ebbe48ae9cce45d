"""Every input is bounded before it costs anything, through the real API: questions and messages
in tokens, the history, data-set rows and their fields, the key before an upload's body, and a
budget for anonymous callers per IP."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from assistant.settings import load_settings
from retrieval.embedder import Embedder
from tests.assistant.test_api_knowledge import assert_openai_error, jsonl, upload
from tests.conftest import DEV_KEY, LiveServer, new_address, start_server

MODEL = "openchat-extractive"


def ask(api: LiveServer, messages: list[dict[str, Any]], **extra: Any) -> Any:
    with api.client() as c:
        return c.post("/v1/chat/completions", json={"model": MODEL, "messages": messages, **extra})


def user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def test_a_normal_question_is_answered(api: LiveServer) -> None:
    assert ask(api, [user("How many hearts does an octopus have?")]).status_code == 200


def test_a_huge_question_is_refused_on_its_characters(api: LiveServer) -> None:
    limit = api.settings.app.chat_max_question_tokens
    resp = ask(api, [user("why " * (limit * 4))])  # 16 characters a token: far over, never tokenized
    err = assert_openai_error(resp, 400, "question_too_long")
    assert err["param"] == "messages[0].content" and "characters" in err["message"]


def test_a_question_over_the_tokens_is_refused_with_its_count(api: LiveServer) -> None:
    limit = api.settings.app.chat_max_question_tokens
    resp = ask(api, [user("why " * (limit + 1))])  # within the characters, one word piece too many
    err = assert_openai_error(resp, 400, "question_too_long")
    assert f"{limit} tokens (it has {limit + 1})" in err["message"]
    # Streamed requests are checked before the stream starts.
    err = assert_openai_error(ask(api, [user("why " * (limit + 1))], stream=True), 400, "question_too_long")


def test_a_history_message_is_bounded(api: LiveServer) -> None:
    limit = api.settings.app.chat_max_message_tokens
    history = [user("Tell me about octopuses."), {"role": "assistant", "content": "word " * (limit + 1)},
               user("How many hearts?")]
    err = assert_openai_error(ask(api, history), 400, "message_too_long")
    assert err["param"] == "messages[1].content"
    # Content parts count the same as a string.
    parts = [{"type": "text", "text": "word " * (limit // 2 + 1)}] * 2
    history[1] = {"role": "assistant", "content": parts}
    assert_openai_error(ask(api, history), 400, "message_too_long")


def test_the_whole_history_is_bounded(api: LiveServer) -> None:
    app = api.settings.app
    each = app.chat_max_message_tokens - 1
    n = app.chat_max_history_tokens // each + 1  # every message within its own bound, together over
    history = [{"role": "user" if i % 2 == 0 else "assistant", "content": "word " * each} for i in range(n)]
    err = assert_openai_error(ask(api, [*history, user("And the hearts?")]), 400, "history_too_long")
    assert err["param"] == "messages"


def test_the_number_of_messages_is_bounded(api: LiveServer) -> None:
    many = [user("hi")] * (api.settings.app.chat_max_messages + 1)
    assert_openai_error(ask(api, many), 400, "too_many_messages")


@pytest.mark.parametrize(("field", "value"), [("user", "u" * 257), ("stop", ["a", "b", "c", "d", "e"]),
                                              ("stop", "s" * 201)])
def test_openai_side_fields_are_bounded(api: LiveServer, field: str, value: Any) -> None:
    err = assert_openai_error(ask(api, [user("How many hearts?")], **{field: value}), 400)
    assert (err["param"] or "").startswith(field)


def test_metadata_title_and_id_caps_are_row_errors_naming_the_field(api: LiveServer) -> None:
    limits = api.settings.retrieval
    who = new_address()
    data = jsonl([
        {"id": "ok-1", "text": "The capybara is the largest living rodent.", "region": "South America"},
        {"text": "A blob rides along.", "blob": "b" * 100_000},  # stored with every chunk: refused
        {"text": "A long title.", "title": "t" * (limits.max_title_chars + 1)},
        {"id": "i" * (limits.max_id_chars + 1), "text": "A long id."},
        {"text": "A huge blob.", "blob": "b" * 2_000_000},  # more than any valid row: never parsed
    ])
    resp = upload(api, "meta.jsonl", data, who)
    assert resp.status_code == 201, resp.text
    report = resp.json()
    assert (report["rows"], report["rows_rejected"], report["chunks_stored"]) == (5, 4, 1)
    errors = {e["line"]: e["error"] for e in report["errors"]}
    assert "metadata" in errors[2] and "'blob'" in errors[2]
    assert "'title'" in errors[3] and "'id'" in errors[4]
    assert "line is longer than" in errors[5]


def test_a_text_file_without_blank_lines_becomes_bounded_rows(api: LiveServer) -> None:
    limit = api.settings.retrieval.max_row_chars
    # One paragraph, no blank line, a little over two rows' worth. The same sentence over and
    # over: its chunks are copies of each other, refused before they are embedded (fast).
    sentence = "The same sentence about tides and the moon, said again.\n"
    data = (sentence * (2 * limit // len(sentence) + 100)).encode()
    resp = upload(api, "no-breaks.txt", data, new_address())
    assert resp.status_code == 201, resp.text
    report = resp.json()
    assert report["status"] == "complete" and report["rows_rejected"] == 0
    assert report["rows"] == 3  # was 1: the per-row limit was never applied to text
    assert report["chunks_stored"] >= 1 and report["chunks_duplicate"] > 0


def test_an_upload_file_name_is_bounded(api: LiveServer) -> None:
    resp = upload(api, "n" * 252 + ".txt", b"Some text.", new_address())
    err = assert_openai_error(resp, 400, "filename_too_long")
    assert err["param"] == "file"


def _raw_upload(api: LiveServer, key: str | None, declared: int, sent: int, wait: float) -> bytes:
    """POST a multipart upload that declares ``declared`` bytes but sends only ``sent``; what the
    server answered within ``wait`` seconds (b"" when it was still waiting for the body)."""
    url = urlsplit(api.url)
    boundary = "bound"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.txt\"\r\n"
            "Content-Type: text/plain\r\n\r\n").encode()
    headers = ["POST /v1/datasets HTTP/1.1", f"Host: {url.netloc}", f"Content-Length: {declared}",
               f"Content-Type: multipart/form-data; boundary={boundary}"]
    if key:
        headers.append(f"Authorization: Bearer {key}")
    with socket.create_connection((url.hostname, url.port)) as sock:
        sock.sendall(("\r\n".join(headers) + "\r\n\r\n").encode() + head + b"x" * (sent - len(head)))
        sock.settimeout(wait)
        try:
            return sock.recv(65536)
        except TimeoutError:
            return b""


def test_an_anonymous_upload_is_refused_before_its_body_is_read(api: LiveServer) -> None:
    declared, sent = 150 * 1024 * 1024, 64 * 1024  # 150 MB declared, 64 kB sent, the rest never
    answer = _raw_upload(api, None, declared, sent, wait=30)
    # The 401 arrives while 149.9 MB of the body are still unsent: it was not read first.
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
    assert b'"missing_api_key"' in answer
    answer = _raw_upload(api, "not-a-key", declared, sent, wait=30)
    assert answer.startswith(b"HTTP/1.1 401") and b'"invalid_api_key"' in answer
    # The contrast that shows the check above can fail: with a valid key the server does read
    # the body, so it is still waiting for the rest when the wait ends.
    assert _raw_upload(api, DEV_KEY, declared, sent, wait=2) == b""


@pytest.fixture(scope="module")
def anon_limited(embedder: Embedder, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    settings = load_settings(data_dir=tmp_path_factory.mktemp("anon"), dev_api_key=DEV_KEY,
                             anon_rate_per_minute=1, anon_rate_burst=3, write_rate_per_minute=1, write_rate_burst=2)
    live = start_server(settings, embedder)
    yield live
    live.stop()


def test_anonymous_requests_have_a_budget_per_ip(anon_limited: LiveServer) -> None:
    with anon_limited.client(key=None) as anonymous, anon_limited.client(key="wrong") as wrong, \
            anon_limited.client() as keyed:
        assert anonymous.get("/v1/models").status_code == 200
        assert anonymous.get(f"/v1/contributors/{new_address()}").status_code == 200
        assert_openai_error(wrong.post("/v1/search", json={"query": "x"}), 401, "invalid_api_key")  # counted too
        resp = anonymous.get("/v1/models")
        err = assert_openai_error(resp, 429, "rate_limit_exceeded")
        assert err["type"] == "rate_limit_error" and int(resp.headers["Retry-After"]) >= 1
        # An anonymous upload past the budget is refused the same way, before its body.
        assert_openai_error(anonymous.post("/v1/datasets", files={"file": ("a.txt", b"x" * 100_000)}), 429)
        # A caller with a key draws on its account's budgets, not the address's.
        assert keyed.get("/v1/models").status_code == 200
        assert keyed.post("/v1/search", json={"query": "anything"}).status_code == 200
        # Pages and health checks are outside /v1 and its budget.
        assert anonymous.get("/healthz").status_code in (200, 503)


def test_a_spent_write_budget_refuses_an_upload_before_its_body(anon_limited: LiveServer) -> None:
    with anon_limited.client() as keyed:
        for _ in range(2):  # the account's whole write budget, on cheap writes
            assert keyed.patch("/v1/conversations/conv_missing", json={"title": "t"}).status_code == 404
    answer = _raw_upload(anon_limited, DEV_KEY, 150 * 1024 * 1024, 64 * 1024, wait=30)
    assert answer.startswith(b"HTTP/1.1 429"), answer[:200]
    assert b'"rate_limit_exceeded"' in answer and b"retry-after:" in answer.lower()
    # Counted once: the gate charged it, the route's own dependency did not count it again.
    with anon_limited.client() as keyed:
        assert keyed.get("/v1/conversations").status_code == 200  # reads have their own budget


def test_a_refused_chat_request_costs_nothing(api: LiveServer) -> None:
    with api.client() as c:
        before = c.get("/v1/conversations").json()["data"]
        assert_openai_error(ask(api, [user("why " * 100_000)]), 400, "question_too_long")
        assert c.get("/v1/conversations").json()["data"] == before
    assert json.loads(json.dumps(before)) == before
