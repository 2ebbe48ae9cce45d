"""A shared server in Chromium (issue 17): no dev key for the page, each browser its own account.

The server listens on this machine's network address, as `docker compose` or OPENCHAT_HOST=0.0.0.0
would, with the dev key still configured: the page must not get it. Each browser context (its
own storage, as another visitor's browser) opens an account of its own, keeps its key in
localStorage and sees only its own conversations; past the per-IP bound a browser is told why.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect
from sqlalchemy.orm import Session

from assistant.sessions import open_session_account
from assistant.settings import load_settings
from payouts import ledger
from retrieval.embedder import Embedder
from tests.conftest import DEV_KEY, LiveServer, network_address, new_address, start_server
from tests.web.conftest import shot
from tests.web.test_chat import ask, last_answer

GRANT = 40_000
OTTERS = "Sea otters hold hands while they sleep so that they do not drift apart."
NARWHALS = "Narwhal tusks are long spiral teeth that can grow to three metres."


@pytest.fixture(scope="module")
def shared(embedder: Embedder, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    address = network_address()
    if address is None:
        pytest.skip("this machine has no network address besides loopback")
    settings = load_settings(data_dir=tmp_path_factory.mktemp("shared-web"), dev_api_key=DEV_KEY, host=address,
                             allowed_hosts=address, session_grant=GRANT, session_accounts_per_ip_per_day=2)
    live = start_server(settings, embedder, host=address)
    # The knowledge, from an account the operator opened (not from a visitor's quota).
    key = open_session_account(live.server.config.app.state.engine, 0).key
    with live.client(key) as c:
        for title, text in (("Sea otters", OTTERS), ("Narwhals", NARWHALS)):
            resp = c.post("/v1/contributions", json={"text": text, "title": title, "contributor": new_address()})
            assert resp.status_code == 201, resp.text
    yield live
    live.stop()


@pytest.fixture
def visitor(browser: Browser, shared: LiveServer) -> Iterator[Callable[[], Page]]:
    """Opens a new visitor: a browser context of its own on the shared server."""
    contexts: list[tuple[BrowserContext, list[str]]] = []

    def open_visitor() -> Page:
        context = browser.new_context(viewport={"width": 1280, "height": 800}, base_url=shared.url)
        errors: list[str] = []
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.set_default_timeout(20_000)
        contexts.append((context, errors))
        return page

    yield open_visitor
    for context, errors in contexts:
        context.close()
        assert not errors, f"script errors on the page: {errors}"


def _keys(page: Page) -> tuple[str | None, str | None]:
    return (page.evaluate("() => sessionStorage.getItem('openchat.apiKey')"),
            page.evaluate("() => localStorage.getItem('openchat.sessionKey')"))


def test_each_browser_gets_its_own_account(visitor: Callable[[], Page], shared: LiveServer) -> None:
    a = visitor()
    with a.expect_response(lambda r: r.url.endswith("/web-session")) as opened:
        a.goto("/")
    assert opened.value.status == 201
    ask(a, "Why do sea otters hold hands?")
    expect(last_answer(a).locator(".source")).to_have_count(1)
    expect(a.locator("#conversation-list .conv")).to_have_count(1)
    dev, key_a = _keys(a)
    assert dev is None and key_a and key_a != DEV_KEY  # the dev key never reached the page

    b = visitor()
    b.goto("/")
    expect(b.locator("#conversation-empty")).to_be_visible()  # nothing of the other visitor's
    ask(b, "How long can narwhal tusks grow?")
    expect(last_answer(b).locator(".source")).to_have_count(1)
    expect(b.locator("#conversation-list .conv")).to_have_count(1)
    _, key_b = _keys(b)
    assert key_b and key_b != key_a
    shot(b, "session-account")

    # Each sees its own conversation only, after a reload too (the key stays in localStorage).
    a.reload()
    expect(a.locator("#conversation-list .conv")).to_have_count(1)
    a_title = a.locator("#conversation-list .conv").first.inner_text()
    b_title = b.locator("#conversation-list .conv").first.inner_text()
    assert "otters" in a_title.lower() and "narwhal" in b_title.lower()
    with shared.client(key_a) as ca, shared.client(key_b) as cb:
        conv_a = [x["id"] for x in ca.get("/v1/conversations").json()["data"]]
        conv_b = [x["id"] for x in cb.get("/v1/conversations").json()["data"]]
        assert len(conv_a) == len(conv_b) == 1 and conv_a != conv_b
        assert cb.get(f"/v1/conversations/{conv_a[0]}").status_code == 404
    # Each answer was paid from its own account's grant.
    price = shared.settings.payouts.price_per_answer
    with Session(shared.server.config.app.state.engine) as s:
        accounts = [ledger.lookup_api_key(s, key_a), ledger.lookup_api_key(s, key_b)]
        assert all(accounts) and accounts[0] != accounts[1]
        assert [ledger.balance(s, acc) for acc in accounts if acc] == [GRANT - price, GRANT - price]

    # A third browser from this address today: no account, and the page says why.
    c = visitor()
    c.goto("/")
    ask(c, "Why do sea otters hold hands?")
    expect(last_answer(c).locator(".answer-status.error")).to_contain_text("no more new accounts from this address today")
    assert _keys(c) == (None, None)
    # The key dialog shows the session account's key (and opens none); clearing it forgets the
    # account in this browser, and the next question would open another: past the bound, refused.
    b.click("#key-button")
    expect(b.locator("#key-dialog input")).to_have_value(key_b)
    b.fill("#key-dialog input", "")
    b.click("#key-dialog button[value=save]")
    expect(b.locator("#key-dialog")).to_be_hidden()
    assert _keys(b) == (None, None)
    ask(b, "How long can narwhal tusks grow?")
    expect(last_answer(b).locator(".answer-status.error")).to_contain_text("no more new accounts")
    with httpx.Client(base_url=shared.url, timeout=30) as anon:
        assert anon.get("/web-config.json").json()["dev_api_key"] is None
