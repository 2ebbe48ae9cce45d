"""Real EVMs for the contract tests: py-evm through eth-tester (fast to start, one per session,
each test rolled back to a snapshot) and anvil from npm (integration, property-based runs)."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_abi import decode as abi_decode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.abi import collapse_if_tuple
from web3 import EthereumTesterProvider, Web3

from payouts.chain import ChainClient, ContractRevert, Deployment, TxSender, deploy_contract
from payouts.deploy import deploy_all, fund_hub
from payouts.localchain import LocalChain, LocalChainError, find_anvil, rpc_call

HUB_KEY = "0x" + "11" * 32
CHALLENGE_PERIOD = 3_600
HUB_TOKENS = 10**15  # 1e9 ocUSD
FIXED_GAS = 8_000_000  # skip py-evm's slow binary-search gas estimate in tests


@dataclass
class Evm:
    """A deployed set of contracts on one chain (py-evm or anvil), plus funded accounts."""

    w3: Web3
    client: ChainClient
    hub: LocalAccount
    deployment: Deployment
    receivers: list[LocalAccount]
    outsider: LocalAccount
    backend: str = "py-evm"
    rpc_url: str | None = None

    @property
    def tester(self) -> Any:  # eth_tester.EthereumTester (py-evm backend only)
        return self.w3.provider.ethereum_tester

    def now(self) -> int:
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def advance(self, seconds: int) -> None:
        """Mine a block ``seconds`` later than the latest one."""
        target = self.now() + int(seconds)
        if self.backend == "py-evm":
            self.tester.time_travel(target)
        else:
            rpc_call(self.rpc_url, "evm_setNextBlockTimestamp", [target])
            rpc_call(self.rpc_url, "evm_mine")

    def snapshot(self) -> Any:
        if self.backend == "py-evm":
            return self.tester.take_snapshot()
        return rpc_call(self.rpc_url, "evm_snapshot")

    def revert(self, snap: Any) -> None:
        if self.backend == "py-evm":
            self.tester.revert_to_snapshot(snap)
        else:
            assert rpc_call(self.rpc_url, "evm_revert", [snap]) is True

    def read(self, fn: Any) -> tuple:
        """A view call, sent straight to the node (py-evm: eth-tester; anvil: JSON-RPC) to skip
        web3.py's per-request middleware where tests read many values."""
        tx = {"from": self.hub.address, "to": fn.address, "data": fn._encode_transaction_data()}
        if self.backend == "py-evm":
            raw = self.tester.call(tx)
        else:
            raw = rpc_call(self.rpc_url, "eth_call", [tx, "latest"])
        raw = bytes.fromhex(raw.removeprefix("0x")) if isinstance(raw, str) else bytes(raw)
        return abi_decode([collapse_if_tuple(o) for o in fn.abi["outputs"]], raw)

    def read_many(self, fns: list[Any]) -> list[tuple]:
        """Several view calls; on anvil in one JSON-RPC batch (one HTTP round trip)."""
        if self.backend == "py-evm":
            return [self.read(fn) for fn in fns]
        batch = [
            {
                "jsonrpc": "2.0",
                "id": i,
                "method": "eth_call",
                "params": [{"to": fn.address, "data": _encoded(fn)}, "latest"],
            }
            for i, fn in enumerate(fns)
        ]
        req = urllib.request.Request(
            self.rpc_url,
            data=json.dumps(batch).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            replies = {r["id"]: r for r in json.loads(resp.read())}
        out = []
        for i, fn in enumerate(fns):
            reply = replies[i]
            assert "error" not in reply, reply
            raw = bytes.fromhex(reply["result"].removeprefix("0x"))
            out.append(abi_decode([collapse_if_tuple(o) for o in fn.abi["outputs"]], raw))
        return out

    def fund_eth(self, address: str, wei: int = 10**20) -> None:
        if self.backend == "py-evm":
            self.w3.eth.send_transaction(
                {"from": self.w3.eth.accounts[0], "to": address, "value": wei}
            )
        else:
            rpc_call(self.rpc_url, "anvil_setBalance", [address, hex(wei)])

    def new_account(self) -> LocalAccount:
        acct = Account.create()
        self.fund_eth(acct.address)
        return acct

    def deploy(self, name: str, *args: Any, account: LocalAccount | None = None) -> str:
        sender = TxSender(self.w3, fixed_gas=FIXED_GAS)
        address, _ = deploy_contract(sender, account or self.hub, name, *args)
        return address

    def client_for(self, deployment: Deployment) -> ChainClient:
        return ChainClient(self.w3, deployment, self.hub, fixed_gas=FIXED_GAS)


_ENCODED: dict[int, tuple[Any, str]] = {}


def _encoded(fn: Any) -> str:
    """web3.py's ABI encoding costs ~1 ms; the invariant reads the same calls after every step.
    (The cache holds the function object too, so its id is never reused.)"""
    key = id(fn)
    if key not in _ENCODED:
        _ENCODED[key] = (fn, fn._encode_transaction_data())
    return _ENCODED[key][1]


def make_evm(
    w3: Web3, *, backend: str = "py-evm", rpc_url: str | None = None, n_receivers: int = 8
) -> Evm:
    """Deploy the contracts with a fresh hub on ``w3`` and fund accounts."""
    hub = Account.from_key(HUB_KEY)
    probe = Evm(w3, None, hub, None, [], Account.create(), backend, rpc_url)  # type: ignore[arg-type]
    probe.fund_eth(hub.address, 10**23)
    deployment = deploy_all(w3, hub, CHALLENGE_PERIOD)
    client = ChainClient(w3, deployment, hub, fixed_gas=FIXED_GAS)
    fund_hub(client, HUB_TOKENS)
    evm = Evm(w3, client, hub, deployment, [], Account.create(), backend, rpc_url)
    evm.receivers = [evm.new_account() for _ in range(n_receivers)]
    evm.fund_eth(evm.outsider.address)
    return evm


def anvil_available() -> bool:
    try:
        find_anvil()
    except LocalChainError:
        return False
    return True


NEEDS_ANVIL = pytest.mark.skipif(
    not anvil_available(), reason="anvil missing: run `npm ci --prefix contracts`"
)


@pytest.fixture(scope="session")
def evm_session() -> Evm:
    return make_evm(Web3(EthereumTesterProvider()))


@pytest.fixture
def evm(evm_session: Evm) -> Iterator[Evm]:
    """The session py-evm chain, rolled back after the test."""
    snap = evm_session.snapshot()
    try:
        yield evm_session
    finally:
        evm_session.revert(snap)


@pytest.fixture(scope="session")
def anvil_evm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Evm]:
    """A session anvil (npm binary, loopback, free port) with the contracts deployed; blocks are
    1 s apart so time is deterministic."""
    if not anvil_available():
        pytest.skip("anvil missing: run `npm ci --prefix contracts`")
    chain = LocalChain(tmp_path_factory.mktemp("anvil-session"), state_interval=0).start()
    try:
        rpc_call(chain.rpc_url, "anvil_setBlockTimestampInterval", [1])
        w3 = Web3(Web3.HTTPProvider(chain.rpc_url, request_kwargs={"timeout": 30}))
        yield make_evm(w3, backend="anvil", rpc_url=chain.rpc_url)
    finally:
        chain.stop()


def expect_revert(name: str, fn: Any, *args: Any, **kwargs: Any) -> ContractRevert:
    """Run ``fn`` and require it to revert with the custom error ``name``."""
    with pytest.raises(ContractRevert) as info:
        fn(*args, **kwargs)
    assert info.value.name == name, f"expected {name}, got {info.value}"
    return info.value


@pytest.fixture(scope="session")
def contracts_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "contracts"
