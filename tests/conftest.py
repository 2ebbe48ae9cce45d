"""Session-wide real services: the embedder, and the API served over loopback HTTP."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import httpx
import pytest
import redis
import uvicorn

from assistant.app import create_app
from assistant.settings import Settings, load_settings
from retrieval.embedder import Embedder, load_embedder
from retrieval.settings import RetrievalSettings

DEV_KEY = "test-key"
POSTGRES_URL = os.environ.get("OPENCHAT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    return load_embedder(RetrievalSettings())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    url: str
    settings: Settings
    server: uvicorn.Server
    thread: threading.Thread

    def client(self, key: str | None = DEV_KEY) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=120)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=60)


def start_server(settings: Settings, embedder: Embedder, host: str = "127.0.0.1") -> LiveServer:
    """Serve the real app on a free port of ``host`` (loopback unless a test needs the machine's
    network address) in a thread; returns once it answers."""
    port = free_port()
    app = create_app(settings, embedder_factory=lambda: embedder)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the API did not start")
        time.sleep(0.05)
    return LiveServer(f"http://{host}:{port}", settings, server, thread)


def network_address() -> str | None:
    """An IPv4 address of this machine that is not loopback (what another machine would reach it
    by), or None when it has none."""
    candidates: list[str] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # a UDP connect sends nothing: it picks the outgoing interface
            candidates.append(s.getsockname()[0])
        except OSError:
            pass
    try:
        candidates += [info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)]
    except OSError:
        pass
    for address in candidates:
        if not address.startswith("127.") and address != "0.0.0.0":
            return str(address)
    return None


def postgres_database() -> str | None:
    """A fresh, empty database on the machine's PostgreSQL, or None when there is none."""
    import sqlalchemy as sa

    try:
        admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
        name = f"openchat_test_{uuid.uuid4().hex[:12]}"
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
    except Exception:  # noqa: BLE001 - any failure means no PostgreSQL for these tests
        return None
    return str(sa.engine.make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False))


def drop_postgres_database(url: str) -> None:
    import sqlalchemy as sa

    name = sa.engine.make_url(url).database
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@contextmanager
def database_for(kind: str) -> Iterator[str | None]:
    """A server's database URL: None for "sqlite" (its data dir's default), a fresh PostgreSQL
    database for "postgres", dropped afterwards (skips the test when there is none)."""
    if kind != "postgres":
        yield None
        return
    url = postgres_database()
    if url is None:
        pytest.skip(f"no PostgreSQL at {POSTGRES_URL}")
    try:
        yield url
    finally:
        drop_postgres_database(url)


def funded_account(api: LiveServer, balance: int) -> tuple[str, str]:
    """A new account holding ``balance`` base units, and its key (added to the running server)."""
    from sqlalchemy.orm import Session

    from assistant.auth import ApiKeys
    from payouts import ledger

    account, key = f"acct-{uuid.uuid4().hex[:8]}", f"key-{uuid.uuid4().hex}"
    app = api.server.config.app
    app.state.api_keys = ApiKeys({**app.state.api_keys._keys, key: account})
    if balance:
        with Session(app.state.engine) as s, s.begin():
            ledger.deposit(s, account, balance, ref="test")
    return account, key


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def api(request: pytest.FixtureRequest, embedder: Embedder, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The API on its embedded defaults (SQLite + Qdrant local) and on PostgreSQL."""
    data_dir: Path = tmp_path_factory.mktemp(f"data-{request.param}")
    with database_for(request.param) as database_url:
        # Rate limits are tested on servers of their own (test_ratelimit*, test_api_bounds): this
        # one serves every other test file with the one dev key, whose write budget they would exhaust.
        settings = load_settings(data_dir=data_dir, dev_api_key=DEV_KEY, database_url=database_url,
                                 write_rate_per_minute=0, read_rate_per_minute=0, anon_rate_per_minute=0)
        live = start_server(settings, embedder)
        yield live
        live.stop()


class Killable(Protocol):
    def kill(self) -> None: ...


@pytest.fixture
def runs() -> Iterator[list[Killable]]:
    """Where a test puts the `openchat run` processes it starts (test_supervisor's ``Run``): each is
    killed afterwards. Skips when anvil is not installed."""
    from payouts.localchain import LocalChainError, find_anvil

    try:
        find_anvil()
    except LocalChainError as exc:
        pytest.skip(str(exc))
    started: list[Killable] = []
    yield started
    for run in started:
        run.kill()


_counter = iter(range(1, 10**9))


def mock_model(name: str, response: str) -> dict[str, object]:
    """An OPENCHAT_LLM_MODELS entry whose provider is litellm's ``mock_response``: the app, litellm
    and everything after the provider call run for real."""
    return {"model_name": name, "litellm_params": {"model": "openai/gpt-4o-mini", "api_key": "sk-test",
                                                   "mock_response": response}}


def new_address() -> str:
    """A fresh contributor address for each test, so tests never see each other's earnings."""
    from eth_utils import to_checksum_address

    return to_checksum_address(f"0x{uuid.uuid4().hex}{next(_counter):08x}")


@contextmanager
def redis_scratch_prefix(url: str, name: str) -> Iterator[str]:
    """A key prefix of one test's own on the machine's Redis (skips when there is none); its keys
    are deleted afterwards."""
    try:
        redis.Redis.from_url(url, socket_timeout=2).ping()
    except redis.RedisError:
        pytest.skip(f"no Redis at {url}")
    value = f"openchat-{name}-{uuid.uuid4().hex[:10]}:"
    try:
        yield value
    finally:
        r = redis.Redis.from_url(url)
        for key in r.scan_iter(match=f"{value}*"):
            r.delete(key)
