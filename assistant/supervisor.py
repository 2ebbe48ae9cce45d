"""`openchat run`: the whole system on one machine, under one command (what `make run` calls).

Order: migrate the database → start anvil (unless OPENCHAT_CHAIN_RPC_URL is set) → deploy the
contracts or reuse the recorded deployment, fund the hub → Celery workers (the default queue,
and the chain queue with concurrency 1: one signer, one nonce) → beat → the API (uvicorn), then
the demo knowledge when the knowledge base is empty. Children get their configuration through
the environment (OPENCHAT_*), run in their own sessions (a terminal's Ctrl-C reaches only the
supervisor, which stops them in order) and write logs under ``<data_dir>/logs/``. Each step is
announced on stdout before it runs, so an operator (and the crash tests) see where a start is.

Crash-safe at every step: a start or stop killed anywhere (Ctrl-C, SIGKILL) leaves nothing that
stops the next start. Every child gets SIGTERM when the supervisor dies, however it died
(``payouts.lifetime``), and holds the data dir's lock (``assistant.leftovers``): the next start
stops whatever of an earlier run is still alive, or refuses in one line while that run's
supervisor lives. Migrations are one transaction, the deployment file is written atomically
after the deployment, and the demo seeding resumes (a copy refused with 409 is "already there").

SIGINT / SIGTERM: the API, beat and workers get SIGTERM (uvicorn drains requests; Celery does a
warm shutdown, finishing the task at hand), anvil last (it writes its state). A child that exits
on its own is reported with its log's tail and everything stops with exit code 1: a supervisor
that quietly restarts a crashing worker hides the crash, and `make run` is for one machine.
Only the API process opens the embedded vector store (Qdrant Edge for a new data dir, local mode for
an older one; each is one process at a time); workers never import retrieval.

Hand-rolled rather than supervisord/honcho: the start order has real steps between processes
(deploy, health wait, seeding) and anvil's lifecycle is already in ``payouts.localchain``.
"""

from __future__ import annotations

import fcntl
import importlib.util
import json
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from assistant import leftovers
from assistant.db import make_engine, migrate
from assistant.demo import SeedError, demo_pending, seed_demo
from assistant.settings import Settings
from payouts.deploy import DeploymentError, ensure_deployment_for_settings
from payouts.lifetime import die_with_parent
from payouts.localchain import LocalChain, LocalChainError
from payouts.worker import CHAIN_QUEUE, QUEUE

log = logging.getLogger("openchat.supervisor")

STOP_TIMEOUT = 30.0  # seconds a child gets after SIGTERM before SIGKILL
READY_TIMEOUT = 300.0  # seconds for the API to answer /healthz (first start loads the embedder)
PIDS_FILE = "supervisor.json"  # children's pids, for operators (and the test that checks orphans)
LOCK_FILE = "supervisor.lock"  # flock held by the supervisor and inherited by every child
LOCK_WAIT = 10.0  # seconds for the lock to come free once an earlier run's leftovers are stopped


class Shutdown(Exception):
    """SIGINT or SIGTERM arrived."""


class ChildDied(RuntimeError):
    """A child process exited while the system was meant to be running."""


def celery_app_module() -> str:
    """The Celery app the workers run: the assistant's (payouts tasks plus the assistant's own,
    e.g. anchoring contributions) when that module exists, else the payouts app."""
    return "assistant.worker" if importlib.util.find_spec("assistant.worker") else "payouts.worker"


