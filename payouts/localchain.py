"""Start and stop a local anvil node: the embedded default chain.

anvil ships in the npm package ``@foundry-rs/anvil-linux-amd64`` (installed by
``npm ci --prefix contracts``); this module finds it under ``contracts/node_modules``, starts it
on a free loopback port with ``--state`` persistence under ``<data_dir>/chain/``, waits until it
answers JSON-RPC, and stops it cleanly (SIGTERM, so anvil writes its state on exit; the state is
also dumped every ``state_interval`` seconds in case the process is killed hard). A lock file
keeps two nodes from sharing one state file: anvil inherits the locked descriptor, so the lock is
held for as long as anvil runs, even if whoever started it is gone; and anvil gets SIGTERM when
its starter dies (``payouts.lifetime``), so a hard kill of the starter leaves no node behind.

``python -m payouts.localchain`` runs the node in the foreground, deploys the contracts
(``payouts.deploy``) and serves until interrupted.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Self

from payouts.lifetime import die_with_parent

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
NODE_MODULES = REPO_ROOT / "contracts" / "node_modules"
ANVIL_CANDIDATES = (
    NODE_MODULES / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil",
    NODE_MODULES / "@foundry-rs" / "anvil-linux-arm64" / "bin" / "anvil",
    NODE_MODULES / ".bin" / "anvil",
)
DEFAULT_CHAIN_ID = 31337


class LocalChainError(RuntimeError):
    """anvil could not be found, started, or reached."""


def find_anvil(explicit: Path | None = None) -> Path:
    """The anvil binary: ``explicit``, else the npm one under contracts/node_modules, else PATH."""
    if explicit is not None:
        if not (explicit.is_file() and os.access(explicit, os.X_OK)):
            raise LocalChainError(f"anvil binary not executable: {explicit}")
        return explicit
    for candidate in ANVIL_CANDIDATES:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    on_path = shutil.which("anvil")
    if on_path:
        return Path(on_path)
    raise LocalChainError(
        "anvil not found: run `npm ci --prefix contracts` (it installs "
        "@foundry-rs/anvil-linux-amd64) or set OPENCHAT_ANVIL_BIN"
    )


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free on ``host`` a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def rpc_call(url: str, method: str, params: list | None = None, timeout: float = 5.0) -> object:
    """One JSON-RPC call with the standard library (no web3 needed)."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []})
    req = urllib.request.Request(
        url, data=body.encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        reply = json.loads(resp.read())
    if "error" in reply:
        raise LocalChainError(f"{method}: {reply['error']}")
    return reply["result"]


class LocalChain:
    """An anvil process bound to 127.0.0.1, its state persisted under ``data_dir/chain``."""

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        chain_id: int = DEFAULT_CHAIN_ID,
        hardfork: str = "prague",
        state_interval: int = 5,
        anvil_bin: Path | None = None,
        block_time: float | None = None,
        accounts: int = 10,
        startup_timeout: float = 30.0,
        keep_fds: tuple[int, ...] = (),
    ):
        self.data_dir = Path(data_dir)
        self.chain_dir = self.data_dir / "chain"
        self.state_file = self.chain_dir / "anvil-state.json"
        self.log_file = self.chain_dir / "anvil.log"
        self.requested_port = port
        self.chain_id = chain_id
        self.hardfork = hardfork
        self.state_interval = state_interval
        self.anvil_bin = anvil_bin
        self.block_time = block_time
        self.accounts = accounts
        self.startup_timeout = startup_timeout
        self.keep_fds = keep_fds  # descriptors anvil inherits besides its lock (e.g. a caller's lock)
        self.port: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock_fd: int | None = None

    # ------------------------------------------------------------------

    @property
    def rpc_url(self) -> str:
        if self.port is None:
            raise LocalChainError("local chain not started")
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def _command(self, binary: Path, port: int) -> list[str]:
        cmd = [
            str(binary),
            "--host", "127.0.0.1",
            "--port", str(port),
            "--chain-id", str(self.chain_id),
            "--hardfork", self.hardfork,
            "--accounts", str(self.accounts),
            "--state", str(self.state_file),
        ]  # fmt: skip
        if self.state_interval:
            cmd += ["--state-interval", str(self.state_interval)]
        if self.block_time:
            # Mixed mining: a transaction is still mined at once (tests and `make run` stay fast),
            # and an empty block comes every block_time seconds, so a deposit's confirmations grow
            # on an idle chain as on a real one.
            cmd += ["--block-time", f"{self.block_time:g}", "--mixed-mining"]
        return cmd

    def _acquire_lock(self) -> None:
        self.chain_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.chain_dir / "anvil.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
            os.close(fd)
            raise LocalChainError(
                f"another local chain is running on {self.chain_dir} (lock held"
                f"{f' by pid {holder}' if holder.isdigit() else ''}); stop it first"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._lock_fd = fd

    def _release_lock(self) -> None:
        # Close, never LOCK_UN: anvil shares the locked open file, and an anvil that did not
        # stop must keep the lock (LOCK_UN would drop it for anvil too).
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def start(self) -> Self:
        """Start anvil and wait until it answers; retries on a lost race for the free port."""
        if self.running:
            return self
        binary = find_anvil(self.anvil_bin)
        self._acquire_lock()
        try:
            attempts = 1 if self.requested_port else 3
            last_error: Exception | None = None
            for _ in range(attempts):
                port = self.requested_port or free_port()
                try:
                    self._launch(binary, port)
                    return self
                except LocalChainError as exc:
                    last_error = exc
                    self._terminate()
            raise last_error or LocalChainError("anvil did not start")
        except BaseException:  # e.g. Ctrl-C while waiting for it: no anvil left behind
            self._terminate()
            self._release_lock()
            raise

    def _launch(self, binary: Path, port: int) -> None:
        with open(self.log_file, "ab") as logf:
            logf.write(f"\n--- start {time.strftime('%Y-%m-%dT%H:%M:%S')} port {port}\n".encode())
            logf.flush()
            self._proc = subprocess.Popen(  # fixed argv, our own binary
                self._command(binary, port),
                stdin=subprocess.DEVNULL,
                stdout=logf,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # terminal Ctrl-C goes to us; we stop it ourselves
                pass_fds=(*([self._lock_fd] if self._lock_fd is not None else []), *self.keep_fds),
                preexec_fn=die_with_parent(),  # noqa: PLW1509 (called from the main thread)
            )
        if self._lock_fd is not None:  # who holds the lock, for an operator reading it
            os.ftruncate(self._lock_fd, 0)
            os.pwrite(self._lock_fd, str(self._proc.pid).encode(), 0)
        self.port = port
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise LocalChainError(
                    f"anvil exited with code {self._proc.returncode}: {self._log_tail()}"
                )
            try:
                chain_id = int(str(rpc_call(self.rpc_url, "eth_chainId", timeout=1.0)), 16)
            except (OSError, urllib.error.URLError, ValueError, LocalChainError):
                time.sleep(0.05)
                continue
            if chain_id != self.chain_id:
                raise LocalChainError(f"anvil answered chain id {chain_id}, not {self.chain_id}")
            log.info("anvil %s up at %s (state %s)", self._proc.pid, self.rpc_url, self.state_file)
            return
        raise LocalChainError(f"anvil did not answer within {self.startup_timeout}s")

    def _log_tail(self, n: int = 2000) -> str:
        try:
            return self.log_file.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def _terminate(self, timeout: float = 15.0) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # anvil dumps --state on a graceful exit
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                log.warning("anvil %s ignored SIGTERM; killing it", proc.pid)
                proc.kill()
                proc.wait(timeout=5)

    def stop(self) -> None:
        """Stop anvil (state written to the state file) and release the data-dir lock."""
        try:
            self._terminate()
        finally:
            self._release_lock()
            self.port = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ----------------------------------------------------- dev-chain helpers

    def increase_time(self, seconds: int) -> None:
        """Move the chain's clock forward and mine a block (anvil only)."""
        rpc_call(self.rpc_url, "evm_increaseTime", [int(seconds)])
        rpc_call(self.rpc_url, "evm_mine")

    def set_balance(self, address: str, wei: int) -> None:
        rpc_call(self.rpc_url, "anvil_setBalance", [address, hex(wei)])


def main(argv: list[str] | None = None) -> int:
    """Run the embedded chain in the foreground: start anvil, deploy, serve until signalled."""
    import argparse

    from payouts.deploy import ensure_deployment_for_settings
    from payouts.settings import PayoutsSettings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--port", type=int, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    overrides = {}
    if args.data_dir:
        overrides["data_dir"] = args.data_dir
    if args.port:
        overrides["anvil_port"] = args.port
    settings = PayoutsSettings(**overrides)
    chain = LocalChain(
        settings.data_dir,
        port=settings.anvil_port,
        hardfork=settings.anvil_hardfork,
        state_interval=settings.anvil_state_interval_seconds,
        anvil_bin=settings.anvil_bin,
        block_time=settings.anvil_block_time,
    )
    stop = {"flag": False}

    def _stop(signum: int, frame: object) -> None:
        stop["flag"] = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    with chain:
        deployment = ensure_deployment_for_settings(settings, rpc_url=chain.rpc_url)
        print(
            json.dumps({"rpc_url": chain.rpc_url, **json.loads(deployment.to_json())}), flush=True
        )
        while not stop["flag"] and chain.running:
            time.sleep(0.5)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
