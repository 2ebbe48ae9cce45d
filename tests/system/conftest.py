"""The whole system as `openchat run` starts it, with handles to break its parts one at a time.

The supervisor itself stops everything when a child dies (by design, see assistant.supervisor),
so fault tests drive the same :class:`Supervisor` in-process: ``_start()`` brings up anvil,
the deployment, the workers, beat, the API and the demo knowledge exactly as `openchat run`
does, and the test restarts a killed child with the supervisor's own argv, environment and
:class:`Child` (what a restart policy or an operator would do). The broker is a private
redis-server on a free port; the machine's Redis and PostgreSQL are never touched.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant.settings import load_settings
from assistant.supervisor import Child, Supervisor
from payouts.chain import ChainClient, Deployment
from payouts.localchain import LocalChainError, find_anvil
from tests.conftest import free_port
from tests.payouts.conftest import OwnRedis

REPO = Path(__file__).resolve().parents[2]
DEV_KEY = "oc-dev-key"


class System:
    """A running `openchat run` tree (started in this process) plus its private Redis."""

    def __init__(self, data_dir: Path, redis: OwnRedis) -> None:
        self.data_dir = data_dir
        self.redis = redis
        self.lines: list[str] = []
        self.sup = Supervisor(load_settings(), repo_root=REPO, out=self.lines.append)

    @property
    def url(self) -> str:
        return self.sup.api_url

    @property
    def rpc_url(self) -> str:
        assert self.sup.chain is not None
        return self.sup.chain.rpc_url

    def start(self) -> None:
        self.sup.data_dir.mkdir(parents=True, exist_ok=True)  # as Supervisor.run does
        self.sup._start()  # the supervisor's own start sequence, without its watch loop

    def child(self, name: str) -> Child:
        return next(c for c in self.sup.children if c.name == name)

    def child_env(self) -> dict[str, str]:
        """What the supervisor gives its children (see Supervisor._start)."""
        return {**os.environ, "OPENCHAT_DATA_DIR": str(self.sup.data_dir),
                "OPENCHAT_CHAIN_RPC_URL": self.rpc_url, "PYTHONUNBUFFERED": "1"}

    def kill_and_restart(self, name: str, down: float = 1.0) -> int:
        """SIGKILL a child (no warm shutdown, no acks), then start it again as the supervisor
        does. Returns the killed pid."""
        child = self.child(name)
        assert child.proc is not None and child.exited() is None, f"{name} was not running"
        pid = child.proc.pid
        os.kill(pid, signal.SIGKILL)
        child.proc.wait(timeout=30)
        child.stop()  # clears the rest of its process group (prefork pool processes)
        time.sleep(down)
        offset = child.log_path.stat().st_size
        child.start(self.child_env(), REPO)
        self.wait_log(child, offset, "ready.")
        return pid

    def wait_log(self, child: Child, offset: int, needle: str, timeout: float = 90) -> None:
        """Wait until ``child`` writes ``needle`` after byte ``offset`` of its log."""
        deadline = time.monotonic() + timeout
        while True:
            with child.log_path.open("rb") as f:
                f.seek(offset)
                if needle.encode() in f.read():
                    return
            assert child.exited() is None, f"{child.name} exited: {child.log_tail()}"
            assert time.monotonic() < deadline, f"{child.name}: no {needle!r} in {timeout}s: {child.log_tail()}"
            time.sleep(0.1)

    def restart_redis(self, down: float = 1.0) -> None:
        """The broker crashes (SIGKILL) and comes back on the same port and append-only file."""
        self.redis.kill()
        time.sleep(down)
        self.redis.start()

    def restart_anvil(self, down: float = 2.0) -> None:
        """Stop anvil (SIGTERM: it writes its state) and start it on the same port and state."""
        chain = self.sup.chain
        assert chain is not None and chain.requested_port, "anvil needs a fixed port to come back"
        chain.stop()
        time.sleep(down)
        chain.start()

    def chain_client(self) -> ChainClient:
        settings = self.sup.settings.payouts
        deployment = Deployment.load(self.data_dir / "chain" / "deployment.json")
        return ChainClient.connect(self.rpc_url, deployment, settings.hub_private_key.get_secret_value())

    def dead_children(self) -> list[str]:
        return [c.name for c in self.sup.children if c.exited() is not None]

    def logs(self, name: str, n: int = 3000) -> str:
        return self.child(name).log_tail(n)

    def stop(self) -> None:
        self.sup._stopping = True
        self.sup._stop_all()


@pytest.fixture
def system(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[System]:
    """`openchat run` on embedded defaults (SQLite, Qdrant local, anvil) with a private Redis
    broker, payouts every second and every contributor settled on chain at once."""
    try:
        find_anvil()
    except LocalChainError as exc:
        pytest.skip(str(exc))
    if not shutil.which("redis-server"):
        pytest.skip("no redis-server binary")
    redis = OwnRedis(tmp_path)
    redis.start()
    data_dir = tmp_path / "data"
    for key in [k for k in os.environ if k.startswith("OPENCHAT_")]:
        monkeypatch.delenv(key)
    env = {
        "OPENCHAT_DATA_DIR": str(data_dir),
        "OPENCHAT_PORT": str(free_port()),
        "OPENCHAT_ANVIL_PORT": str(free_port()),  # fixed, so a restarted anvil is where workers look
        "OPENCHAT_REDIS_URL": redis.url,
        "OPENCHAT_PAYOUT_INTERVAL": "1",
        "OPENCHAT_PAYOUT_MIN_OWED": "0",  # the tests' payees earn a few answers' shares
        "OPENCHAT_SETTLE_THRESHOLD": "1",
        "OPENCHAT_CHAT_RATE_PER_MINUTE": "0",  # every client uses the dev key
        # a killed worker's unacknowledged task comes back within seconds, not the hour default
        "OPENCHAT_BROKER_VISIBILITY_TIMEOUT": "5",
        "OPENCHAT_BROKER_RESTORE_INTERVAL": "1",
        "OPENCHAT_TASK_RETRY_BACKOFF_MAX": "2",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    sys_ = System(data_dir, redis)
    try:
        sys_.start()
        yield sys_
    finally:
        sys_.stop()
        redis.kill()
