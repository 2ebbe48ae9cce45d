"""Real EVMs for the contract tests: py-evm through eth-tester (fast, one per session, each test
rolled back to a snapshot) and anvil from npm (integration, one per session)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import EthereumTesterProvider, Web3

from payouts.chain import ChainClient, ContractRevert, Deployment, TxSender, deploy_contract
from payouts.deploy import deploy_all, fund_hub

HUB_KEY = "0x" + "11" * 32
CHALLENGE_PERIOD = 3_600
HUB_TOKENS = 10**15  # 1e9 ocUSD
FIXED_GAS = 8_000_000  # skip py-evm's slow binary-search gas estimate in tests


@dataclass
class Evm:
    """A deployed set of contracts on one py-evm chain, plus funded accounts."""

    w3: Web3
    client: ChainClient
    hub: LocalAccount
    deployment: Deployment
    receivers: list[LocalAccount]
    outsider: LocalAccount
    _snapshots: list[int] = field(default_factory=list)

    @property
    def tester(self):  # eth_tester.EthereumTester
        return self.w3.provider.ethereum_tester

    def now(self) -> int:
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def advance(self, seconds: int) -> None:
        """Mine a block ``seconds`` later than the latest one."""
        self.tester.time_travel(self.now() + int(seconds))

    def fund_eth(self, address: str, wei: int = 10**20) -> None:
        self.w3.eth.send_transaction({"from": self.w3.eth.accounts[0], "to": address, "value": wei})

    def new_account(self) -> LocalAccount:
        acct = Account.create()
        self.fund_eth(acct.address)
        return acct

    def deploy(self, name: str, *args, account: LocalAccount | None = None) -> str:
        sender = TxSender(self.w3, fixed_gas=FIXED_GAS)
        address, _ = deploy_contract(sender, account or self.hub, name, *args)
        return address

    def client_for(self, deployment: Deployment) -> ChainClient:
        return ChainClient(self.w3, deployment, self.hub, fixed_gas=FIXED_GAS)


def make_evm(n_receivers: int = 8) -> Evm:
    w3 = Web3(EthereumTesterProvider())
    hub = Account.from_key(HUB_KEY)
    w3.eth.send_transaction({"from": w3.eth.accounts[0], "to": hub.address, "value": 10**23})
    deployment = deploy_all(w3, hub, CHALLENGE_PERIOD)
    client = ChainClient(w3, deployment, hub, fixed_gas=FIXED_GAS)
    fund_hub(client, HUB_TOKENS)
    evm = Evm(w3, client, hub, deployment, [], Account.create())
    evm.receivers = [evm.new_account() for _ in range(n_receivers)]
    evm.fund_eth(evm.outsider.address)
    return evm


@pytest.fixture(scope="session")
def evm_session() -> Evm:
    return make_evm()


@pytest.fixture
def evm(evm_session: Evm) -> Iterator[Evm]:
    """The session chain, rolled back after the test."""
    snap = evm_session.tester.take_snapshot()
    try:
        yield evm_session
    finally:
        evm_session.tester.revert_to_snapshot(snap)


def expect_revert(name: str, fn, *args, **kwargs) -> ContractRevert:
    """Run ``fn`` and require it to revert with the custom error ``name``."""
    with pytest.raises(ContractRevert) as info:
        fn(*args, **kwargs)
    assert info.value.name == name, f"expected {name}, got {info.value}"
    return info.value


@pytest.fixture(scope="session")
def contracts_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "contracts"
