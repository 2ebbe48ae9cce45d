"""Ledger databases for the payouts tests: a migrated SQLite file and a fresh PostgreSQL DB."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis
from sqlalchemy import Engine

from assistant.db import migrate
from payouts.chain import ChainClient, Deployment
from payouts.db import make_engine
from payouts.deploy import ensure_deployment_for_settings
from payouts.localchain import LocalChain, LocalChainError, find_anvil
from payouts.settings import PayoutsSettings
from payouts.worker import create_celery
from tests.conftest import POSTGRES_URL, drop_postgres_database, postgres_database


def migrated_engine(kind: str, tmp: Path) -> tuple[Engine, str | None]:
    """(engine, postgres url to drop or None) with the whole schema migrated to head."""
    if kind == "postgres":
        url = postgres_database()
        if url is None:
            pytest.skip(f"no PostgreSQL at {POSTGRES_URL}")
        engine = make_engine(url)
        migrate(engine)
        return engine, url
    engine = make_engine(f"sqlite:///{tmp / 'ledger.sqlite3'}")
    migrate(engine)
    return engine, None


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    eng, url = migrated_engine(request.param, tmp_path)
    yield eng
    eng.dispose()
    if url:
        drop_postgres_database(url)


@pytest.fixture(params=["sqlite", "postgres"])
def bare_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An empty database (no migration run): for tests that migrate step by step."""
    url = f"sqlite:///{tmp_path / 'm.sqlite3'}"
    if request.param == "postgres":
        url = postgres_database()
        if url is None:
            pytest.skip(f"no PostgreSQL at {POSTGRES_URL}")
    eng = make_engine(url)
    yield eng
    eng.dispose()
    if request.param == "postgres":
        drop_postgres_database(url)


# ------------------------------------------------------------ real services


