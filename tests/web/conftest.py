"""The web pages in a real headless Chromium (Debian's, driven by Playwright) against the live app.

One app on the embedded defaults (SQLite + Qdrant local) serves every web test, to keep them
fast; the API itself is tested on SQLite and PostgreSQL under tests/assistant.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Dialog, Page, expect, sync_playwright

from assistant.settings import load_settings
from payouts.deploy import ensure_deployment_for_settings
from payouts.localchain import LocalChain, LocalChainError, find_anvil
from payouts.tasks import Resources
from retrieval.embedder import Embedder
from tests.conftest import DEV_KEY, LiveServer, start_server

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SHOTS = Path(__file__).resolve().parents[2] / "test-output" / "web"
SLOW_MODEL = "slow-provider"
SLOW_WORDS = 60
SLOW_DELAY = 0.1


class _SlowProvider(BaseHTTPRequestHandler):
    """An OpenAI-compatible provider that streams one word every SLOW_DELAY seconds: it stands
    in for a remote LLM (not one of our parts), so the page's stop button has a stream to stop."""

    protocol_version = "HTTP/1.0"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.end_headers()
        try:
            for i in range(SLOW_WORDS):
                chunk = {"id": "slow", "object": "chat.completion.chunk", "created": 0, "model": "slow",
                         "choices": [{"index": 0, "delta": {"content": f"word{i} "}, "finish_reason": None}]}
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.flush()
                time.sleep(SLOW_DELAY)
            self.wfile.write(b"data: [DONE]\n\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the app stopped reading: the asker pressed stop

    def log_message(self, *args: object) -> None:
        pass


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[pytest.TestReport]:
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def slow_provider() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SlowProvider)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


@pytest.fixture(scope="session")
def web(embedder: Embedder, tmp_path_factory: pytest.TempPathFactory, slow_provider: str) -> Iterator[LiveServer]:
    """The app serving the pages, with the dev key the pages pick up by themselves."""
    models = [{"model_name": SLOW_MODEL, "litellm_params": {"model": "openai/slow", "api_key": "sk-test",
                                                            "api_base": slow_provider}}]
    settings = load_settings(data_dir=tmp_path_factory.mktemp("web"), dev_api_key=DEV_KEY, llm_models=models,
                             llm_retries=0, llm_timeout=30.0)
    live = start_server(settings, embedder)
    yield live
    live.stop()


@pytest.fixture(scope="session")
def chained(embedder: Embedder, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, Resources]]:
    """An app on a real anvil with the contracts deployed, and the payout tasks' resources (the
    tests run the real task bodies in-process: credited answers become signed vouchers)."""
    try:
        find_anvil()
    except LocalChainError as exc:
        pytest.skip(str(exc))
    data_dir = tmp_path_factory.mktemp("web-chain")
    chain = LocalChain(data_dir, state_interval=0).start()
    settings = load_settings(data_dir=data_dir, dev_api_key=DEV_KEY, chain_rpc_url=chain.rpc_url, channel_min_topup=1_000, payout_min_owed=0)
    ensure_deployment_for_settings(settings.payouts)
    live = start_server(settings, embedder)
    res = Resources(settings.payouts)
    try:
        yield live, res
    finally:
        live.stop()
        if res.engine is not None:
            res.engine.dispose()
        chain.stop()


# Per module, not per session: Playwright's sync API keeps an asyncio loop running in this thread
# while it is open, and under pytest-xdist (`make test`) a worker runs other files after a web one
# (their asyncio.run() would find that loop). A launch costs about a second per web test file.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # The machine is shared and small: a first answer (cold caches) can take seconds.
    expect.set_options(timeout=20_000)
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs it (apt-get install chromium)")
    with sync_playwright() as p:
        # Debian's chromium, never `playwright install`: the browser comes from apt.
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


class PageWatch:
    """What a page did that it must not: script errors, dialogs it did not expect, failed loads."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.requests: list[str] = []
        self.accept_confirms = False


@pytest.fixture
def page(browser: Browser, web: LiveServer, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh browser context (its own sessionStorage) on the desktop viewport."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, base_url=web.url)
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    pg = context.new_page()
    watch = PageWatch()
    pg.on("pageerror", lambda exc: watch.errors.append(str(exc)))
    pg.on("request", lambda req: watch.requests.append(req.url))

    def on_dialog(dialog: Dialog) -> None:
        watch.dialogs.append(f"{dialog.type}: {dialog.message}")
        if dialog.type == "confirm" and watch.accept_confirms:
            dialog.accept()
        else:
            dialog.dismiss()

    pg.on("dialog", on_dialog)
    pg.watch = watch  # type: ignore[attr-defined]
    pg.set_default_timeout(20_000)
    yield pg
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:  # what the page showed when the test failed
        shot(pg, f"failed-{request.node.name}", full_page=True)
    context.close()
    assert not watch.errors, f"script errors on the page: {watch.errors}"


def shot(page: Page, name: str, full_page: bool = False) -> Path:
    """Save a screenshot under test-output/web/ (looked at by a person, not compared)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def contribute(web: LiveServer, text: str, contributor: str, title: str | None = None,
               **said: str) -> dict[str, object]:
    """A snippet through the API; ``said`` may give its ``speaker`` and ``timestamp``."""
    with httpx.Client(base_url=web.url, headers={"Authorization": f"Bearer {DEV_KEY}"}, timeout=60) as c:
        resp = c.post("/v1/contributions", json={"text": text, "contributor": contributor, "title": title, **said})
        assert resp.status_code == 201, resp.text
        return resp.json()
