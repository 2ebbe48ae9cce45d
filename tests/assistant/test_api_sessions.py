"""Who gets the dev key, the Host allow-list, and the session accounts of a shared server (issue 17).

Real servers over HTTP: the dev key only for a browser on the server's machine naming it by a
local name; any other Host gets 400 first; a server on a network address honours no dev key and
opens each visitor an account of its own, funded through the ledger, bounded per IP and in all.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from assistant.ratelimit import shared_storage
from assistant.sessions import (
    SESSION_GRANT_REF,
    QuotaUnavailable,
    SessionQuota,
    client_bucket,
    open_session_account,
)
from assistant.settings import load_settings
from payouts import ledger
from retrieval.embedder import Embedder
from tests.assistant.test_api_chat import MODEL, sdk
from tests.assistant.test_api_knowledge import assert_openai_error
from tests.conftest import (
    DEV_KEY,
    LiveServer,
    database_for,
    network_address,
    new_address,
    start_server,
)

GRANT = 30_000
JSON = {"Content-Type": "application/json"}


def _port(live: LiveServer) -> int:
    return int(urlsplit(live.url).port or 0)


def _config(live: LiveServer, host: str, **headers: str) -> httpx.Response:
    with httpx.Client(base_url=live.url, timeout=30) as c:
        return c.get("/web-config.json", headers={"Host": host, **headers})


def _open(live: LiveServer, **headers: str) -> httpx.Response:
    with httpx.Client(base_url=live.url, timeout=30) as c:
        return c.post("/web-session", json={}, headers=headers)


# ------------------------------------------------------------------ the dev key and the Host


def test_dev_key_for_a_local_client_naming_a_local_host(api: LiveServer) -> None:
    port = _port(api)
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", "localhost", "LOCALHOST:1"):
        resp = _config(api, host)
        assert resp.status_code == 200, (host, resp.text)
        body = resp.json()
        assert body["dev_api_key"] == DEV_KEY and body["session_accounts"] is False, host
        assert resp.headers["cache-control"] == "no-store"
    # Through a reverse proxy on this machine (uvicorn trusts 127.0.0.1's X-Forwarded-For by
    # default) the client is the visitor on the network: no dev key for it.
    far = _config(api, f"localhost:{port}", **{"X-Forwarded-For": "203.0.113.9"}).json()
    assert far["dev_api_key"] is None and far["session_accounts"] is True
    # A proxy that set no X-Forwarded-For (nginx's default) still marks its requests.
    for header in ("X-Real-IP", "Forwarded", "X-Forwarded-Proto"):
        assert _config(api, f"127.0.0.1:{port}", **{header: "x"}).json()["dev_api_key"] is None, header


def test_a_wrong_host_gets_400_before_anything_else(api: LiveServer) -> None:
    port = _port(api)
    with httpx.Client(base_url=api.url, timeout=30, headers={"Authorization": f"Bearer {DEV_KEY}"}) as c:
        for host in ("rebind.attacker.test", f"rebind.attacker.test:{port}", f"127.0.0.1.attacker.test:{port}",
                     f"localhost.:{port}", f"[::2]:{port}", "bad host"):
            for method, path, body in (("GET", "/web-config.json", None), ("GET", "/", None),
                                       ("GET", "/healthz", None), ("GET", "/v1/conversations", None),
                                       ("POST", "/web-session", {}),
                                       ("POST", "/v1/contributions",
                                        {"text": "Rebound pages never write knowledge.", "contributor": new_address()})):
                resp = c.request(method, path, json=body, headers={"Host": host})
                assert resp.status_code == 400, (host, path, resp.status_code)
                assert resp.text == "Invalid host header"
                assert DEV_KEY not in resp.text
        # Nothing a refused request carried was stored.
        found = c.post("/v1/search", json={"query": "Rebound pages never write knowledge.", "top_k": 3}).json()["data"]
        assert all(not hit["snippet"].startswith("Rebound") for hit in found)


@pytest.fixture(scope="module")
def named(embedder: Embedder, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A loopback server that also answers a public name, and opens no accounts for visitors."""
    settings = load_settings(data_dir=tmp_path_factory.mktemp("named"), dev_api_key=DEV_KEY,
                             allowed_hosts="chat.example.test", session_accounts=False)
    live = start_server(settings, embedder)
    yield live
    live.stop()


