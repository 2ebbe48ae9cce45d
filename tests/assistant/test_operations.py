"""Operations surface of the live API: /metrics, request ids, JSON logs, /healthz per dependency."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from assistant.logs import json_handler, request_id
from assistant.observer import accept_request_id
from assistant.settings import load_settings
from payouts.localchain import LocalChain, LocalChainError, find_anvil
from payouts.worker import CHAIN_QUEUE, QUEUE, create_celery
from retrieval.embedder import Embedder
from tests.conftest import DEV_KEY, LiveServer, free_port, new_address, start_server
from tests.payouts.conftest import REDIS_URL, redis_available


def scrape(api: LiveServer) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """/metrics as {(sample name, sorted labels): value}."""
    reply = httpx.get(api.url + "/metrics")
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(reply.text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_request_id_in_and_out(api: LiveServer) -> None:
    with api.client() as c:
        assert c.get("/healthz", headers={"X-Request-ID": "trace-42.a:b"}).headers["x-request-id"] == "trace-42.a:b"
        generated = c.get("/healthz").headers["x-request-id"]
        assert len(generated) == 32 and int(generated, 16) >= 0
        refused = c.get("/healthz", headers={"X-Request-ID": "x" * 200}).headers["x-request-id"]
        assert refused != "x" * 200 and len(refused) == 32
        missing = c.get("/v1/answers/nope", headers={"X-Request-ID": "on-error"})  # errors carry it too
        assert missing.status_code == 404 and missing.headers["x-request-id"] == "on-error"
    assert accept_request_id(b"bad id\n") != "bad id\n"
    assert accept_request_id("é".encode()) != "é"


def test_access_log_is_json_with_the_request_id(api: LiveServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="openchat.access")
    with api.client() as c:
        c.get("/v1/models", headers={"X-Request-ID": "log-me-1"})
    deadline = time.monotonic() + 10
    while not [r for r in caplog.records if getattr(r, "request_id", None) == "log-me-1"]:
        assert time.monotonic() < deadline, [r.__dict__ for r in caplog.records]
        time.sleep(0.05)
    record = next(r for r in caplog.records if getattr(r, "request_id", None) == "log-me-1")
    line = json_handler(io.StringIO()).format(record)
    body = json.loads(line)
    assert body["request_id"] == "log-me-1" and body["route"] == "/v1/models" and body["status"] == 200
    assert body["level"] == "INFO" and body["logger"] == "openchat.access" and body["duration_ms"] >= 0


def test_any_log_line_inside_a_request_carries_its_id() -> None:
    stream = io.StringIO()
    logger = logging.getLogger("openchat.test.logs")
    logger.addHandler(json_handler(stream))
    logger.setLevel(logging.INFO)
    logger.propagate = False
    token = request_id.set("req-7")
    try:
        logger.info("inside", extra={"answer_id": "ans_1"})
    finally:
        request_id.reset(token)
    logger.info("outside")
    inside, outside = (json.loads(line) for line in stream.getvalue().splitlines())
    assert inside["request_id"] == "req-7" and inside["answer_id"] == "ans_1" and inside["message"] == "inside"
    assert outside["request_id"] is None


def test_metrics_count_requests_answers_credits_and_queue(api: LiveServer) -> None:
    address = new_address()
    with api.client() as c:
        assert c.post("/v1/contributions", json={
            "text": "The quokka is a small wallaby that lives on Rottnest Island near Perth.",
            "title": "Quokka", "contributor": address}).status_code == 201
        before = scrape(api)
        c.get("/v1/answers/ans_missing_for_metrics")
        reply = c.post("/v1/chat/completions", json={
            "model": "openchat-extractive", "messages": [{"role": "user", "content": "Where does the quokka live?"}]})
        assert reply.status_code == 200, reply.text
        meta = reply.json()["openchat"]
    queued = create_celery(api.settings.payouts)
    queued.send_task("payouts.aggregate")  # no worker serves this test's broker: it waits
    after = scrape(api)
    with queued.connection_for_write() as conn:
        conn.default_channel.queue_purge(QUEUE)

    route = {"route": "/v1/answers/{answer_id}", "method": "GET", "status": "404"}
    assert value(after, "openchat_http_requests_total", **route) - value(before, "openchat_http_requests_total", **route) == 1
    chat = {"route": "/v1/chat/completions", "method": "POST"}
    assert (value(after, "openchat_http_request_duration_seconds_count", **chat)
            - value(before, "openchat_http_request_duration_seconds_count", **chat)) == 1
    assert value(after, "openchat_http_request_duration_seconds_bucket", **chat, le="+Inf") >= 1
    assert not any("ans_missing" in str(labels) for _, labels in after)  # templates, not raw paths
    answered = str(meta["answered"]).lower()
    assert value(after, "openchat_answers_total", answered=answered) - value(before, "openchat_answers_total",
                                                                             answered=answered) == 1
    credited = sum(c["amount"] for c in meta["credits"])
    assert (value(after, "openchat_credits_base_units_total")
            - value(before, "openchat_credits_base_units_total")) == credited
    for queue, sent in ((QUEUE, 1), (CHAIN_QUEUE, 0)):
        assert value(after, "openchat_queue_depth", queue=queue) - value(before, "openchat_queue_depth", queue=queue) == sent
    for name in ("openchat_payout_batches_total", "openchat_settlement_gas_total", "openchat_vouchers_total"):
        assert (name, ()) in after
    # The answer's price was held while it was delivered and settled by its record.
    assert value(after, "openchat_answer_holds_open") == 0 and value(after, "openchat_held_base_units") == 0
    # No payee failed here: none is quarantined, and nothing is owed to one.
    assert value(after, "openchat_payees_quarantined") == 0 and value(after, "openchat_quarantined_owed_base_units") == 0
    assert value(after, "openchat_scrape_error", source="database") == 0
    assert value(after, "openchat_scrape_error", source="broker") == 0


@pytest.fixture
def started(embedder: Embedder) -> Iterator[list[LiveServer]]:
    servers: list[LiveServer] = []
    yield servers
    for server in servers:
        server.stop()


def test_healthz_checks_each_dependency(started: list[LiveServer], embedder: Embedder, tmp_path: Path) -> None:
    if not redis_available():
        pytest.skip(f"no Redis at {REDIS_URL}")
    try:
        find_anvil()
    except LocalChainError as exc:
        pytest.skip(str(exc))
    chain = LocalChain(tmp_path / "chain-data", state_interval=0).start()
    try:
        up = start_server(load_settings(data_dir=tmp_path / "up", dev_api_key=DEV_KEY, redis_url=REDIS_URL,
                                        chain_rpc_url=chain.rpc_url, chain_id=31337), embedder)
        started.append(up)
        reply = httpx.get(up.url + "/healthz")
        assert reply.status_code == 200, reply.text
        assert {k: v for k, v in reply.json()["checks"].items() if k != "chunks"} == {
            "database": "ok", "vector_store": "ok", "broker": "ok", "chain": "ok"}
    finally:
        chain.stop()
    reply = httpx.get(up.url + "/healthz")  # the node is gone
    assert reply.status_code == 503 and reply.json()["status"] == "degraded"
    assert reply.json()["checks"]["chain"].startswith("error") and reply.json()["checks"]["broker"] == "ok"

    dead = free_port()
    down = start_server(load_settings(data_dir=tmp_path / "down", dev_api_key=DEV_KEY,
                                      redis_url=f"redis://127.0.0.1:{dead}/0"), embedder)
    started.append(down)
    reply = httpx.get(down.url + "/healthz")
    assert reply.status_code == 503, reply.text
    checks = reply.json()["checks"]
    assert checks["broker"].startswith("error") and checks["database"] == "ok" and checks["chain"] == "not configured"
    samples = scrape(down)  # /metrics still answers, and says which source it could not read
    assert value(samples, "openchat_scrape_error", source="broker") == 1
    assert value(samples, "openchat_scrape_error", source="database") == 0


def test_serve_drains_a_stream_in_flight_on_sigterm(tmp_path: Path) -> None:
    """SIGTERM mid-stream: the stream still ends with [DONE], then the process exits after
    running the lifespan's shutdown."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENCHAT_")}
    env.update(OPENCHAT_DATA_DIR=str(tmp_path), OPENCHAT_PORT=str(port), OPENCHAT_DEV_API_KEY=DEV_KEY)
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "assistant.cli", "serve"], env=env, stdout=log,
                                stderr=subprocess.STDOUT, cwd=Path(__file__).resolve().parents[2])
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, log_path.read_text()
            try:
                if httpx.get(url + "/healthz", timeout=2).status_code in (200, 503):
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        body = {"model": "openchat-extractive", "stream": True,
                "messages": [{"role": "user", "content": "What do we know about graceful shutdown?"}]}
        lines: list[str] = []
        with httpx.stream("POST", url + "/v1/chat/completions", json=body, timeout=60,
                          headers={"Authorization": f"Bearer {DEV_KEY}", "X-Request-ID": "draining"}) as reply:
            assert reply.status_code == 200
            for line in reply.iter_lines():
                if line.strip() and not lines:
                    proc.send_signal(signal.SIGTERM)  # the stream has started
                if line.strip():
                    lines.append(line)
        assert lines[-1] == "data: [DONE]", lines
        # uvicorn re-raises the signal after its graceful shutdown: "killed by SIGTERM" is normal.
        assert proc.wait(timeout=60) in (0, -signal.SIGTERM)
        text = log_path.read_text()
        assert "Application shutdown complete" in text
        access = [json.loads(x) for x in text.splitlines() if x.startswith("{") and '"draining"' in x]
        assert access and access[0]["status"] == 200 and access[0]["route"] == "/v1/chat/completions"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