def child_commands(settings: Settings, python: str = sys.executable) -> dict[str, list[str]]:
    """The argv of every child, in start order: the ONE place to change how each is launched."""
    data_dir = settings.app.data_dir.resolve()
    celery = [python, "-m", "celery", "-A", celery_app_module()]
    # No gossip, mingle or heartbeat events: nothing here uses them, and their broker
    # channels are what break when Redis restarts under a worker (kombu issue 582).
    common = ["--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "INFO"]
    return {
        "worker": [*celery, "worker", "-Q", QUEUE, "-c", "2", "-n", "default@%h", *common],
        "worker-chain": [*celery, "worker", "-Q", CHAIN_QUEUE, "-P", "solo", "-c", "1", "-n", "chain@%h", *common],
        "beat": [*celery, "beat", "-l", "INFO", "-s", str(data_dir / "celerybeat-schedule"),
                 "--pidfile", str(data_dir / "celerybeat.pid")],
        "api": [python, "-m", "assistant.cli", "serve"],
    }


@dataclass
class Child:
    """One supervised process and its log file."""

    name: str
    argv: list[str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self, env: Mapping[str, str], cwd: Path, keep_fds: tuple[int, ...] = ()) -> None:
        """Launch it; ``keep_fds`` are inherited (the data dir's lock). It gets SIGTERM if the
        process calling this dies, so a hard kill of `make run` leaves no orphans."""
        with self.log_path.open("ab") as logf:
            logf.write(f"\n--- start {time.strftime('%Y-%m-%dT%H:%M:%S')}: {' '.join(self.argv)}\n".encode())
            logf.flush()
            self.proc = subprocess.Popen(self.argv, env=dict(env), cwd=str(cwd), stdin=subprocess.DEVNULL,
                                         stdout=logf, stderr=subprocess.STDOUT, start_new_session=True,
                                         pass_fds=keep_fds,
                                         # single-threaded here, so preexec_fn is safe
                                         preexec_fn=die_with_parent())  # noqa: PLW1509

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def exited(self) -> int | None:
        return self.proc.poll() if self.proc else None

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGTERM, wait, SIGKILL if needed; then clear whatever is left of its process group
        (e.g. prefork pool processes of a worker that was killed)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                log.warning("%s (pid %d) ignored SIGTERM for %.0fs; killing it", self.name, self.proc.pid, timeout)
                self.proc.kill()
                self.proc.wait(timeout=10)
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # start_new_session: pgid == pid
        except ProcessLookupError:
            pass
        return self.proc.returncode

    def log_tail(self, n: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""


@dataclass
class Supervisor:
    """Starts the system, watches it, stops it."""

    settings: Settings
    repo_root: Path = Path(__file__).resolve().parent.parent
    out: Callable[[str], None] = field(default=lambda line: print(line, flush=True))
    children: list[Child] = field(default_factory=list)
    chain: LocalChain | None = None
    _stopping: bool = False
    _signal: str | None = None
    _lock_fd: int | None = None

    @property
    def data_dir(self) -> Path:
        return self.settings.app.data_dir.resolve()

    @property
    def api_url(self) -> str:
        host = self.settings.app.host
        return f"http://{'127.0.0.1' if host in ('0.0.0.0', '::', '') else host}:{self.settings.app.port}"

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self._stopping:
            return  # already stopping: a second Ctrl-C must not abort the orderly stop
        self._stopping = True
        self._signal = signal.Signals(signum).name
        raise Shutdown(self._signal)

    def _checkpoint(self) -> None:
        """Raise the Shutdown of a signal again if it got lost: raised in the middle of a hook
        whose exceptions Python ignores (e.g. logging's at-fork lock release while a child is
        being started), it never reached run(), and the start went on with Ctrl-C ignored."""
        if self._signal is not None:
            raise Shutdown(self._signal)

    def _step(self, line: str) -> None:
        """Announce the next step of the start (a signal that got lost stops it first)."""
        self._checkpoint()
        self.out(line)

    def run(self) -> int:
        """Start everything and serve until a signal (exit 0) or a child's death (exit 1)."""
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._lock_fd = self._lock()
            self._start()
            self._checkpoint()
            self.out(f"OpenChat is up: {self.api_url}  (API docs {self.api_url}/docs; "
                     f"logs in {self.data_dir / 'logs'}; Ctrl-C stops everything)")
            while True:
                self._check_children()
                time.sleep(0.5)
        except Shutdown as sig:
            self.out(f"{sig}: stopping")
            return 0
        except (ChildDied, LocalChainError, DeploymentError) as exc:
            self.out(f"openchat run: {exc}")
            return 1
        finally:
            self._stopping = True
            self._stop_all()
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None

    # ------------------------------------------------------------------ start

    def _lock(self) -> int:
        """Take the data dir's lock. Held by a live `openchat run`: refuse in one line. Held
        only by processes an earlier run left (see assistant.leftovers): stop them, then take it."""
        path = self.data_dir / LOCK_FILE
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if not _try_lock(fd):
                owner = os.pread(fd, 32, 0).decode(errors="replace").strip()
                found = leftovers.holders(path)
                if any(str(p.pid) == owner for p in found):
                    raise SystemExit(f"openchat run: another `openchat run` (pid {owner}) is using "
                                     f"{self.data_dir}; stop it first")
                if found:
                    self.out(f"openchat run: stopping what an earlier run left on {self.data_dir}: "
                             f"{leftovers.describe(found)}")
                    leftovers.stop(found, STOP_TIMEOUT, last=self.data_dir / "chain" / "anvil.lock")
                deadline = time.monotonic() + LOCK_WAIT
                while not _try_lock(fd):
                    if time.monotonic() > deadline:
                        still = leftovers.describe(leftovers.holders(path)) or "processes this user cannot see"
                        raise SystemExit(f"openchat run: {path} is still held ({still}); stop them first")
                    time.sleep(0.1)
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _start(self) -> None:
        settings = self.settings
        logs = self.data_dir / "logs"
        logs.mkdir(exist_ok=True)
        # Before any child: workers, beat and the API then find the schema at head (no races).
        self._step("migrating the database")
        engine = make_engine(settings.app.effective_database_url)
        migrate(engine)
        engine.dispose()
        rpc_url = settings.payouts.chain_rpc_url
        if rpc_url is None:
            p = settings.payouts
            self.chain = LocalChain(self.data_dir, port=p.anvil_port, hardfork=p.anvil_hardfork,
                                    state_interval=p.anvil_state_interval_seconds, anvil_bin=p.anvil_bin,
                                    block_time=p.anvil_block_time, keep_fds=self._keep_fds)
            self._step(f"starting anvil (state {self.chain.state_file})")
            self.chain.start()
            rpc_url = self.chain.rpc_url
        self._step("deploying the contracts (or checking the recorded deployment)")
        deployment = ensure_deployment_for_settings(settings.payouts, rpc_url=rpc_url)
        self.out(f"chain {rpc_url} (id {deployment.chain_id}): channels {deployment.channels}, "
                 f"token {deployment.token}, registry {deployment.registry}")
        env = {**os.environ, "OPENCHAT_DATA_DIR": str(self.data_dir), "OPENCHAT_CHAIN_RPC_URL": rpc_url,
               "PYTHONUNBUFFERED": "1"}
        for name, argv in child_commands(settings).items():
            child = Child(name, argv, logs / f"{name}.log")
            self._step(f"starting {name}")
            child.start(env, self.repo_root, self._keep_fds)
            self.children.append(child)
            self._write_pids(rpc_url)
        self._step(f"waiting for the API at {self.api_url}")
        chunks = self._wait_ready()
        if not settings.app.dev_key_enabled:
            log.warning("no dev key (OPENCHAT_DEV_API_KEY is empty, or OPENCHAT_HOST is not loopback): "
                        "no demo knowledge added")
        elif settings.app.dev_api_key and demo_pending(self.data_dir, chunks):
            self._step("adding the demo knowledge")
            try:
                seeded = seed_demo(self.api_url, settings.app.dev_api_key, self.data_dir, chunks)
            except SeedError as exc:  # the system runs; the next start tries the rest again
                self.out(f"openchat run: the demo knowledge is incomplete ({exc}); the next start resumes it")
            else:
                if seeded is not None:
                    again = f"; {seeded.already} snippets were already there" if seeded.already else ""
                    self.out(f"added the demo knowledge ({seeded.chunks} chunks{again})")

    @property
    def _keep_fds(self) -> tuple[int, ...]:
        """What every child inherits: the data dir's lock (none when started without run())."""
        return (self._lock_fd,) if self._lock_fd is not None else ()

    def _write_pids(self, rpc_url: str) -> None:
        info = {"supervisor": os.getpid(), "api_url": self.api_url, "rpc_url": rpc_url,
                "anvil": self.chain._proc.pid if self.chain and self.chain._proc else None,
                "children": {c.name: c.pid for c in self.children}}
        (self.data_dir / PIDS_FILE).write_text(json.dumps(info, indent=2))

    def _wait_ready(self) -> int:
        """Wait until /healthz says ok; returns the number of chunks it reports."""
        deadline = time.monotonic() + READY_TIMEOUT
        last = ""
        while time.monotonic() < deadline:
            self._check_children()
            try:
                with urllib.request.urlopen(f"{self.api_url}/healthz", timeout=5) as resp:
                    body = json.loads(resp.read())
                return int(body.get("checks", {}).get("chunks", 0))
            except urllib.error.HTTPError as exc:  # 503: a dependency is not up yet
                last = exc.read().decode(errors="replace")[:500]
            except (OSError, ValueError) as exc:
                last = str(exc)
            time.sleep(0.25)
        raise ChildDied(f"the API did not become healthy within {READY_TIMEOUT:.0f}s ({last})")

    def _check_children(self) -> None:
        self._checkpoint()
        for child in self.children:
            code = child.exited()
            if code is not None:
                raise ChildDied(f"{child.name} exited unexpectedly (code {code}); "
                                f"last lines of {child.log_path}:\n{child.log_tail()}")
        if self.chain is not None and not self.chain.running:
            raise ChildDied(f"anvil exited unexpectedly; see {self.chain.log_file}")

    # ------------------------------------------------------------------- stop

    def _stop_all(self) -> None:
        """API first (no new work), then beat, then workers (warm shutdown), anvil last."""
        if not self.children and self.chain is None:
            return
        for child in reversed(self.children):
            self.out(f"stopping {child.name}")
            code = child.stop()
            if code not in (None, 0, -signal.SIGTERM):
                log.warning("%s stopped with code %s", child.name, code)
        self.children.clear()
        if self.chain is not None:
            self.out("stopping anvil")
            self.chain.stop()  # SIGTERM: anvil writes its state file
            self.chain = None
        self.out("stopped")


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def run(settings: Settings) -> int:
    return Supervisor(settings).run()