def test_no_dev_key_for_an_allowed_name_that_is_not_local(named: LiveServer) -> None:
    # A name the operator allowed is still not this machine's: a page served under it (or rebound
    # to it) is no local developer. With session accounts off, visitors paste a key.
    resp = _config(named, f"chat.example.test:{_port(named)}")
    assert resp.status_code == 200
    assert resp.json()["dev_api_key"] is None and resp.json()["session_accounts"] is False
    assert _config(named, f"localhost:{_port(named)}").json()["dev_api_key"] == DEV_KEY
    assert_openai_error(_open(named), 404, "session_accounts_off")


# ------------------------------------------------------------------ a shared server


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def shared(request: pytest.FixtureRequest, embedder: Embedder,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server on this machine's network address (what `docker compose` or OPENCHAT_HOST=0.0.0.0
    gives), the dev key still configured, each visitor's account granted GRANT, two per IP."""
    address = network_address()
    if address is None:
        pytest.skip("this machine has no network address besides loopback")
    with database_for(request.param) as database_url:
        settings = load_settings(data_dir=tmp_path_factory.mktemp(f"shared-{request.param}"), dev_api_key=DEV_KEY,
                                 database_url=database_url, host=address, allowed_hosts=address,
                                 session_grant=GRANT, session_accounts_per_ip_per_day=2)
        live = start_server(settings, embedder, host=address)
        yield live
        live.stop()


def _balance(live: LiveServer, account: str) -> int:
    with Session(live.server.config.app.state.engine) as s:
        return ledger.balance(s, account)


def test_shared_server_gives_each_visitor_a_private_funded_account(shared: LiveServer) -> None:
    # The dev key is neither handed out nor honoured on a network address.
    body = _config(shared, urlsplit(shared.url).netloc).json()
    assert body["dev_api_key"] is None and body["session_accounts"] is True and body["session_grant"] == GRANT
    assert _config(shared, f"localhost:{_port(shared)}").json()["dev_api_key"] is None
    with shared.client(DEV_KEY) as c:
        assert_openai_error(c.get("/v1/conversations"), 401, "invalid_api_key")

    # A form of another site cannot open an account (no JSON without a CORS preflight).
    with httpx.Client(base_url=shared.url, timeout=30) as c:
        assert_openai_error(c.post("/web-session", data={"x": "1"}), 415, "unsupported_media_type")

    a, b = _open(shared), _open(shared)
    assert a.status_code == 201 and b.status_code == 201, (a.text, b.text)
    a, b = a.json(), b.json()
    assert a["account"] != b["account"] and a["key"] != b["key"]
    assert a["granted"] == b["granted"] == GRANT
    assert _balance(shared, a["account"]) == _balance(shared, b["account"]) == GRANT

    with shared.client(a["key"]) as c:
        resp = c.post("/v1/contributions", json={
            "text": "Sea otters hold hands while they sleep so that they do not drift apart.",
            "title": "Sea otters", "contributor": new_address()})
        assert resp.status_code in (201, 409), resp.text
    reply_a = sdk(shared, a["key"]).chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Why do sea otters hold hands?"}])
    reply_b = sdk(shared, b["key"]).chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "What do sea otters do while they sleep?"}])
    conv_a = reply_a.model_extra["openchat"]["conversation_id"]
    conv_b = reply_b.model_extra["openchat"]["conversation_id"]
    # Each paid its own answer from its own grant.
    price = shared.settings.payouts.price_per_answer
    assert _balance(shared, a["account"]) == GRANT - price and _balance(shared, b["account"]) == GRANT - price

    with shared.client(a["key"]) as ca, shared.client(b["key"]) as cb:
        assert [x["id"] for x in ca.get("/v1/conversations").json()["data"]] == [conv_a]
        assert [x["id"] for x in cb.get("/v1/conversations").json()["data"]] == [conv_b]
        assert_openai_error(cb.get(f"/v1/conversations/{conv_a}"), 404, "not_found")
        assert_openai_error(cb.patch(f"/v1/conversations/{conv_a}", json={"title": "mine"}), 404, "not_found")
        assert_openai_error(cb.delete(f"/v1/conversations/{conv_a}"), 404, "not_found")
        assert ca.get(f"/v1/conversations/{conv_a}").json()["title"] != "mine"

    # The third account from this address today is refused, and nothing was written for it.
    third = _open(shared)
    assert_openai_error(third, 429, "session_limit_reached")
    assert int(third.headers["retry-after"]) > 3600  # a day's window: the two slots are hours from free
    engine = shared.server.config.app.state.engine
    with Session(engine) as s:
        assert ledger.check_invariants(s) == []
        grants = s.execute(sa.text("SELECT holder, delta FROM journal_entries WHERE kind = 'deposit' AND ref = :r"),
                           {"r": SESSION_GRANT_REF}).all()
    assert sorted(grants) == sorted([(f"account:{a['account']}", GRANT), (f"account:{b['account']}", GRANT)])