REDIS_URL = os.environ.get("OPENCHAT_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
CELERY = Path(sys.executable).with_name("celery")


def worker_argv(app_module: str, name: str, *args: str) -> list[str]:
    """How tests run a Celery worker: one solo process on both queues, no gossip/mingle/heartbeat."""
    return [str(CELERY), "-A", app_module, "worker", "-Q", "payouts,payouts.chain", "-P", "solo", "-c", "1",
            "-n", name, "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "INFO", *args]


@dataclass
class Stack:
    """A real anvil (contracts deployed), Redis, a migrated ledger DB and a Celery worker
    process that the test can kill and restart."""

    data_dir: Path
    env: dict[str, str]
    settings: PayoutsSettings
    engine: Engine
    chain: LocalChain
    client: ChainClient
    app: object
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    log_offset: int = 0
    extra_env: dict[str, str] = field(default_factory=dict)

    def start_worker(self, *args: str, **env: str) -> None:
        assert self.proc is None or self.proc.poll() is not None
        self.starts += 1
        self.log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as logf:
            self.proc = subprocess.Popen(
                worker_argv("payouts.worker", f"w{self.starts}-{uuid.uuid4().hex[:6]}@test", *args),
                env={**{k: v for k, v in os.environ.items() if not k.startswith("OPENCHAT_")},
                     **self.env, **env}, stdout=logf, stderr=subprocess.STDOUT,
                start_new_session=True, cwd=str(Path(__file__).resolve().parents[2]),
            )
        self.wait_log("ready.", timeout=60)

    def log_text(self) -> str:
        with open(self.log_path, "rb") as f:
            f.seek(self.log_offset)
            return f.read().decode(errors="replace")

    def wait_log(self, needle: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while needle not in self.log_text():
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"worker exited ({self.proc.returncode}):\n{self.log_text()[-4000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{needle!r} not in worker log:\n{self.log_text()[-4000:]}")
            time.sleep(0.05)

    def kill_worker(self) -> None:
        """SIGKILL: no cleanup, no ack, no rollback but the database's own."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.proc = None

    def stop_worker(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def send(self, task: str, **kwargs: object) -> None:
        self.app.tasks[task].apply_async(kwargs=kwargs)  # type: ignore[attr-defined]

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 60, what: str = "") -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"worker exited:\n{self.log_text()[-4000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out waiting for {what}:\n{self.log_text()[-3000:]}")
            time.sleep(0.1)


@dataclass
class BenchPayouts:
    """What a benchmark's real worker runs against: its environment, the broker it got, and the
    settings, deployment, migrated ledger and chain client built from that environment."""

    env: dict[str, str]
    broker: str
    settings: PayoutsSettings
    deployment: Deployment
    engine: Engine
    client: ChainClient


def bench_payouts(tmp: str, chain: LocalChain, redis_url: str, extra: dict[str, str]) -> BenchPayouts:
    """A data dir's SQLite ledger on ``chain``, plus ``extra`` settings; Redis under a fresh key
    prefix when it answers, else the embedded broker. The worker gets exactly ``env`` (Stack drops
    every other OPENCHAT_ variable)."""
    env = {"OPENCHAT_DATA_DIR": tmp, "OPENCHAT_DATABASE_URL": f"sqlite:///{tmp}/ledger.sqlite3",
           "OPENCHAT_CHAIN_RPC_URL": chain.rpc_url, **extra}
    try:
        redis.Redis.from_url(redis_url, socket_timeout=2).ping()
        env |= {"OPENCHAT_REDIS_URL": redis_url, "OPENCHAT_REDIS_KEY_PREFIX": f"openchat-bench-{uuid.uuid4().hex[:10]}:"}
        broker = f"Redis {redis_url}"
    except redis.RedisError:
        broker = "embedded broker (no Redis)"
    settings = PayoutsSettings(**{k.removeprefix("OPENCHAT_").lower(): v for k, v in env.items()})
    deployment = ensure_deployment_for_settings(settings)
    engine = make_engine(settings.effective_database_url)
    migrate(engine)
    client = ChainClient.connect(chain.rpc_url, deployment, settings.hub_private_key.get_secret_value())
    return BenchPayouts(env, broker, settings, deployment, engine, client)


def redis_available() -> bool:
    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=2).ping()
        return True
    except Exception:  # noqa: BLE001 - any failure means "no Redis here"
        return False


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if not redis_available():
        pytest.skip(f"no Redis at {REDIS_URL}")
    try:
        find_anvil()
    except LocalChainError as exc:
        pytest.skip(str(exc))
    data_dir = tmp_path_factory.mktemp("payouts-stack")
    chain = LocalChain(data_dir, state_interval=0).start()
    prefix = f"openchat-test-{uuid.uuid4().hex[:10]}:"
    env = {
        "OPENCHAT_DATA_DIR": str(data_dir),
        "OPENCHAT_DATABASE_URL": f"sqlite:///{data_dir / 'ledger.sqlite3'}",
        "OPENCHAT_REDIS_URL": REDIS_URL,
        "OPENCHAT_REDIS_KEY_PREFIX": prefix,
        "OPENCHAT_CHAIN_RPC_URL": chain.rpc_url,
        "OPENCHAT_BROKER_VISIBILITY_TIMEOUT": "3",
        "OPENCHAT_BROKER_RESTORE_INTERVAL": "1",
        "OPENCHAT_CHANNEL_MIN_TOPUP": "1000",
        "OPENCHAT_PAYOUT_MIN_OWED": "0",  # the tests' payees earn little: the minimum has its own tests
        "OPENCHAT_TASK_RETRY_BACKOFF_MAX": "2",
        "OPENCHAT_SETTLE_THRESHOLD": "1",
        "OPENCHAT_FAULT_PAUSE_SECONDS": "0",
        "OPENCHAT_FAULT_PAUSE_TASKS": "",
    }
    settings = PayoutsSettings(
        data_dir=data_dir, database_url=env["OPENCHAT_DATABASE_URL"], redis_url=REDIS_URL,
        redis_key_prefix=prefix, chain_rpc_url=chain.rpc_url, broker_visibility_timeout=3,
        # in-process runs deposit exactly what is owed (their tests count deposits to the unit);
        # sizing, the minimum and reclaiming are tested in test_channel_deposits.py
        payout_min_owed=0, channel_headroom_bps=0,
    )
    deployment: Deployment = ensure_deployment_for_settings(settings)
    engine = make_engine(settings.effective_database_url)
    migrate(engine)
    client = ChainClient.connect(chain.rpc_url, deployment, settings.hub_private_key.get_secret_value())
    st = Stack(data_dir, env, settings, engine, chain, client, create_celery(settings),
               data_dir / "worker.log")
    st.start_worker()
    yield st
    st.stop_worker()
    engine.dispose()
    chain.stop()
    r = redis.Redis.from_url(REDIS_URL)
    for key in r.scan_iter(match=f"{prefix}*"):
        r.delete(key)


class OwnRedis:
    """A redis-server of our own (append-only file, fsync always), to kill and restart."""

    def __init__(self, tmp: Path):
        from payouts.localchain import free_port

        self.port = free_port()
        self.dir = tmp / "redis"
        self.dir.mkdir()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        import redis as redis_py

        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir),
             "--save", "", "--appendonly", "yes", "--appendfsync", "always"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 20
        while True:
            try:
                redis_py.Redis.from_url(self.url, socket_timeout=1).ping()
                return
            except redis_py.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None