# ------------------------------------------------------------------ the bounds on the grant


@pytest.fixture(scope="module")
def bounded(embedder: Embedder, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """Two accounts per IP, three in all a day. Its clients come through a "proxy" on loopback
    (X-Forwarded-For, which uvicorn trusts from 127.0.0.1 only), so each test picks its IP."""
    settings = load_settings(data_dir=tmp_path_factory.mktemp("bounded"), dev_api_key=DEV_KEY, session_grant=GRANT,
                             session_accounts_per_ip_per_day=2, session_accounts_per_day=3)
    live = start_server(settings, embedder)
    yield live
    live.stop()


def test_the_grant_is_bounded_per_ip_and_in_all(bounded: LiveServer) -> None:
    def from_ip(ip: str) -> httpx.Response:
        return _open(bounded, **{"X-Forwarded-For": ip})

    assert from_ip("203.0.113.1").status_code == 201
    # One subscriber's IPv6 /64 is one bucket, whichever of its addresses asks.
    assert from_ip("2001:db8:1:2::10").status_code == 201
    assert from_ip("2001:db8:1:2:ffff::1").status_code == 201
    refused = assert_openai_error(from_ip("2001:db8:1:2::99"), 429, "session_limit_reached")
    assert "from this address" in refused["message"]
    # 203.0.113.1 has a slot left, but the server's three for the day are taken.
    refused = assert_openai_error(from_ip("203.0.113.1"), 429, "session_limit_reached")
    assert "on this server" in refused["message"]
    assert_openai_error(from_ip("198.51.100.7"), 429, "session_limit_reached")
    with Session(bounded.server.config.app.state.engine) as s:
        opened = s.scalar(sa.text("SELECT count(*) FROM accounts WHERE id LIKE 'session-%'"))
        granted = s.scalar(sa.text("SELECT coalesce(sum(delta), 0) FROM journal_entries WHERE ref = :r"),
                           {"r": SESSION_GRANT_REF})
        assert ledger.check_invariants(s) == []
    assert opened == 3 and granted == 3 * GRANT
    with httpx.Client(base_url=bounded.url, timeout=30) as c:
        metrics = c.get("/metrics").text
    for line in ('openchat_session_accounts_total{result="opened"} 3.0',
                 'openchat_session_accounts_total{result="refused_ip"} 1.0',
                 'openchat_session_accounts_total{result="refused_total"} 2.0'):
        assert line in metrics, line


def test_no_grant_is_no_deposit(bounded: LiveServer) -> None:
    engine = bounded.server.config.app.state.engine
    opened = open_session_account(engine, 0)
    assert opened.granted == 0 and opened.account.startswith("session-")
    with Session(engine) as s:
        assert ledger.balance(s, opened.account) == 0 and ledger.lookup_api_key(s, opened.key) == opened.account
        assert ledger.account_summary(s, opened.account)["journal"] == []  # type: ignore[index]


def test_client_buckets() -> None:
    assert client_bucket("203.0.113.1") == "203.0.113.1"
    assert client_bucket("2001:db8:1:2::10") == client_bucket("2001:db8:1:2:abcd::1") == "2001:db8:1:2::/64"
    assert client_bucket("2001:db8:1:3::10") != client_bucket("2001:db8:1:2::10")
    assert client_bucket("::ffff:203.0.113.1") == "203.0.113.1"
    assert client_bucket(None) == client_bucket("") == "unknown"


def test_the_quota_fails_closed_when_redis_is_down() -> None:
    # Port 1: nothing listens. The request limits fail open; a grant of money must not.
    storage = shared_storage(load_settings(redis_url="redis://127.0.0.1:1/0"))
    quota = SessionQuota(3, 100, storage)
    with pytest.raises(QuotaUnavailable):
        quota.take("203.0.113.1")
